"""`kedro run --pipeline=critic --env=test` on a tiny policy and planted gym rollouts.

The policy is a tiny untrained Llama saved through the `sft_model` dataset; the gym inputs are
written through the catalog as the gym stage would, with tasks answered both right and wrong,
so the stage has verifiable pairs to refine the critic on and held-out tasks to measure it.
"""

from __future__ import annotations

import random

import polars as pl
import pytest

from kimi_pipeline.critic.model import load_critic
from kimi_pipeline.critic.rubrics import load_rubrics
from kimi_pipeline.records import GymResult, GymTask, PreferencePair, from_frame, to_frame
from tests.conftest import load_catalog, run_kedro
from tests.pipelines.gym.test_pipeline import save_tiny_sft_model

pytestmark = pytest.mark.slow


def _plant_gym_outputs(catalog) -> None:
    rng = random.Random(0)
    tasks = [GymTask(task_id=f"math-{i}", domain="math", prompt=f"What is {i} + {i}?",
                     answer=str(2 * i)) for i in range(12)]
    results = [GymResult(task_id=t.task_id, domain="math", sample_index=s,
                         response=(f"The answer is \\boxed{{{t.answer}}}." if s % 2 == 0 else
                                   f"I think it is {rng.randint(50, 99)}."),
                         reward=float(s % 2 == 0), reason="planted")
               for t in tasks for s in range(4)]
    catalog.save("gym_tasks", to_frame(tasks, GymTask))
    catalog.save("gym_rollouts", to_frame(results, GymResult))
    catalog.save("gym_base_rollouts", to_frame([], GymResult))


@pytest.fixture
def critic_run(project):
    save_tiny_sft_model(project)
    _plant_gym_outputs(load_catalog(project))
    run_kedro(project, "critic")
    return load_catalog(project)


def test_critic_stage_builds_pairs_fits_the_critic_and_ranks_open_answers(project, critic_run):
    catalog = critic_run
    prompts = catalog.load("open_prompts")
    answers = catalog.load("open_prompt_answers")
    assert answers.height == prompts.height * 2  # K = 2 answers per open prompt

    pairs, bad = from_frame(catalog.load("critic_pairs"), PreferencePair, "test")
    assert not bad
    verifier = [p for p in pairs if p.source == "verifier"]
    # per task: the two right answers are one text (repeats count once) × two wrong ones
    assert len(verifier) == 12 * 1 * 2 and {p.split for p in verifier} == {"train", "heldout"}
    by_task = {}
    for p in verifier:
        by_task.setdefault(p.group_id, set()).add(p.split)
    assert all(len(splits) == 1 for splits in by_task.values())
    assert sum(p.source != "verifier" for p in pairs) <= 24

    report = catalog.load("critic_report")
    assert set(report["agreement"]) >= {"untrained", "refined"}
    assert report["agreement"]["untrained"]["verifier"] == 0.5  # no opinion before fitting
    # the planted correct answers differ in form from the wrong ones: learnable on held-out tasks
    assert report["agreement"]["refined"]["verifier"] > 0.5
    assert report["agreement"]["refined"]["position_bias"] == 0.0

    rubrics = load_rubrics(project / "conf" / "base" / "critic_rubrics.yml")
    critic = load_critic(catalog.load("critic_model"), rubrics)
    assert critic.heads  # the saved folder carries the fitted heads

    rewards = catalog.load("critic_rewards")
    assert rewards.height == answers.height
    assert rewards["reward"].is_between(0.0, 1.0).all()
    per_prompt = rewards.group_by("prompt_id").agg(pl.col("reward").sum())
    assert per_prompt["reward"].to_list() == pytest.approx([1.0] * per_prompt.height)
