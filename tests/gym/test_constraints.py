"""The constraint table: every row samples, renders and checks; seeds keep giving the same tasks."""

from __future__ import annotations

import json
import random

import pytest

from kimi_pipeline.gym.constraints import CONSTRAINT_TABLE, CONSTRAINTS, run_check
from kimi_pipeline.gym.instructions import TOPICS
from kimi_pipeline.gym.prose import Text
from kimi_pipeline.gym.registry import get_domain
from tests.gym.test_instructions import BREAD, ESSAY


def test_table_names_are_unique_and_conflicts_name_rows():
    assert len(CONSTRAINTS) == len(CONSTRAINT_TABLE)
    assert all(c.conflicts <= set(CONSTRAINTS) for c in CONSTRAINT_TABLE)


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("row", CONSTRAINT_TABLE, ids=[c.name for c in CONSTRAINT_TABLE])
def test_every_row_samples_renders_and_checks(row, level):
    keywords = TOPICS[3].keywords
    params = row.sample(random.Random(level), keywords, level)
    assert params == row.sample(random.Random(level), keywords, level)  # seeded
    assert list(params) == list(row.params) and json.loads(json.dumps(params)) == params
    text = row.text(params)
    assert text.strip() and "{" not in text and "}" not in text
    for response in (ESSAY, BREAD, ESSAY.upper(), "", "x"):
        ok, reason = run_check(row, Text(response), params)
        assert isinstance(ok, bool) and reason and not reason.startswith("cannot check"), reason


def test_list_parameters_render_quoted():
    assert CONSTRAINTS["include_keywords"].text({"keywords": ["hive", "honey"]}) == (
        "Include the keywords 'hive', 'honey'.")


def test_a_seed_gives_the_same_task_as_before_the_table():
    [t] = get_domain("instruction_following").generate(random.Random(25), 1, 3)
    assert t.task_id == "instruction_following-3-953099bdb051"
    assert t.prompt == (
        "Write a review of a small neighbourhood library.\n\nFollow these instructions:\n"
        "1. Begin your response with the exact phrase 'Picture this'.\n"
        "2. Include the keywords 'books', 'children', 'quiet'.\n"
        "3. Use fewer than 2 words written entirely in capital letters.\n"
        "4. Your answer must contain exactly 5 bullet points, each on its own line starting "
        "with '* '.")
    assert t.metadata["constraints"] == [
        {"name": "start_with", "params": {"phrase": "Picture this"}},
        {"name": "include_keywords", "params": {"keywords": ["books", "children", "quiet"]}},
        {"name": "max_capital_words", "params": {"n": 2}},
        {"name": "bullet_list", "params": {"n": 5}},
    ]
