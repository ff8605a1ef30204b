"""The coding domain: small programming problems whose answers are judged by unit tests in the sandbox.

K2 checks code by running it (K2 report §3.2): a response earns 1 only when its code passes
every unit test of the problem inside :mod:`kimi_pipeline.gym.sandbox`; model code never runs
anywhere else. What lives here:

- ``PROBLEMS``: 18 hand-written problems at three levels (signature, description, reference
  solutions, ``assert`` tests). ``generate`` draws them with the caller's ``rng`` and stores
  the tests and entry point in the task's metadata.
- ``extract_code``: the last ```python fence of a response (an unlabelled fence otherwise,
  the whole text when there is none); an empty result scores 0.
- ``from_humaneval`` / ``from_mbpp``: the two common public task forms as ``GymTask``s.
  HumanEval tests keep their ``check(candidate)`` and the entry point goes to the sandbox,
  which lifts an assert-only ``check`` into value-checked asserts (unforgeable) and calls it
  otherwise. A HumanEval response may be a whole function or only the body completing the
  prompt; the prompt's imports are put in front either way.
- ``filter_generated_tests``: Kimi K1.5's rule for generated tests (keep a test when at least
  7/10 reference solutions pass it, keep the problem when at least 9/10 pass all kept tests),
  computed from one sandbox run per (test, reference) pair.
"""

from __future__ import annotations

import ast
import builtins
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.gym.sandbox import SandboxJob, SandboxLimits, SandboxVerdict, run_many, run_tests
from kimi_pipeline.records import GymTask

# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One hand-written problem: the function to write, how to check it, and who solves it."""

    name: str  # entry point
    level: int
    topic: str
    signature: str
    description: str
    references: tuple[str, ...]
    tests: tuple[str, ...]  # one `assert` line each


def _p(name: str, level: int, topic: str, signature: str, description: str,
       references: Sequence[str], tests: Sequence[str]) -> Problem:
    return Problem(name, level, topic, signature, description, tuple(references), tuple(tests))


