"""The math domain: seeded generation at every level, and verification of its gold answers."""

from __future__ import annotations

import json
import random
from fractions import Fraction

import pytest

from kimi_pipeline.gym.math_domain import GENERATORS, MathDomain, load_tasks
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.records import GymTask

DOMAIN = get_domain("math")


def tasks(level: int, n: int = 40, seed: int = 0) -> list[GymTask]:
    return DOMAIN.generate(random.Random(seed), n, level)


def test_registered_with_three_levels():
    assert isinstance(DOMAIN, MathDomain)
    assert DOMAIN.levels == (1, 2, 3) and set(GENERATORS) == {1, 2, 3}


@pytest.mark.parametrize("level", [1, 2, 3])
def test_generation_is_seeded_and_covers_every_kind(level):
    first, again = tasks(level), tasks(level)
    assert [t.model_dump() for t in first] == [t.model_dump() for t in again]
    assert tasks(level, seed=1)[0].prompt != first[0].prompt or tasks(level, seed=1)[1].prompt != first[1].prompt
    assert {t.metadata["generator"] for t in first} == set(GENERATORS[level])
    assert all(t.domain == "math" and t.difficulty == level and "\\boxed{}" in t.prompt for t in first)
    assert len({t.task_id for t in first}) == len(first)


def test_tags_cover_the_topics():
    tags = {tag for level in (1, 2, 3) for t in tasks(level) for tag in t.tags}
    assert {"arithmetic", "fractions", "algebra", "percentages", "word-problems", "probability", "combinatorics"} <= tags


@pytest.mark.parametrize("level", [1, 2, 3])
def test_gold_answers_pass_after_json_round_trip(level):
    for task in tasks(level):
        stored = GymTask.from_json(task.to_json())
        verdict = DOMAIN.verify(stored, f"Let me work it out.\n\n\\boxed{{{stored.answer}}}")
        assert verdict.reward == 1.0, (stored.prompt, stored.answer, verdict.reason)


def test_gold_answers_are_correct_for_known_problems():
    rng = random.Random(3)
    for _ in range(30):
        text, gold, _, _ = GENERATORS[1]["fractions"](rng)
        nums = [int(v) for v in __import__("re").findall(r"\{(\d+)\}", text)]
        x, y = Fraction(nums[0], nums[1]), Fraction(nums[2], nums[3])
        assert Fraction(gold) in {x + y, x - y, x * y}
    for task in tasks(3, n=60):
        if task.metadata["generator"] == "quadratic":
            roots = [int(r) for r in task.answer.split(", ")]
            assert len(set(roots)) == 2


def test_equivalent_variants_pass_and_wrong_answers_fail():
    task = GymTask(task_id="t", domain="math", prompt="p", answer="1/2")
    for response in ["\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", "\\boxed{\\dfrac{1}{2}}", "Answer: 1/2", "\\boxed{50\\%}"]:
        assert DOMAIN.verify(task, response).reward == 1.0, response
    for response in ["\\boxed{0.25}", "\\boxed{2}", "\\boxed{\\frac{2}{1}}"]:
        assert DOMAIN.verify(task, response).reward == 0.0, response


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("\\boxed{5} \\boxed{6} \\boxed{7}", "ambiguous"),  # padded with several candidates
        ("\\boxed{5 \\text{ or } 6}", "hedged"),
        ("the answer is 5 or 6", "hedged"),
        ("Long ramble... we get 5 somewhere, then keep talking about other numbers like 6.", "no final answer"),
        ("\\boxed{" + "5" * 600 + "}", "longer than"),
        ("\\boxed{\\frac{", "no final answer"),
        ("", "empty"),
    ],
)
def test_adversarial_responses_score_zero_with_reason(response, reason):
    task = GymTask(task_id="t", domain="math", prompt="p", answer="5")
    verdict = DOMAIN.verify(task, response)
    assert verdict.reward == 0.0
    assert reason in verdict.reason


def test_quadratic_roots_in_any_order_and_systems_in_order():
    quad = GymTask(task_id="q", domain="math", prompt="p", answer="-3, 2", metadata={"unordered": True})
    assert DOMAIN.verify(quad, "\\boxed{x = 2, x = -3}").reward == 1.0
    assert DOMAIN.verify(quad, "\\boxed{2}").reward == 0.0
    system = GymTask(task_id="s", domain="math", prompt="p", answer="(4, -1)")
    assert DOMAIN.verify(system, "\\boxed{(4, -1)}").reward == 1.0
    assert DOMAIN.verify(system, "\\boxed{(-1, 4)}").reward == 0.0


def test_from_files_reads_answers_and_boxed_solutions(tmp_path):
    rows = [
        {"problem": "What is 2+2?", "answer": "4", "level": 1},
        {"question": "Half of one?", "solution": "Divide: $\\boxed{\\frac{1}{2}}$.", "level": 2},
        {"question": "No answer here"},
        {"answer": "3"},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n", encoding="utf-8")
    loaded, skipped = load_tasks([path])
    assert [t.answer for t in loaded] == ["4", "\\frac{1}{2}"]
    assert len(skipped) == 3 and all(s.startswith("set.jsonl:") for s in skipped)
    domain = MathDomain.from_files([path])
    served = domain.generate(random.Random(0), 3, 2)
    assert all(t.answer == "\\frac{1}{2}" for t in served)
    assert domain.verify(served[0], "\\boxed{0.5}").reward == 1.0
