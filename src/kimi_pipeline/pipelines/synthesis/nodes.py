"""Thin nodes of the synthesis stage: catalog data in, library call, catalog data out."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.agents import report
from kimi_pipeline.agents.synthesis import SynthesisConfig, build_agents, play_tasks, task_frame
from kimi_pipeline.records import Agent, QuarantineRecord, ToolSpec, from_frame, to_frame


def synthesize_agents(tool_repository: pl.DataFrame, params: dict[str, Any]):
    config = SynthesisConfig.model_validate(params)
    tools, unreadable = from_frame(tool_repository, ToolSpec, stage="synthesis")
    agents, rejected = build_agents(tools, config)
    return to_frame(agents, Agent), to_frame(unreadable + rejected, QuarantineRecord)


def write_tasks(agents: pl.DataFrame, tool_repository: pl.DataFrame, params: dict[str, Any]):
    config = SynthesisConfig.model_validate(params)
    tools, _ = from_frame(tool_repository, ToolSpec, stage="synthesis")
    tasks, rejected = task_frame(agents, tools, config)
    return tasks, to_frame(rejected, QuarantineRecord)


def run_episodes(
    agents: pl.DataFrame, tasks: pl.DataFrame, tool_repository: pl.DataFrame, params: dict[str, Any]
):
    """Play every task in checkpointed shards; hand the shard files to the catalog lazily."""
    config = SynthesisConfig.model_validate(params)
    start = time.perf_counter()
    tools, _ = from_frame(tool_repository, ToolSpec, stage="synthesis")
    with tqdm(desc="episodes", unit="ep", smoothing=0.1) as bar:
        run = play_tasks(agents, tasks, tools, config, progress=bar.update,
                         on_start=lambda total: setattr(bar, "total", total))
    shards = {p.stem: partial(pl.read_parquet, p) for p in run.shards}
    stats = {"episodes": run.episodes, "shards": len(run.shards), "checkpoint": run.run_id,
             "seconds": round(time.perf_counter() - start, 3)}
    return shards, to_frame(run.quarantined, QuarantineRecord), stats


def collect_quarantine(*frames: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(frames, how="vertical")


def report_synthesis(
    trajectories: pl.LazyFrame, agents: pl.DataFrame, tasks: pl.DataFrame,
    synthesis_quarantine: pl.DataFrame, episode_stats: dict[str, Any], params: dict[str, Any],
):
    config = SynthesisConfig.model_validate(params)
    summary = report.summarise(report.trajectory_rows(trajectories))
    summary.update(agents=agents.height, tasks=tasks.height, quarantined=synthesis_quarantine.height,
                   tasks_by_kind=dict(tasks.group_by("kind").len().iter_rows()),
                   seconds={"episodes": episode_stats["seconds"]})
    sample = trajectories.head(config.sample_size).collect()
    return summary, report.metrics(summary), sample, report.plots(summary)