_PROBLEM_LIST = [
    # ---- level 1
    _p("sum_of_evens", 1, "lists", "def sum_of_evens(nums: list[int]) -> int",
       "Return the sum of the even numbers in nums (0 for an empty list).",
       ["def sum_of_evens(nums):\n    return sum(n for n in nums if n % 2 == 0)\n",
        "def sum_of_evens(nums):\n    total = 0\n    for n in nums:\n        if not n & 1:\n"
        "            total += n\n    return total\n"],
       ["assert sum_of_evens([1, 2, 3, 4]) == 6", "assert sum_of_evens([]) == 0",
        "assert sum_of_evens([-2, -3, 5]) == -2", "assert sum_of_evens([7, 9]) == 0"]),
    _p("reverse_words", 1, "strings", "def reverse_words(s: str) -> str",
       "Return the words of s in reverse order, separated by single spaces (extra spaces dropped).",
       ["def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n"],
       ["assert reverse_words('hello world') == 'world hello'",
        "assert reverse_words('  a  b c ') == 'c b a'", "assert reverse_words('') == ''",
        "assert reverse_words('one') == 'one'"]),
    _p("count_vowels", 1, "strings", "def count_vowels(s: str) -> int",
       "Count the vowels a, e, i, o, u in s, ignoring case.",
       ["def count_vowels(s):\n    return sum(c in 'aeiou' for c in s.lower())\n"],
       ["assert count_vowels('Hello World') == 3", "assert count_vowels('xyz') == 0",
        "assert count_vowels('AEIOUaeiou') == 10", "assert count_vowels('') == 0"]),
    _p("clamp", 1, "arithmetic", "def clamp(x: int, lo: int, hi: int) -> int",
       "Return x limited to the closed range [lo, hi] (lo <= hi).",
       ["def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n"],
       ["assert clamp(5, 0, 10) == 5", "assert clamp(-3, 0, 10) == 0",
        "assert clamp(42, 0, 10) == 10", "assert clamp(7, 7, 7) == 7"]),
    _p("is_palindrome", 1, "strings", "def is_palindrome(s: str) -> bool",
       "True when s reads the same backwards, ignoring case and any non-alphanumeric character.",
       ["def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]\n"],
       ["assert is_palindrome('A man, a plan, a canal: Panama') == True",
        "assert is_palindrome('race a car') == False", "assert is_palindrome('') == True",
        "assert is_palindrome('No lemon, no melon') == True"]),
    _p("fizzbuzz", 1, "control flow", "def fizzbuzz(n: int) -> list[str]",
       "Return the strings for 1..n: 'Fizz' for multiples of 3, 'Buzz' for multiples of 5, "
       "'FizzBuzz' for both, the number itself otherwise.",
       ["def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n"
        "        s = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n"
        "        out.append(s or str(i))\n    return out\n"],
       ["assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']", "assert fizzbuzz(0) == []",
        "assert fizzbuzz(15)[-1] == 'FizzBuzz'", "assert len(fizzbuzz(30)) == 30"]),
    # ---- level 2
    _p("run_length_encode", 2, "strings", "def run_length_encode(s: str) -> str",
       "Encode s as runs of a character followed by the run length, e.g. 'aaab' -> 'a3b1'.",
       ["def run_length_encode(s):\n    out, i = [], 0\n    while i < len(s):\n        j = i\n"
        "        while j < len(s) and s[j] == s[i]:\n            j += 1\n"
        "        out.append(s[i] + str(j - i))\n        i = j\n    return ''.join(out)\n",
        "from itertools import groupby\n\ndef run_length_encode(s):\n"
        "    return ''.join(k + str(len(list(g))) for k, g in groupby(s))\n"],
       ["assert run_length_encode('aaab') == 'a3b1'", "assert run_length_encode('') == ''",
        "assert run_length_encode('abc') == 'a1b1c1'",
        "assert run_length_encode('zzzzzzzzzzzz') == 'z12'"]),
    _p("balanced_brackets", 2, "stacks", "def balanced_brackets(s: str) -> bool",
       "True when every (), [] and {} in s is properly nested and closed; other characters "
       "are ignored.",
       ["def balanced_brackets(s):\n    pairs, stack = {')': '(', ']': '[', '}': '{'}, []\n"
        "    for c in s:\n        if c in '([{':\n            stack.append(c)\n"
        "        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n"
        "                return False\n    return not stack\n"],
       ["assert balanced_brackets('([]{})') == True", "assert balanced_brackets('([)]') == False",
        "assert balanced_brackets('') == True", "assert balanced_brackets('((') == False",
        "assert balanced_brackets('a(b)c]') == False"]),
    _p("merge_intervals", 2, "sorting", "def merge_intervals(intervals: list[list[int]]) -> list[list[int]]",
       "Merge overlapping or touching closed intervals [start, end] and return them sorted by start.",
       ["def merge_intervals(intervals):\n    out = []\n    for s, e in sorted(intervals):\n"
        "        if out and s <= out[-1][1]:\n            out[-1][1] = max(out[-1][1], e)\n"
        "        else:\n            out.append([s, e])\n    return out\n"],
       ["assert merge_intervals([[1, 3], [2, 6], [8, 10]]) == [[1, 6], [8, 10]]",
        "assert merge_intervals([[5, 7], [1, 5]]) == [[1, 7]]", "assert merge_intervals([]) == []",
        "assert merge_intervals([[1, 10], [2, 3]]) == [[1, 10]]"]),
    _p("rotate_matrix", 2, "matrices", "def rotate_matrix(m: list[list[int]]) -> list[list[int]]",
       "Return the square matrix m rotated 90 degrees clockwise (m itself unchanged).",
       ["def rotate_matrix(m):\n    return [list(row) for row in zip(*m[::-1])]\n"],
       ["assert rotate_matrix([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]",
        "assert rotate_matrix([[1]]) == [[1]]", "assert rotate_matrix([]) == []",
        "assert rotate_matrix([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [[7, 4, 1], [8, 5, 2], [9, 6, 3]]"]),
    _p("word_frequencies", 2, "dictionaries", "def word_frequencies(text: str) -> dict[str, int]",
       "Count each word of text, lower-cased; words are runs of letters a-z (anything else separates).",
       ["import re\n\ndef word_frequencies(text):\n    out = {}\n"
        "    for w in re.findall('[a-z]+', text.lower()):\n        out[w] = out.get(w, 0) + 1\n"
        "    return out\n"],
       ["assert word_frequencies('The cat, the hat.') == {'the': 2, 'cat': 1, 'hat': 1}",
        "assert word_frequencies('') == {}", "assert word_frequencies('a1a') == {'a': 2}",
        "assert word_frequencies('Go go GO') == {'go': 3}"]),
    _p("nth_prime", 2, "number theory", "def nth_prime(n: int) -> int",
       "Return the n-th prime number, counting from nth_prime(1) == 2.",
       ["def nth_prime(n):\n    primes, k = [], 1\n    while len(primes) < n:\n        k += 1\n"
        "        if all(k % p for p in primes if p * p <= k):\n            primes.append(k)\n"
        "    return primes[-1]\n"],
       ["assert nth_prime(1) == 2", "assert nth_prime(2) == 3", "assert nth_prime(10) == 29",
        "assert nth_prime(100) == 541"]),
    # ---- level 3
    _p("longest_increasing_subsequence", 3, "dynamic programming",
       "def longest_increasing_subsequence(nums: list[int]) -> int",
       "Return the length of the longest strictly increasing subsequence of nums.",
       ["from bisect import bisect_left\n\ndef longest_increasing_subsequence(nums):\n"
        "    tails = []\n    for x in nums:\n        i = bisect_left(tails, x)\n"
        "        tails[i:i + 1] = [x]\n    return len(tails)\n"],
       ["assert longest_increasing_subsequence([10, 9, 2, 5, 3, 7, 101, 18]) == 4",
        "assert longest_increasing_subsequence([]) == 0",
        "assert longest_increasing_subsequence([7, 7, 7]) == 1",
        "assert longest_increasing_subsequence([0, 1, 0, 3, 2, 3]) == 4"]),
    _p("edit_distance", 3, "dynamic programming", "def edit_distance(a: str, b: str) -> int",
       "Return the Levenshtein distance (insertions, deletions, substitutions) between a and b.",
       ["def edit_distance(a, b):\n    prev = list(range(len(b) + 1))\n    for i, ca in enumerate(a, 1):\n"
        "        cur = [i]\n        for j, cb in enumerate(b, 1):\n"
        "            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))\n"
        "        prev = cur\n    return prev[-1]\n"],
       ["assert edit_distance('kitten', 'sitting') == 3", "assert edit_distance('', 'abc') == 3",
        "assert edit_distance('flaw', 'lawn') == 2", "assert edit_distance('same', 'same') == 0"]),
    _p("coin_change", 3, "dynamic programming", "def coin_change(coins: list[int], amount: int) -> int",
       "Return the fewest coins (unlimited supply of each value) summing to amount, or -1 if impossible.",
       ["def coin_change(coins, amount):\n    best = [0] + [amount + 1] * amount\n"
        "    for a in range(1, amount + 1):\n        for c in coins:\n"
        "            if c <= a:\n                best[a] = min(best[a], best[a - c] + 1)\n"
        "    return best[amount] if best[amount] <= amount else -1\n"],
       ["assert coin_change([1, 2, 5], 11) == 3", "assert coin_change([2], 3) == -1",
        "assert coin_change([1], 0) == 0", "assert coin_change([3, 7, 405, 436], 8839) == 25"]),
    _p("num_islands", 3, "graphs", "def num_islands(grid: list[str]) -> int",
       "grid rows are strings of '1' (land) and '0' (water); count the islands, i.e. groups of "
       "land cells connected horizontally or vertically.",
       ["def num_islands(grid):\n    seen, count = set(), 0\n"
        "    for r, row in enumerate(grid):\n        for c, v in enumerate(row):\n"
        "            if v != '1' or (r, c) in seen:\n                continue\n"
        "            count += 1\n            stack = [(r, c)]\n            seen.add((r, c))\n"
        "            while stack:\n                y, x = stack.pop()\n"
        "                for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):\n"
        "                    if 0 <= ny < len(grid) and 0 <= nx < len(grid[ny]) and "
        "grid[ny][nx] == '1' and (ny, nx) not in seen:\n"
        "                        seen.add((ny, nx))\n                        stack.append((ny, nx))\n"
        "    return count\n"],
       ["assert num_islands(['11000', '11000', '00100', '00011']) == 3",
        "assert num_islands([]) == 0", "assert num_islands(['111', '010', '111']) == 1",
        "assert num_islands(['101', '010', '101']) == 5"]),
    _p("eval_rpn", 3, "stacks", "def eval_rpn(tokens: list[str]) -> int",
       "Evaluate an expression in reverse Polish notation with + - * / on integers; division "
       "truncates toward zero.",
       ["def eval_rpn(tokens):\n    st = []\n    ops = {'+': lambda a, b: a + b, '-': lambda a, b: a - b,\n"
        "           '*': lambda a, b: a * b, '/': lambda a, b: int(a / b)}\n"
        "    for t in tokens:\n        if t in ops:\n            b, a = st.pop(), st.pop()\n"
        "            st.append(ops[t](a, b))\n        else:\n            st.append(int(t))\n"
        "    return st[-1]\n"],
       ["assert eval_rpn(['2', '1', '+', '3', '*']) == 9",
        "assert eval_rpn(['4', '13', '5', '/', '+']) == 6", "assert eval_rpn(['-7', '2', '/']) == -3",
        "assert eval_rpn(['10', '6', '9', '3', '+', '-11', '*', '/', '*', '17', '+', '5', '+']) == 22"]),
    _p("spiral_order", 3, "matrices", "def spiral_order(m: list[list[int]]) -> list[int]",
       "Return the elements of the rectangular matrix m in clockwise spiral order from the top-left.",
       ["def spiral_order(m):\n    out = []\n    m = [list(r) for r in m]\n    while m:\n"
        "        out += m.pop(0)\n        m = [list(r) for r in zip(*m)][::-1]\n    return out\n"],
       ["assert spiral_order([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [1, 2, 3, 6, 9, 8, 7, 4, 5]",
        "assert spiral_order([]) == []", "assert spiral_order([[1, 2, 3, 4]]) == [1, 2, 3, 4]",
        "assert spiral_order([[1], [2], [3]]) == [1, 2, 3]"]),
]
PROBLEMS: dict[str, Problem] = {p.name: p for p in _PROBLEM_LIST}

