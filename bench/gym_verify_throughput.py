"""Time math and logic verification on one core: checks/s overall, per domain and per response kind.

Run: ``.venv/bin/python bench/gym_verify_throughput.py [n_tasks_per_domain]`` (default 1,000 each).
Tasks are generated across all three levels and stored/reloaded as JSON (as the gym reads them).
Every task gets four responses: the gold answer (``correct``), an equivalent rewrite
(``variant``: ``\\frac{a}{b}`` ↔ decimal, ``x = n``, reversed roots, lower-case text; one in
five math variants is symbolic, e.g. ``\\sqrt{n^2}``, so it needs math-verify), a wrong answer
(``incorrect``) and a hedge (``adversarial``: several candidate answers). Parse caches are
cleared first, so the numbers are for a cold cache. The target is ≥ 1,000 checks/s per core.
Prints a table; never asserts.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections import defaultdict
from fractions import Fraction

if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])

from kimi_pipeline.gym import answers  # noqa: E402
from kimi_pipeline.gym.registry import get_domain  # noqa: E402
from kimi_pipeline.records import GymTask  # noqa: E402


def math_variant(task: GymTask, rng: random.Random) -> str:
    gold = str(task.answer)
    if task.metadata.get("unordered"):
        return ", ".join(reversed(gold.split(", ")))
    if gold.startswith("("):
        x, y = gold.strip("()").split(", ")
        return f"x = {x}, y = {y}"
    value = Fraction(gold)
    if value.denominator != 1:
        return f"\\frac{{{value.numerator}}}{{{value.denominator}}}" if rng.random() < 0.5 else f"{float(value):.12g}"
    if value > 0 and rng.random() < 0.2:
        return f"\\sqrt{{{value.numerator ** 2}}}"  # math-verify path
    return f"x = {value.numerator}" if rng.random() < 0.5 else f"{value.numerator}.0"


def math_wrong(task: GymTask) -> str:
    gold = str(task.answer)
    if gold.startswith("("):
        x, y = gold.strip("()").split(", ")
        return f"({int(x) + 1}, {y})"
    if "," in gold:
        low, high = gold.split(", ")
        return f"{low}, {int(high) + 1}"
    return str(Fraction(gold) + 1)


def math_responses(task: GymTask, rng: random.Random) -> dict[str, str]:
    box = "Working through the steps carefully...\n\n\\boxed{{{}}}".format
    return {
        "correct": box(task.answer),
        "variant": box(math_variant(task, rng)),
        "incorrect": box(math_wrong(task)),
        "adversarial": f"\\boxed{{{task.answer}}} or maybe \\boxed{{{math_wrong(task)}}}",
    }


def logic_responses(task: GymTask, rng: random.Random) -> dict[str, str]:
    gold = task.answer[0] if isinstance(task.answer, list) else str(task.answer)
    tag = "Let me reason about it.\n<answer>{}</answer>".format
    return {
        "correct": tag(gold),
        "variant": tag(f"  {gold.lower() if task.metadata['generator'] in ('morse', 'riddle') else gold}  "),
        "incorrect": tag(str(int(gold) + 1000) if gold.isdigit() else rng.choice(["1 2 3", gold[::-1] + "x"])),
        "adversarial": f"<answer>{gold}</answer> or <answer>something else</answer>",
    }


def build(n: int) -> list[tuple[str, str, GymTask, str]]:
    rng = random.Random(0)
    cases = []
    for name, respond in (("math", math_responses), ("logic", logic_responses)):
        domain = get_domain(name)
        for level in domain.levels:
            count = n // len(domain.levels) + (level <= n % len(domain.levels))
            for task in domain.generate(rng, count, level):
                stored = GymTask.from_json(task.to_json())
                for kind, response in respond(stored, rng).items():
                    cases.append((name, kind, stored, response))
    return cases


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    started = time.perf_counter()
    cases = build(n)
    print(f"built {len(cases)} checks on {2 * n} tasks in {time.perf_counter() - started:.1f}s")
    get_domain("math").verify(cases[0][2], "\\boxed{\\sqrt{2}}")  # first-use imports are not checks
    answers._parse.cache_clear()
    answers._math_verify.cache_clear()
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    rewards: dict[tuple[str, str], float] = defaultdict(float)
    for name, kind, task, response in cases:
        domain = get_domain(name)
        t0 = time.perf_counter()
        verdict = domain.verify(task, response)
        seconds[name, kind] += time.perf_counter() - t0
        counts[name, kind] += 1
        rewards[name, kind] += verdict.reward
    print(f"{'domain':8} {'kind':12} {'checks':>7} {'checks/s':>10} {'mean reward':>12}")
    for key in sorted(counts):
        print(f"{key[0]:8} {key[1]:12} {counts[key]:7d} {counts[key] / seconds[key]:10.0f} {rewards[key] / counts[key]:12.3f}")
    for name in ("math", "logic"):
        keys = [k for k in counts if k[0] == name]
        total = sum(counts[k] for k in keys)
        print(f"{name:8} {'all':12} {total:7d} {total / sum(seconds[k] for k in keys):10.0f}")
    print(f"{'overall':21} {len(cases):7d} {len(cases) / sum(seconds.values()):10.0f}  (1 core, cold parse cache)")


if __name__ == "__main__":
    main()
