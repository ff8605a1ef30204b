"""Thin nodes of the synthesis stage: catalog data in, library call, catalog data out."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.agents import report
from kimi_pipeline.agents.synthesis import (
    SynthesisConfig,
    build_agents,
    build_tasks,
    split_playable,
    tool_lookup,
)
from kimi_pipeline.envs.rollout import fingerprint, run_shards
from kimi_pipeline.records import (
    Agent,
    QuarantineRecord,
    Task,
    ToolSpec,
    from_frame,
    split_valid,
    to_frame,
)

AGENTS_PER_BATCH = 1000


def synthesize_agents(tool_repository: pl.DataFrame, params: dict[str, Any]):
    config = SynthesisConfig.model_validate(params)
    tools, unreadable = from_frame(tool_repository, ToolSpec, stage="synthesis")
    agents, rejected = build_agents(tools, config)
    return to_frame(agents, Agent), to_frame(unreadable + rejected, QuarantineRecord)


def write_tasks(agents: pl.DataFrame, tool_repository: pl.DataFrame, params: dict[str, Any]):
    config = SynthesisConfig.model_validate(params)
    tools, _ = from_frame(tool_repository, ToolSpec, stage="synthesis")
    frames, rejected = [], []
    for offset in range(0, agents.height, AGENTS_PER_BATCH):  # bounded memory at any scale
        agent_records, _ = from_frame(agents.slice(offset, AGENTS_PER_BATCH), Agent, "synthesis")
        tasks, bad = build_tasks(agent_records, tools, config)
        frames.append(to_frame(tasks, Task))
        rejected += bad
    return pl.concat(frames) if frames else to_frame([], Task), to_frame(rejected, QuarantineRecord)


def run_episodes(
    agents: pl.DataFrame, tasks: pl.DataFrame, tool_repository: pl.DataFrame, params: dict[str, Any]
):
    """Play every task in checkpointed shards; hand the shard files to the catalog lazily."""
    config = SynthesisConfig.model_validate(params)
    start = time.perf_counter()
    tools, _ = from_frame(tool_repository, ToolSpec, stage="synthesis")
    agent_index = {a.agent_id: a for a in from_frame(agents, Agent, stage="synthesis")[0]}
    valid, unreadable = split_valid(tasks, Task, stage="synthesis")
    playable, unplayable = split_playable(valid, agent_index)
    run_id = fingerprint(playable, agent_index, config.episode, config.rollout,
                         config.agent_backend, config.user_backend)
    with tqdm(total=playable.height, desc="episodes", unit="ep", smoothing=0.1) as bar:
        paths = run_shards(playable, agent_index, tool_lookup(tools),
                           Path(config.checkpoint_dir) / run_id, config.rollout, config.episode,
                           config.agent_backend, config.user_backend, bar.update)
    shards = {p.stem: partial(pl.read_parquet, p) for p in paths}
    stats = {"episodes": playable.height, "shards": len(paths), "checkpoint": run_id,
             "seconds": round(time.perf_counter() - start, 3)}
    return shards, to_frame(unreadable + unplayable, QuarantineRecord), stats


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