PROMPT = (
    "Write a Python function with this signature:\n\n    {signature}\n\n{description}\n\n"
    "Use only the standard library. Reply with the complete function in a single "
    "```python fenced code block."
)


def problem_task(problem: Problem, task_id: str) -> GymTask:
    """The ``GymTask`` of one hand-written problem."""
    return GymTask(
        task_id=task_id, domain="coding",
        prompt=PROMPT.format(signature=problem.signature, description=problem.description),
        answer=problem.references[0], tags=["coding", problem.topic], difficulty=problem.level,
        metadata={"format": "assert", "entry_point": problem.name,
                  "tests": "\n".join(problem.tests), "references": list(problem.references)},
    )


# --------------------------------------------------------------------------- extraction

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def extract_code(response: str) -> str:
    """The code of a response: last ```python fence, else last unlabelled fence, else all text."""
    fences = _FENCE.findall(response)
    for wanted in (lambda tag: tag.lower() in _PYTHON_TAGS, lambda tag: tag == ""):
        picked = [body for tag, body in fences if wanted(tag)]
        if picked:
            return picked[-1].strip("\n")
    return response.strip("\n") if not fences else ""


def _defines(code: str, name: str | None) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name
               for n in tree.body)


def _imports(source: str) -> str:
    """The top-level import statements of ``source`` (a HumanEval prompt)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    return "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))


def solution_source(task: GymTask, code: str) -> str:
    """What runs in the sandbox: the code, completed by the task's prompt code when it has one.

    A HumanEval response either defines the entry point (the prompt's imports go in front)
    or is the body that continues the prompt (prompt + body).
    """
    prompt_code = task.metadata.get("prompt_code")
    if not prompt_code:
        return code
    if _defines(code, task.metadata.get("entry_point")):
        return f"{_imports(prompt_code)}\n{code}\n"
    return f"{prompt_code}{code}\n"


# --------------------------------------------------------------------------- verification


def _job(task: GymTask, response: Any, limits: SandboxLimits) -> SandboxJob | Verification:
    """The sandbox job for one response, or the 0 it scores without running."""
    if not isinstance(response, str):
        return Verification(0.0, f"response is not text ({type(response).__name__})")
    tests = task.metadata.get("tests")
    if not isinstance(tests, str) or not tests.strip():
        return Verification(0.0, "task has no unit tests in metadata['tests']")
    code = extract_code(response)
    if not code.strip():
        return Verification(0.0, "no code in the response")
    entry = task.metadata.get("entry_point")
    entry = entry if isinstance(entry, str) and entry.isidentifier() else None
    return SandboxJob(solution_source(task, code), tests, entry, limits)


def _verdict(v: SandboxVerdict) -> Verification:
    reason = (f"passed {v.tests_passed}/{v.tests_run} tests" if v.passed
              else f"sandbox: {v.reason} ({v.tests_passed}/{v.tests_run} tests passed)")
    return Verification(1.0 if v.passed else 0.0, reason,
                        {"sandbox_reason": v.reason, "tests_run": v.tests_run,
                         "tests_passed": v.tests_passed, "wall_s": round(v.wall_s, 4),
                         "isolation": v.isolation})


@register_domain("coding")
class CodingDomain(Domain):
    description = ("Python functions judged by unit tests in the hardened sandbox "
                   "(also HumanEval/MBPP files).")
    limits: SandboxLimits = SandboxLimits()

    def generate(self, rng, n: int, difficulty: int) -> list[GymTask]:
        pool = sorted((p for p in PROBLEMS.values() if p.level == difficulty), key=lambda p: p.name)
        if not pool:
            raise ValueError(f"coding has no level {difficulty}; levels: {self.levels}")
        tasks: list[GymTask] = []
        while len(tasks) < n:
            for problem in rng.sample(pool, len(pool))[: n - len(tasks)]:
                task_id = f"coding-L{difficulty}-{len(tasks):04d}-{problem.name}"
                tasks.append(problem_task(problem, task_id))
        return tasks

    def verify(self, task: GymTask, response: str) -> Verification:
        return self.verify_many([(task, response)])[0]

    def verify_many(self, pairs: list[tuple[GymTask, str]],
                    max_workers: int | None = None) -> list[Verification]:
        prepared = [_job(task, response, self.limits) for task, response in pairs]
        jobs = [p for p in prepared if isinstance(p, SandboxJob)]
        verdicts = iter(run_many(jobs, max_workers) if len(jobs) > 1
                        else [run_tests(j.solution, j.tests, j.limits, j.entry_point) for j in jobs])
        return [p if isinstance(p, Verification) else _verdict(next(verdicts)) for p in prepared]


# --------------------------------------------------------------------------- public task forms


def from_humaneval(record: Mapping[str, Any]) -> GymTask:
    """A HumanEval record (task_id, prompt, test with ``check(candidate)``, entry_point)."""
    prompt_code = str(record["prompt"])
    return GymTask(
        task_id=str(record["task_id"]), domain="coding",
        prompt=("Complete the following Python function. Reply with the complete function in a "
                f"single ```python fenced code block.\n\n```python\n{prompt_code}```"),
        answer=record.get("canonical_solution"), tags=["coding", "humaneval"], difficulty=2,
        metadata={"format": "humaneval", "entry_point": str(record["entry_point"]),
                  "tests": str(record["test"]), "prompt_code": prompt_code},
    )


_BUILTIN_NAMES = frozenset(dir(builtins))


def infer_entry_point(test_list: Sequence[str]) -> str | None:
    """The first non-builtin function called in MBPP asserts (``assert f(x) == y`` -> ``f``)."""
    for line in test_list:
        try:
            tree = ast.parse(line)
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id not in _BUILTIN_NAMES):
                return node.func.id
    return None


def from_mbpp(record: Mapping[str, Any]) -> GymTask:
    """An MBPP record (task_id, text, test_list, optional test_setup_code / code / entry_point)."""
    test_list = [str(t) for t in record["test_list"]]
    entry = record.get("entry_point") or infer_entry_point(test_list)
    setup = str(record.get("test_setup_code") or "")
    tests = "\n".join([setup, *test_list]).strip("\n")
    return GymTask(
        task_id=str(record["task_id"]), domain="coding",
        prompt=(f"{record['text']}\n"
                + (f"The function must be named `{entry}`. " if entry else "")
                + "Your code should pass these tests:\n\n" + "\n".join(test_list)
                + "\n\nReply with the code in a single ```python fenced code block."),
        answer=record.get("code"), tags=["coding", "mbpp"], difficulty=1,
        metadata={"format": "mbpp", "entry_point": entry, "tests": tests},
    )


# --------------------------------------------------------------------------- K1.5 test filter


def required(fraction: float, total: int) -> int:
    """How many of ``total`` make ``fraction`` (7 of 10 for 0.7), robust to float noise."""
    return math.ceil(round(fraction * total, 9))


def k15_select(matrix: Sequence[Sequence[bool]], test_fraction: float = 0.7,
               problem_fraction: float = 0.9) -> tuple[list[int], bool, dict[str, Any]]:
    """K1.5's rule on a pass matrix ``matrix[test][reference]``.

    A test is kept when at least ``test_fraction`` of the references pass it; the problem is
    kept when it has kept tests and at least ``problem_fraction`` of the references pass all
    of them. Returns (kept test indices, keep problem, report).
    """
    n_refs = len(matrix[0]) if matrix else 0
    test_need, problem_need = required(test_fraction, n_refs), required(problem_fraction, n_refs)
    per_test = [sum(row) for row in matrix]
    kept = [i for i, passes in enumerate(per_test) if n_refs and passes >= test_need]
    refs_ok = [all(matrix[i][r] for i in kept) for r in range(n_refs)]
    keep = bool(kept) and sum(refs_ok) >= problem_need
    report = {"references": n_refs, "test_pass_counts": per_test, "test_need": test_need,
              "kept_tests": kept, "references_passing_kept": sum(refs_ok),
              "failing_references": [r for r, ok in enumerate(refs_ok) if not ok],
              "problem_need": problem_need, "keep_problem": keep}
    return kept, keep, report


def filter_generated_tests(problem: GymTask | Problem, candidate_tests: Sequence[str],
                           reference_solutions: Sequence[str], test_fraction: float = 0.7,
                           problem_fraction: float = 0.9, limits: SandboxLimits | None = None,
                           max_workers: int | None = None) -> tuple[list[str], bool, dict[str, Any]]:
    """Run every candidate test against every reference in the sandbox and apply K1.5's rule.

    Returns (kept tests, keep problem, report); the report holds the pass matrix, the counts
    and the sandbox reason of each failing pair.
    """
    entry = problem.name if isinstance(problem, Problem) else problem.metadata.get("entry_point")
    pairs = [(t, r) for t in candidate_tests for r in reference_solutions]
    verdicts = run_many([SandboxJob(r, t, entry, limits) for t, r in pairs], max_workers)
    n = len(reference_solutions)
    matrix = [[v.passed for v in verdicts[i * n:(i + 1) * n]] for i in range(len(candidate_tests))]
    kept, keep, report = k15_select(matrix, test_fraction, problem_fraction)
    report["matrix"] = matrix
    report["failures"] = [{"test": t, "reference": i % n, "reason": v.reason}
                          for i, ((t, _), v) in enumerate(zip(pairs, verdicts)) if not v.passed]
    return [candidate_tests[i] for i in kept], keep, report
