"""The whole funnel on real offline trajectories: accounting, bad rows, decontamination."""

import json

import polars as pl
import pytest

from kimi_pipeline.curation.filtering import FilteringConfig, filter_trajectories
from kimi_pipeline.agents.episode import EpisodeConfig
from kimi_pipeline.agents.rollout import RolloutConfig, run_shards
from kimi_pipeline.llm.base import OfflineBackendConfig
from kimi_pipeline.records import Agent, SftExample, Task, from_frame, to_frame
from tests.agents.test_episode import build_world, tools_for


@pytest.fixture(scope="module")
def judged_inputs(tmp_path_factory):
    tools, agents, tasks = build_world()
    paths = run_shards(to_frame(tasks, Task), agents, tools_for(tools), tmp_path_factory.mktemp("s"),
                       RolloutConfig(shard_size=50, workers=1), EpisodeConfig(),
                       OfflineBackendConfig(), OfflineBackendConfig())
    frame = pl.concat([pl.read_parquet(p) for p in paths])
    return frame, to_frame(list(agents.values()), Agent)


def _run(frame, agents, **overrides):
    config = FilteringConfig.model_validate({"workers": 1, "batch_size": 7, **overrides})
    return filter_trajectories(frame.lazy(), agents, None, config)


def test_every_trajectory_is_an_example_or_a_rejection_with_reason(judged_inputs):
    frame, agents = judged_inputs
    result = _run(frame, agents)
    examples, bad = from_frame(result.examples, SftExample, "test")
    assert not bad and examples
    ids = set(result.examples["trajectory_id"]) | set(result.rejections["trajectory_id"])
    assert ids == set(frame["trajectory_id"])
    assert result.rejections["reason"].str.len_chars().min() > 0
    assert result.funnel["trajectories"] == frame.height
    assert result.judge_quality["precision"] >= 0.98
    train = {e.agent_id for e in examples if e.split == "train"}
    assert not train & {e.agent_id for e in examples if e.split == "validation"}


def test_malformed_row_is_rejected_with_its_reason(judged_inputs):
    frame, agents = judged_inputs
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("{not json")).otherwise(pl.col("messages"))
        .alias("messages"))
    result = _run(broken, agents)
    first = broken["trajectory_id"][0]
    row = result.rejections.filter(pl.col("trajectory_id") == first)
    assert row.height == 1 and row["step"][0] in ("format", "judge")
    assert first not in set(result.examples["trajectory_id"])


def test_heldout_prompts_decontaminate(judged_inputs, tmp_path):
    frame, agents = judged_inputs
    clean = _run(frame, agents)
    victim = clean.examples["trajectory_id"][0]
    messages = json.loads(frame.filter(pl.col("trajectory_id") == victim)["messages"][0])
    request = next(m["content"] for m in messages if m["role"] == "user")
    heldout = tmp_path / "eval.jsonl"
    heldout.write_text(json.dumps({"id": "q1", "prompt": request + " " + request}) + "\n")
    result = _run(frame, agents,
                  curation={"decontamination": {"ngram_size": 8, "eval_paths": [str(heldout)]}})
    row = result.rejections.filter(pl.col("trajectory_id") == victim)
    assert row["step"].to_list() == ["decontamination"] and "q1" in row["reason"][0]
