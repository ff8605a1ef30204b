"""The math/STEM gym domain: seeded problems at three levels, verified by answer equivalence.

Level 1 is arithmetic and fractions, level 2 linear equations, percentages and word problems,
level 3 quadratics, linear systems, probability and combinatorics. Each kind is one small
generator in ``GENERATORS`` (level → kind → function) returning the problem, the exact gold
answer as a string and its coverage tags; a level draws its kinds uniformly. Gold answers are
exact (integers or reduced fractions), so most checks are settled by the fast numeric path of
``answers.equivalent`` and math-verify is reached only for symbolic answers.

``MathDomain.from_files`` serves user-supplied JSONL sets instead (``problem``/``question`` and
``answer``/``solution`` fields; a solution's boxed answer is the gold). The policy must give its
final answer in ``\\boxed{}``; rewards are binary.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from math import comb, factorial
from pathlib import Path
from typing import Callable

from kimi_pipeline.gym.answers import equivalent, extract_answer, extract_final_answer
from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.records import GymTask

INSTRUCTION = "Give your final answer in \\boxed{}, as an exact number (reduced fraction if needed)."

Problem = tuple[str, str, list[str], dict]  # text, gold, tags, extra metadata
Generator = Callable[[random.Random], Problem]


def fraction_text(value: Fraction) -> str:
    return f"{value.numerator}" + ("" if value.denominator == 1 else f"/{value.denominator}")


def polynomial(terms: list[tuple[int, str]]) -> str:
    """``[(2, 'x'), (-1, 'y'), (3, '')]`` → ``'2x - y + 3'``; zero terms are dropped."""
    text = ""
    for coef, var in terms:
        if coef:
            body = f"{'' if abs(coef) == 1 and var else abs(coef)}{var}"
            sign = ("-" if coef < 0 else "") if not text else (" - " if coef < 0 else " + ")
            text += sign + body
    return text or "0"


def _frac_tex(value: Fraction) -> str:
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _nonzero(rng: random.Random, low: int, high: int) -> int:
    return rng.choice([v for v in range(low, high + 1) if v != 0])


# ----------------------------------------------------------------------------- level 1


def arithmetic(rng: random.Random) -> Problem:
    a, b, c, d = (rng.randint(2, 30) for _ in range(4))
    op1, op2 = rng.choice("+-"), rng.choice("+-*")
    sign = 1 if op1 == "+" else -1
    if op2 == "*":
        gold = a + sign * b * c * d
    else:
        gold = a + sign * b * c + (d if op2 == "+" else -d)
    return f"Compute {a} {op1} {b} * {c} {op2} {d}.", str(gold), ["arithmetic"], {}


def fractions(rng: random.Random) -> Problem:
    x = Fraction(rng.randint(1, 9), rng.randint(2, 12))
    y = Fraction(rng.randint(1, 9), rng.randint(2, 12))
    op = rng.choice(["+", "-", "\\times"])
    gold = {"+": x + y, "-": x - y, "\\times": x * y}[op]
    latex = f"{_frac_tex(x)} {op} {_frac_tex(y)}"
    text = f"Compute ${latex}$ and reduce."
    return text, fraction_text(gold), ["arithmetic", "fractions"], {}


# ----------------------------------------------------------------------------- level 2


def linear_equation(rng: random.Random) -> Problem:
    a, x, b = _nonzero(rng, -9, 9), rng.randint(-15, 15), rng.randint(-20, 20)
    c = a * x + b
    text = f"Solve for $x$: ${polynomial([(a, 'x'), (b, '')])} = {c}$."
    return text, str(x), ["algebra", "linear-equations"], {}


def percentage(rng: random.Random) -> Problem:
    base, pct = rng.randint(2, 60) * 10, rng.choice([5, 10, 12, 15, 20, 25, 30, 40, 75])
    if rng.random() < 0.5:
        gold = Fraction(base * pct, 100)
        return f"What is {pct}% of {base}?", fraction_text(gold), ["percentages"], {}
    change = rng.choice(["increased", "decreased"])
    sign = 1 if change == "increased" else -1
    gold = Fraction(base) * (1 + sign * Fraction(pct, 100))
    text = f"A price of {base} dollars is {change} by {pct}%. What is the new price in dollars?"
    return text, fraction_text(gold), ["percentages", "word-problems"], {}


def word_problem(rng: random.Random) -> Problem:
    speed, hours, extra = rng.randint(30, 90), rng.randint(2, 6), rng.randint(10, 80)
    templates = [
        (f"A train travels at {speed} km/h for {hours} hours, then {extra} km more. "
         "How many km did it travel in total?", speed * hours + extra),
        (f"Ann has {speed + 20} apples. She gives {hours} friends {hours + 1} apples each and "
         f"buys {extra} more. How many apples does she have?",
         speed + 20 - hours * (hours + 1) + extra),
        (f"A worker earns {speed} dollars a day. After {hours} weeks of 5 working days and a "
         f"{extra}-dollar bonus, what did the worker earn in dollars?", speed * hours * 5 + extra),
    ]
    text, gold = rng.choice(templates)
    return text, str(gold), ["word-problems", "arithmetic"], {}


# ----------------------------------------------------------------------------- level 3


def quadratic(rng: random.Random) -> Problem:
    a = rng.choice([1, 1, 2, 3])
    r1, r2 = rng.randint(-9, 9), rng.randint(-9, 9)
    while r2 == r1:
        r2 = rng.randint(-9, 9)
    b, c = -a * (r1 + r2), a * r1 * r2
    gold = ", ".join(str(r) for r in sorted((r1, r2)))
    equation = f"{polynomial([(a, 'x^2'), (b, 'x'), (c, '')])} = 0"
    text = f"Find both real solutions of ${equation}$, separated by a comma."
    return text, gold, ["algebra", "quadratics"], {"unordered": True}


def linear_system(rng: random.Random) -> Problem:
    x, y = rng.randint(-9, 9), rng.randint(-9, 9)
    while True:
        a, b, c, d = (_nonzero(rng, -6, 6) for _ in range(4))
        if a * d - b * c:
            break
    eq = lambda p, q, v: f"{polynomial([(p, 'x'), (q, 'y')])} = {v}"  # noqa: E731
    first, second = eq(a, b, a * x + b * y), eq(c, d, c * x + d * y)
    text = f"Solve the system ${first}$ and ${second}$. Give the pair $(x, y)$."
    return text, f"({x}, {y})", ["algebra", "linear-systems"], {}


def probability(rng: random.Random) -> Problem:
    red, blue = rng.randint(2, 8), rng.randint(2, 8)
    if rng.random() < 0.5:
        gold = Fraction(red, red + blue) * Fraction(red - 1, red + blue - 1)
        text = (f"A bag holds {red} red and {blue} blue balls. Two are drawn without replacement. "
                "What is the probability both are red?")
        return text, fraction_text(gold), ["probability"], {}
    target = rng.randint(3, 11)
    ways = sum(1 for i in range(1, 7) for j in range(1, 7) if i + j == target)
    text = f"Two fair dice are rolled. What is the probability their sum is {target}?"
    return text, fraction_text(Fraction(ways, 36)), ["probability"], {}


def combinatorics(rng: random.Random) -> Problem:
    n, k = rng.randint(5, 12), rng.randint(2, 4)
    if rng.random() < 0.5:
        text = f"In how many ways can a committee of {k} be chosen from {n} people?"
        return text, str(comb(n, k)), ["combinatorics"], {}
    word = rng.choice(["BANANA", "LETTER", "BALLOON", "COOKIE", "ASSESS", "PEPPER"])
    count = factorial(len(word))
    for letter in set(word):
        count //= factorial(word.count(letter))
    text = f"How many distinct arrangements of the letters of {word} are there?"
    return text, str(count), ["combinatorics"], {}


GENERATORS: dict[int, dict[str, Generator]] = {
    1: {"arithmetic": arithmetic, "fractions": fractions},
    2: {"linear_equation": linear_equation, "percentage": percentage, "word_problem": word_problem},
    3: {"quadratic": quadratic, "linear_system": linear_system, "probability": probability,
        "combinatorics": combinatorics},
}


# ---------------------------------------------------------------------------- data files


def _row_task(row: dict, ref: str) -> GymTask:
    problem = row.get("problem") or row.get("question")
    gold = row.get("answer")
    if gold is None and isinstance(row.get("solution"), str):
        gold = extract_final_answer(row["solution"])
    if not isinstance(problem, str) or not problem.strip():
        raise ValueError("no 'problem' or 'question' text")
    if gold is None or not str(gold).strip():
        raise ValueError("no 'answer', and no single boxed answer in 'solution'")
    return GymTask(
        task_id=str(row.get("id") or ref),
        domain="math",
        prompt=f"{problem.strip()}\n\n{INSTRUCTION}",
        answer=str(gold).strip(),
        tags=["file"] + [str(t) for t in row.get("tags", [])],
        difficulty=int(row.get("level") or row.get("difficulty") or 1),
        metadata={"generator": "file", "source": ref},
    )


def load_tasks(paths: list[str | Path]) -> tuple[list[GymTask], list[str]]:
    """Tasks from JSONL files, and one ``'file:line: reason'`` per row that was skipped."""
    tasks, skipped = [], []
    for path in map(Path, paths):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            ref = f"{path.name}:{number}"
            try:
                tasks.append(_row_task(json.loads(line), ref))
            except (ValueError, TypeError, AttributeError) as exc:
                skipped.append(f"{ref}: {exc}")
    return tasks, skipped


# -------------------------------------------------------------------------------- domain


@register_domain("math")
class MathDomain(Domain):
    description = "Generated math problems or JSONL sets; boxed final answer checked for equivalence."
    levels = (1, 2, 3)

    def __init__(self, tasks: list[GymTask] | None = None, skipped: list[str] | None = None):
        self.file_tasks = tasks or []
        self.skipped = skipped or []

    @classmethod
    def from_files(cls, paths: list[str | Path]) -> "MathDomain":
        """A math domain that serves the problems of JSONL files instead of generating them."""
        return cls(*load_tasks(paths))

    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        if self.file_tasks:
            return self._sample_files(rng, n, difficulty)
        kinds = GENERATORS[difficulty]
        return [self._generated(rng, difficulty, kinds) for _ in range(n)]

    def _generated(self, rng: random.Random, difficulty: int, kinds: dict) -> GymTask:
        kind = rng.choice(sorted(kinds))
        text, gold, tags, extra = kinds[kind](rng)
        return GymTask(
            task_id=f"math-L{difficulty}-{kind}-{rng.getrandbits(48):012x}",
            domain="math",
            prompt=f"{text}\n\n{INSTRUCTION}",
            answer=gold,
            tags=tags,
            difficulty=difficulty,
            metadata={"generator": kind, **extra},
        )

    def _sample_files(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        pool = [t for t in self.file_tasks if t.difficulty == difficulty] or self.file_tasks
        return [rng.choice(pool) for _ in range(n)] if n > len(pool) else rng.sample(pool, n)

    def verify(self, task: GymTask, response: str) -> Verification:
        answer, found = extract_answer(response)
        if answer is None:
            return Verification(0.0, found, {"extracted": None})
        gold = str(task.answer)
        ok, why = equivalent(gold, answer, unordered=bool(task.metadata.get("unordered")))
        return Verification(1.0 if ok else 0.0, why, {"extracted": answer[:200], "gold": gold})
