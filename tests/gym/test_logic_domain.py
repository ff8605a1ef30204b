"""The logic domain: reasoning-gym puzzles and our own generators verify after a JSON round trip."""

from __future__ import annotations

import random

import pytest

from kimi_pipeline.gym.logic_domain import (
    RG_CONFIGS,
    RIDDLES,
    LogicDomain,
    level_generators,
    morse_encode,
)
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.records import GymTask

DOMAIN = get_domain("logic")
TASKS = {level: DOMAIN.generate(random.Random(level), 40, level) for level in (1, 2, 3)}


def stored(task: GymTask) -> GymTask:
    return GymTask.from_json(task.to_json())


def gold_text(task: GymTask) -> str:
    return task.answer[0] if isinstance(task.answer, list) else str(task.answer)


def by_generator(name: str) -> list[GymTask]:
    return [t for level in TASKS.values() for t in level if t.metadata["generator"] == name]


def test_registered_and_names_generators():
    assert isinstance(DOMAIN, LogicDomain)
    names = {t.metadata["generator"] for level in TASKS.values() for t in level}
    assert {"rg:puzzle24", "rg:sudoku", "rg:cryptarithm", "morse", "riddle", "table"} <= names
    for level in (1, 2, 3):
        assert set(level_generators(level)) >= {"morse", "riddle", "table"} | {f"rg:{n}" for n in RG_CONFIGS[level]}


def test_generation_is_seeded():
    again = DOMAIN.generate(random.Random(2), 40, 2)
    assert [t.model_dump() for t in again] == [t.model_dump() for t in TASKS[2]]
    assert len({t.task_id for t in again}) == 40


@pytest.mark.parametrize("level", [1, 2, 3])
def test_gold_passes_and_garbage_fails_after_json_round_trip(level):
    for task in map(stored, TASKS[level]):
        right = DOMAIN.verify(task, f"Reasoning...\n<answer>{gold_text(task)}</answer>")
        assert right.reward == 1.0, (task.metadata["generator"], right.reason)
        wrong = DOMAIN.verify(task, "<answer>7 and also 8</answer>")
        assert wrong.reward == 0.0 and wrong.reason


def test_puzzle24_accepts_any_valid_expression_and_rejects_wrong_ones():
    task = GymTask(
        task_id="p24", domain="logic", prompt="p", answer="(3 + 3) * (2 + 2)",
        metadata={"generator": "rg:puzzle24", "rg_dataset": "puzzle24", "rg_config": {},
                  "rg_entry": {"question": "q", "answer": "(3 + 3) * (2 + 2)",
                               "metadata": {"numbers": [3, 3, 2, 2]}}},
    )
    assert DOMAIN.verify(task, "<answer>(2 + 2) * (3 + 3)</answer>").reward == 1.0
    assert DOMAIN.verify(task, "<answer>3 * 3 + 2 + 2</answer>").reward == 0.0  # 13
    assert DOMAIN.verify(task, "<answer>24</answer>").reward == 0.0  # numbers not used
    assert DOMAIN.verify(task, "<answer>__import__('os')</answer>").reward == 0.0


def test_sudoku_rejects_a_grid_with_one_cell_changed():
    task = stored(by_generator("rg:sudoku")[0])
    grid = gold_text(task)
    flipped = ("1" if grid[0] != "1" else "2") + grid[1:]
    assert DOMAIN.verify(task, f"<answer>{flipped}</answer>").reward == 0.0


def test_morse_is_case_and_space_insensitive_but_exact():
    assert morse_encode("sos hi") == "... --- ... / .... .."
    task = stored(by_generator("morse")[0])
    gold = gold_text(task)
    assert DOMAIN.verify(task, f"<answer>  {gold.lower()} </answer>").reward == 1.0
    assert DOMAIN.verify(task, f"<answer>{gold} {gold}</answer>").reward == 0.0
    assert DOMAIN.verify(task, f"<answer>{gold[:-1]}</answer>").reward == 0.0


def test_riddles_accept_aliases_and_reject_hedges():
    assert len(RIDDLES) >= 20 and {lvl for lvl, _, _ in RIDDLES} == {1, 2, 3}
    task = GymTask(task_id="r", domain="logic", prompt="p", answer=["towel"], metadata={"generator": "riddle"})
    for ok in ["A towel", "<answer>It's a towel.</answer>", "<answer>TOWELS</answer>"]:
        response = ok if ok.startswith("<") else f"<answer>{ok}</answer>"
        assert DOMAIN.verify(task, response).reward == 1.0, ok
    for bad in ["a towel or a sponge", "sponge", "towel, sponge, rag"]:
        assert DOMAIN.verify(task, f"<answer>{bad}</answer>").reward == 0.0, bad


def test_table_answers_follow_the_tables():
    tasks = by_generator("table")
    assert tasks and all("| dept_id |" in t.prompt and "departments" in t.prompt for t in tasks)
    numeric = next(t for t in tasks if t.metadata["answer_kind"] == "number")
    value = int(numeric.answer)
    assert DOMAIN.verify(numeric, f"<answer>{value:,}</answer>").reward == 1.0  # thousands separator
    assert DOMAIN.verify(numeric, f"<answer>{value + 1}</answer>").reward == 0.0


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        ("<answer>A</answer> <answer>B</answer>", "ambiguous"),
        ("I believe it is probably something", "no final answer"),
        ("<answer>" + "x" * 2500 + "</answer>", "longer than"),
        (None, "empty"),
    ],
)
def test_malformed_responses_score_zero_with_reason(response, reason):
    task = stored(by_generator("morse")[0])
    verdict = DOMAIN.verify(task, response)
    assert verdict.reward == 0.0 and reason in verdict.reason


def test_broken_task_metadata_is_a_zero_not_an_exception():
    task = GymTask(task_id="x", domain="logic", prompt="p", answer="1",
                   metadata={"generator": "rg:sudoku", "rg_dataset": "sudoku", "rg_entry": {}})
    assert DOMAIN.verify(task, "<answer>1</answer>").reward == 0.0
    unknown = GymTask(task_id="y", domain="logic", prompt="p", answer="1", metadata={"generator": "nope"})
    assert "unknown generator" in DOMAIN.verify(unknown, "<answer>1</answer>").reason
