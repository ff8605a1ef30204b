"""`kedro run --pipeline=synthesis --env=test` on the newest tool_repository."""

import json

import polars as pl
import pytest

from kimi_pipeline.records import Agent, Task, Trajectory, from_frame
from tests.conftest import load_catalog, run_kedro

pytestmark = pytest.mark.slow


def test_synthesis_stage_runs_alone_on_the_catalog(project):
    run_kedro(project, "tool_repo")
    run_kedro(project, "synthesis")
    catalog = load_catalog(project)

    agents, bad_agents = from_frame(catalog.load("agents"), Agent, "test")
    tasks, bad_tasks = from_frame(catalog.load("tasks"), Task, "test")
    frame = catalog.load("trajectories")
    assert isinstance(frame, pl.LazyFrame)
    trajectories, bad = from_frame(frame.collect(), Trajectory, "test")
    assert not (bad_agents or bad_tasks or bad)

    assert {a.environment for a in agents} == {"simulated", "sqlite", "filesystem"}
    assert {t.kind for t in tasks} == {"single_call", "chained", "conditional", "error_recovery",
                                       "missing_argument", "unsupported"}
    assert sorted(t.task_id for t in trajectories) == sorted(t.task_id for t in tasks)
    for trajectory in trajectories:
        assert trajectory.messages[0].role == "system" and trajectory.messages[1].role == "user"
        calls = {c.id for m in trajectory.messages for c in m.tool_calls}
        answered = {m.tool_call_id for m in trajectory.messages if m.role == "tool"}
        assert calls == answered, "every tool call has its result"
    multi_turn = [t for t in trajectories if sum(m.role == "user" for m in t.messages) > 1]
    # users ask for missing values when asked, one part per turn, follow up, correct themselves
    assert len(multi_turn) >= 0.4 * len(trajectories), len(multi_turn)

    report = json.loads(next((project / "data/08_reporting/synthesis_report.json").rglob("*.json")).read_text())
    assert report["trajectories"] == len(trajectories) and report["tasks"] == len(tasks)
    assert 0 < report["state_rubric_met_rate"]["all"] <= 1
    assert report["multi_turn_share"] == round(len(multi_turn) / len(trajectories), 3)

    # a second run reuses the finished shards of the first (same inputs, same config)
    shards = list((project / "data/02_intermediate/synthesis_shards").rglob("shard-*.parquet"))
    mtimes = {p: p.stat().st_mtime_ns for p in shards}
    run_kedro(project, "synthesis")
    assert {p: p.stat().st_mtime_ns for p in shards} == mtimes
    versions = sorted((project / "data/03_primary/trajectories").iterdir())
    assert len(versions) == 2
    first, second = (pl.read_parquet(v / "trajectories" / "*.parquet").drop("latency_s") for v in versions)
    assert first.equals(second)
