"""The coding domain: problems, code extraction, sandboxed verification, public forms, K1.5 filter."""

from __future__ import annotations

import dataclasses
import random

import pytest

from kimi_pipeline.gym import sandbox_process
from kimi_pipeline.gym.coding import (
    PROBLEMS,
    CodingDomain,
    extract_code,
    filter_generated_tests,
    from_humaneval,
    from_mbpp,
    infer_entry_point,
    k15_select,
    problem_task,
)
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.gym.sandbox import SandboxLimits

ISOLATED = sandbox_process.namespaces_available()
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs root and util-linux unshare")


def fenced(code: str) -> str:
    return f"Here is my solution.\n\n```python\n{code}\n```\nIt runs in O(n)."


@pytest.fixture()
def coding() -> CodingDomain:
    return get_domain("coding")


def test_problem_pool_covers_three_levels():
    assert len(PROBLEMS) >= 15
    for level in (1, 2, 3):
        assert sum(p.level == level for p in PROBLEMS.values()) >= 5
    for p in PROBLEMS.values():
        assert p.signature.startswith(f"def {p.name}(")
        assert p.references and len(p.tests) >= 4
        assert all(t.startswith("assert ") for t in p.tests)


def test_generate_is_seeded_and_stores_tests(coding):
    a = coding.generate(random.Random(7), 9, 2)
    b = coding.generate(random.Random(7), 9, 2)
    assert [t.model_dump() for t in a] == [t.model_dump() for t in b]
    assert len(a) == 9 and len({t.task_id for t in a}) == 9  # more than the pool: ids stay unique
    assert {t.difficulty for t in a} == {2}
    assert [t.task_id for t in coding.generate(random.Random(8), 9, 2)] != [t.task_id for t in a]
    task = a[0]
    name = task.metadata["entry_point"]
    assert task.metadata["tests"] == "\n".join(PROBLEMS[name].tests)
    assert "```python" in task.prompt and PROBLEMS[name].signature in task.prompt
    with pytest.raises(ValueError):
        coding.generate(random.Random(0), 1, 9)


def test_extract_code():
    assert extract_code("```python\na = 1\n```\ntext\n```python\nb = 2\n```") == "b = 2"
    assert extract_code("```\nx = 1\n```") == "x = 1"
    assert extract_code("```py\nx = 1\n```\n```\ny = 2\n```") == "x = 1"  # labelled wins
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1"
    assert extract_code("```python\ndef f():\n    return 1") == "def f():\n    return 1"  # cut off
    assert extract_code("```bash\nrm -rf /\n```") == ""
    assert extract_code("```python\n```") == ""


@needs_isolation
def test_every_reference_solution_passes(coding):
    pairs = [(problem_task(p, p.name), fenced(ref)) for p in PROBLEMS.values() for ref in p.references]
    results = coding.verify_many(pairs)
    assert [(t.task_id, v.reward) for (t, _), v in zip(pairs, results) if v.reward != 1.0] == []
    assert all(v.reason.startswith("passed 4/4") or v.reason.startswith("passed 5/5") for v in results)


@needs_isolation
def test_wrong_malformed_and_hostile_answers_score_zero(coding, monkeypatch):
    monkeypatch.setattr(coding, "limits", SandboxLimits(cpu_seconds=1, wall_seconds=1.5))
    task = problem_task(PROBLEMS["sum_of_evens"], "t")
    no_tests = task.model_copy(update={"metadata": {"entry_point": "sum_of_evens"}})
    cases = {
        "wrong": fenced("def sum_of_evens(nums):\n    return sum(nums)"),
        "exit": fenced("import os; os._exit(0)"),
        "sys_exit": fenced("import sys\nsys.exit(0)"),
        "fake_output": fenced("print('passed 4/4 tests')\nprint('OK')"),
        "rigged_eq": fenced("class A:\n    def __eq__(self, o):\n        return True\n"
                            "def sum_of_evens(nums):\n    return A()"),
        "infinite": fenced("def sum_of_evens(nums):\n    while True:\n        pass"),
        "syntax": fenced("def sum_of_evens(nums) return 0"),
        "empty": "",
        "prose_fence": "```python\n```\nI could not solve it.",
        "not_text": None,
    }
    pairs = [(task, r) for r in cases.values()] + [(no_tests, cases["wrong"])]
    results = dict(zip([*cases, "no_tests"], coding.verify_many(pairs)))
    assert {k: v.reward for k, v in results.items()} == dict.fromkeys(results, 0.0)
    assert "failed" in results["wrong"].reason
    assert "crashed" in results["exit"].reason
    assert results["infinite"].details["sandbox_reason"] in ("timeout", "cpu_limit")
    assert "syntax_error" in results["syntax"].reason
    assert results["empty"].reason == results["prose_fence"].reason == "no code in the response"
    assert "not text" in results["not_text"].reason
    assert "no unit tests" in results["no_tests"].reason


HUMANEVAL = {
    "task_id": "HumanEval/0",
    "prompt": "from typing import List\n\n\ndef has_close_elements(numbers: List[float], "
              "threshold: float) -> bool:\n    \"\"\" Check if any two numbers are closer than "
              "threshold. \"\"\"\n",
    "canonical_solution": "    for i, a in enumerate(numbers):\n        for j, b in enumerate(numbers):\n"
                          "            if i != j and abs(a - b) < threshold:\n                return True\n"
                          "    return False\n",
    "test": "METADATA = {'author': 'jt'}\n\n\ndef check(candidate):\n"
            "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
            "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n"
            "    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 1.0) == True\n",
    "entry_point": "has_close_elements",
}
HE_FULL = ("def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
           "    s = sorted(numbers)\n    return any(b - a < threshold for a, b in zip(s, s[1:]))")
