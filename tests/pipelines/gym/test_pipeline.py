"""`kedro run --pipeline=gym --env=test` on the newest `sft_model` in the catalog.

The model is a tiny untrained Llama with a tokenizer trained here, saved through the project's
own `sft_model` dataset, so the stage loads it, samples through the `hf` backend and verifies
with the real verifiers (the sandbox included). Untrained, it solves next to nothing; the
band selection itself is covered with a planted policy in tests/gym/test_run.py.
"""

from __future__ import annotations

import json

import mlflow
import polars as pl
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.gym.passk import pass_at_k
from kimi_pipeline.gym.run import GymConfig
from kimi_pipeline.records import GymResult, GymTask, from_frame
from kimi_pipeline.training.tokenizer import train_tokenizer
from tests.conftest import load_catalog, run_kedro

pytestmark = pytest.mark.slow

TEXTS = ["Compute 3 + 4 and give the answer in \\boxed{7}.", "def add(a, b):\n    return a + b",
         "<answer>clock</answer>", "I cannot help with that request.",
         "Answer the question using only the context below."] * 8


def save_tiny_sft_model(project) -> None:
    tokenizer = train_tokenizer(TEXTS, vocab_size=320, min_frequency=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )).eval()
    catalog = load_catalog(project)
    catalog.save("sft_model", {"model": model, "tokenizer": tokenizer})
    catalog.save("base_model", {"model": model, "tokenizer": tokenizer})  # SFT's starting point


@pytest.fixture
def gym_run(project):
    save_tiny_sft_model(project)
    run_kedro(project, "gym")
    return load_catalog(project)


def test_gym_stage_rolls_out_the_sft_model_and_scores_it(project, gym_run):
    catalog = gym_run
    config = GymConfig.model_validate(catalog.load("params:gym"))
    task_frame = catalog.load("gym_tasks")
    tasks, bad = from_frame(task_frame, GymTask, "test")
    assert not bad
    assert {t.domain for t in tasks} == set(config.domains)
    assert len(tasks) == sum(sum(c) for c in config.domains.values())

    rollout_frame = catalog.load("gym_rollouts")
    rollouts, bad = from_frame(rollout_frame, GymResult, "test")
    assert not bad and len(rollouts) == len(tasks) * config.samples
    assert {(r.task_id, r.sample_index) for r in rollouts} == {
        (t.task_id, s) for t in tasks for s in range(config.samples)}
    assert all(r.reward in (0.0, 1.0) and r.reason for r in rollouts)
    assert any(r.response for r in rollouts)  # the model did write something
    coding = [r for r in rollouts if r.domain == "coding"]
    assert coding and all(r.reason.startswith("sandbox") or r.reward for r in coding)

    scores = catalog.load("gym_scores")
    correct = dict(rollout_frame.group_by("task_id").agg(pl.col("reward").sum()).iter_rows())
    per_task = scores.filter(pl.col("scope") == "task")
    assert set(per_task["name"]) == {t.task_id for t in tasks}
    for row in per_task.iter_rows(named=True):
        c = int(correct[row["name"]])
        assert (row["samples"], row["correct"]) == (config.samples, c)
        assert row[f"pass@{config.samples}"] == pytest.approx(pass_at_k(config.samples, c, config.samples))
    domains = scores.filter(pl.col("scope") == "domain")
    assert set(domains["name"]) == set(config.domains)
    assert domains["tasks"].sum() == len(tasks)

    rl_prompts = catalog.load("rl_prompts")
    band = config.band
    expected = {t for t, c in correct.items() if band.low <= c / config.samples <= band.high}
    assert set(rl_prompts["task_id"]) == expected
    kept, bad = from_frame(rl_prompts.drop("pass_rate"), GymTask, "test")
    assert not bad and len(kept) == len(expected)

    report = json.loads(next((project / "data/08_reporting/gym_report.json").rglob("*.json")).read_text())
    assert report["tasks"] == len(tasks) and report["rollouts"] == len(rollouts)
    assert {row["domain"] for row in report["domains"]} == set(config.domains)
    assert report["rollout"]["backend"]["completion_tokens"] > 0
    assert (project / "data/08_reporting/gym_passk.png").stat().st_size > 0
    sample = pl.read_ndjson(project / "data/08_reporting/gym_rollouts_sample.jsonl")
    assert 0 < sample.height <= config.sample_size and set(sample["task_id"]) <= {t.task_id for t in tasks}

    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    logged = {name for run in runs for name in run.data.metrics}
    assert {f"gym.{d}.pass_at_{config.samples}" for d in config.domains} <= logged
    assert "gym.coding.verify_ms_mean" in logged

    # the starting checkpoint on the same tasks, side by side with the policy
    assert catalog.load("gym_base_rollouts").height == len(tasks) * config.samples
    compared = {row["name"]: row for row in report["base_vs_policy"]}
    assert set(config.domains) <= set(compared)
    for domain in config.domains:
        row = compared[domain]
        assert row["scope"] == "domain" and row["tasks"] > 0
        assert row[f"policy_pass@{config.samples}"] == pytest.approx(
            next(r for r in report["domains"] if r["domain"] == domain)[f"pass@{config.samples}"])
    assert {f"gym.{d}.base_pass_at_{config.samples}" for d in config.domains} <= logged


def test_filtering_reads_the_gym_tasks_for_decontamination(project, gym_run):
    catalog = gym_run
    written = catalog.load("gym_tasks")
    for_filtering = catalog.load("gym_tasks_for_decontamination")
    assert for_filtering is not None and for_filtering.equals(written)
