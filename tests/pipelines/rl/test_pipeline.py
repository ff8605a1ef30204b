"""`kedro run --pipeline=rl --env=test` after the gym and critic stages, on a tiny policy.

The upstream stages run for real (`tool_repo`, `synthesis`, `filtering`; the tiny policy
saved as `sft_model`; `gym`, `critic`). The rl stage then builds its pool (gym tasks, open
prompts, one tool task played as episodes), trains through DeepSpeed workers, measures the SFT
and RL models on the held-out gym tasks and, as the agent, on the SFT stage's held-out tool
tasks, and reports.
"""

from __future__ import annotations

import json

import mlflow
import polars as pl
import pytest

from kimi_pipeline.records import GymResult, GymTask, from_frame
from tests.conftest import load_catalog, run_kedro
from tests.pipelines.gym.test_pipeline import save_tiny_sft_model

pytestmark = pytest.mark.slow


@pytest.fixture
def rl_run(project):
    for stage in ("tool_repo", "synthesis", "filtering"):
        run_kedro(project, stage)
    save_tiny_sft_model(project)
    for stage in ("gym", "critic", "rl"):
        run_kedro(project, stage)
    return load_catalog(project)


def test_rl_stage_trains_the_policy_and_measures_it_on_held_out_tasks(project, rl_run):
    catalog = rl_run
    pool = catalog.load("rl_pool")
    held, bad = from_frame(catalog.load("rl_heldout_tasks"), GymTask, "test")
    assert not bad and held
    assert not set(pool["prompt_id"]) & {t.task_id for t in held}  # never trained on
    assert set(pool["source"]) == {"verifier", "critic", "rubric"}

    model = catalog.load("rl_model")
    assert model.load_model() is not None and model.load_tokenizer().chat_template

    training = catalog.load("rl_training")
    history = training["metrics"]
    assert [row["step"] for row in history] == [1, 2]
    for key in ("reward/task", "reward/source/verifier", "reward/source/critic", "entropy",
                "sampler_trainer_abs_logprob_gap", "response_tokens", "truncation_rate",
                "rollout_s", "train_s", "temperature", "ptx_loss", "critic_refresh_pairs"):
        assert key in history[0], key
    assert history[0]["temperature"] == 1.0 and history[1]["temperature"] < 1.0
    assert "reward/source/rubric" in history[0] or "reward/source/rubric" in history[1]
    assert training["samples"]

    rows, bad = from_frame(catalog.load("rl_heldout_rollouts").drop("model"), GymResult, "test")
    assert not bad
    frame = catalog.load("rl_heldout_rollouts")
    assert set(frame["model"]) == {"sft_model", "rl_model"}
    per_model = frame.group_by("model").agg(pl.col("task_id").n_unique())
    assert per_model["task_id"].to_list() == [min(6, len(held))] * 2

    report = catalog.load("rl_report")
    assert report["iterations"] == 2
    assert {r["model"] for r in report["heldout"]["table"]} == {"sft_model", "rl_model"}
    assert report["heldout"]["gain_points"] == pytest.approx(
        100 * (report["heldout"]["rl_model"] - report["heldout"]["sft_model"]))
    # both models also played the SFT stage's held-out tool tasks as the agent
    assert set(report["tool_tasks"]) == {"sft_model", "rl_model"}
    for figures in report["tool_tasks"].values():
        assert figures["episodes"] == 3  # conf/test sft_evaluation.n_tasks
        assert 0 <= figures["success_rate"] <= 1 and figures["tool_calls"] >= 0
        assert figures["reused"] is False  # this catalog's sft stage never evaluated its model
    json.dumps(report)  # plain JSON

    client = mlflow.tracking.MlflowClient()
    runs = client.search_runs(client.search_experiments()[0].experiment_id,
                              order_by=["attributes.start_time DESC"], max_results=1)
    logged = runs[0].data.metrics
    assert "rl/reward/task" in logged and "rl.heldout.gain_points" in logged
    assert "rl.tool_tasks.rl_model.success_rate" in logged
    # the optimizer's params under rl/: `kedro run` of the whole DAG logs sft's `optim/…` to
    # the same MLflow run, and MLflow refuses a second value under one name
    params = runs[0].data.params
    assert "rl/optim/lr" in params and not any(k.startswith("optim/") for k in params)