MBPP = {
    "task_id": 11,
    "text": "Write a python function to remove first and last occurrence of a given character from the string.",
    "code": "def remove_Occ(s,ch):\n    i = s.find(ch)\n    if i >= 0:\n        s = s[:i] + s[i+1:]\n"
            "    j = s.rfind(ch)\n    if j >= 0:\n        s = s[:j] + s[j+1:]\n    return s",
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                  'assert remove_Occ("PHP","P") == "H"'],
}


def test_public_forms_become_gym_tasks():
    he = from_humaneval(HUMANEVAL)
    assert he.task_id == "HumanEval/0" and he.domain == "coding"
    assert he.metadata["entry_point"] == "has_close_elements" and "def check" in he.metadata["tests"]
    assert HUMANEVAL["prompt"] in he.prompt
    mb = from_mbpp(MBPP)
    assert mb.task_id == "11" and mb.metadata["entry_point"] == "remove_Occ"
    assert mb.metadata["tests"].count("assert") == 3
    assert infer_entry_point(["assert len(f(1)) == 2"]) == "f"
    assert infer_entry_point(["not python ("]) is None


@needs_isolation
def test_humaneval_and_mbpp_verification(coding):
    he, mb = from_humaneval(HUMANEVAL), from_mbpp(MBPP)
    pairs = [
        (he, fenced(HE_FULL)),  # whole function; the prompt's `List` import is supplied
        (he, HUMANEVAL["canonical_solution"]),  # body-only completion of the prompt
        (he, fenced("def has_close_elements(numbers, threshold):\n    return True")),
        (mb, MBPP["code"]),  # unfenced
        (mb, fenced("def remove_Occ(s, ch):\n    return s.replace(ch, '', 1)")),
    ]
    assert [v.reward for v in coding.verify_many(pairs)] == [1.0, 1.0, 0.0, 1.0, 0.0]


IS_PRIME_GOOD = [
    "def is_prime(n):\n    if n < 2:\n        return False\n    d = 2\n    while d * d <= n:\n"
    "        if n % d == 0:\n            return False\n        d += 1\n    return True",
    "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))",
    "import math\ndef is_prime(n):\n    return n > 1 and all(n % d for d in range(2, math.isqrt(n) + 1))",
    "def is_prime(n):\n    return sum(n % d == 0 for d in range(1, n + 1)) == 2",
    "def is_prime(n):\n    if n < 4:\n        return n > 1\n    if n % 2 == 0 or n % 3 == 0:\n        return False\n"
    "    i = 5\n    while i * i <= n:\n        if n % i == 0 or n % (i + 2) == 0:\n            return False\n"
    "        i += 6\n    return True",
    "def is_prime(n):\n    if n < 2:\n        return False\n    sieve = [True] * (n + 1)\n"
    "    for i in range(2, n + 1):\n        if sieve[i]:\n            for j in range(i * i, n + 1, i):\n"
    "                sieve[j] = False\n    return sieve[n]",
    "def is_prime(n):\n    return n >= 2 and not any(n % d == 0 for d in range(2, int(n ** 0.5) + 1))",
    "def is_prime(n):\n    return n > 1 and [d for d in range(2, n + 1) if n % d == 0] == [n]",
]
IS_PRIME_BUGGY = [
    "def is_prime(n):\n    return all(n % d for d in range(2, n))",  # says 1 is prime
    "def is_prime(n):\n    return n == 2 or (n > 1 and n % 2 == 1)",  # says odd numbers are prime
]


@needs_isolation
def test_k15_filter_drops_wrong_tests_and_a_problem_with_two_buggy_references():
    task = problem_task(dataclasses.replace(PROBLEMS["clamp"], name="is_prime"), "is_prime")
    good_tests = ["assert is_prime(2) == True", "assert is_prime(1) == False",
                  "assert is_prime(9) == False", "assert is_prime(97) == True"]
    wrong_tests = ["assert is_prime(4) == True", "assert is_prime(15) == True"]
    kept, keep, report = filter_generated_tests(task, good_tests + wrong_tests,
                                                IS_PRIME_GOOD + IS_PRIME_BUGGY)
    assert kept == good_tests
    assert report["test_pass_counts"] == [10, 9, 9, 10, 0, 1]
    assert report["references_passing_kept"] == 8 and report["failing_references"] == [8, 9]
    assert keep is False  # 8/10 references pass the kept tests: under 9/10
    # the same matrix without the second buggy reference: 8/9 < ceil(0.9 * 9) = 9, still dropped;
    # with the configurable fraction at 0.8 it is kept
    matrix = [row[:9] for row in report["matrix"]]
    assert k15_select(matrix)[1] is False
    assert k15_select(matrix, problem_fraction=0.8)[1] is True


def test_k15_select_rule_on_a_pass_matrix():
    one_buggy = [[True] * 10, [True] * 9 + [False], [True] * 7 + [False] * 3, [True] * 6 + [False] * 4]
    kept, keep, report = k15_select(one_buggy)
    assert kept == [0, 1, 2] and report["test_need"] == 7
    assert keep is False  # reference 7-9 fail kept test 2: 7/10 pass all
    kept, keep, _ = k15_select(one_buggy[:2])
    assert kept == [0, 1] and keep is True  # 9/10
    assert k15_select(one_buggy, test_fraction=0.95)[0] == [0]
    assert k15_select([[False] * 10])[:2] == ([], False)
    assert k15_select([])[:2] == ([], False)
