"""Synthesis at the level of a whole run: agents, their tasks, and the episodes to play.

Most agents get bundles from the tool repository and act in the simulated world; a configured
number act in real-execution environments (a SQLite database, a sandboxed file system) with
those environments' own tools, because there authenticity matters more than breadth
(K2 report §3.1). Task writing dispatches on the agent's environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.agents.tasks import TaskConfig, write_all_tasks
from kimi_pipeline.envs import filesystem_env, sqlite_env
from kimi_pipeline.agents.episode import EpisodeConfig
from kimi_pipeline.agents.rollout import RolloutConfig, fingerprint, run_shards
from kimi_pipeline.llm.base import BackendConfig, make_backend, OfflineBackendConfig
from kimi_pipeline.records import (
    Agent,
    QuarantineRecord,
    Task,
    ToolSpec,
    from_frame,
    split_valid,
    to_frame,
)


@dataclass(frozen=True)
class RealEnvironment:
    tools: list[ToolSpec]
    write_tasks: Callable[[str, int, int], list[Task]]
    category: str
    domain: str


REAL_ENVIRONMENTS = {
    "sqlite": RealEnvironment(sqlite_env.TOOLS, sqlite_env.write_tasks, "software_applications",
                              "sql_database"),
    "filesystem": RealEnvironment(filesystem_env.TOOLS, filesystem_env.write_tasks,
                                  "software_applications", "file_management"),
}


class SynthesisConfig(BaseModel):
    """Everything the synthesis pipeline reads from ``parameters_synthesis.yml``."""

    model_config = ConfigDict(extra="forbid")

    n_agents: int = Field(1200, ge=0, description="Agents over repository tools (simulated world).")
    real_environment_agents: dict[str, int] = Field(
        default_factory=lambda: {"sqlite": 40, "filesystem": 40},
        description="Agents per real-execution environment (sqlite, filesystem).",
    )
    agents: AgentConfig = Field(default_factory=AgentConfig, description="Bundle sampling.")
    tasks: TaskConfig = Field(default_factory=TaskConfig, description="Task writing.")
    episode: EpisodeConfig = Field(default_factory=EpisodeConfig, description="Episode limits.")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Sharded execution.")
    writer_backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="LLM writing agents' prompts and tasks."
    )
    agent_backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="LLM playing the tool-using agent."
    )
    user_backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="LLM playing the user simulator."
    )
    checkpoint_dir: str = Field(
        "data/02_intermediate/synthesis_shards",
        description="Finished shards are kept here (one folder per distinct run) for resuming.",
    )
    seed: int = Field(0, description="Seed of agents and tasks (episodes use rollout.seed).")
    sample_size: int = Field(30, ge=0, description="Trajectories in the readable JSONL sample.")

    def model_post_init(self, _context) -> None:
        unknown = set(self.real_environment_agents) - set(REAL_ENVIRONMENTS)
        if unknown:
            raise ValueError(f"unknown real environments {sorted(unknown)}; "
                             f"known: {sorted(REAL_ENVIRONMENTS)}")


def build_agents(tools: list[ToolSpec], config: SynthesisConfig):
    """Simulated-world agents over the repository plus agents of each real environment."""
    backend = make_backend(config.writer_backend)
    agents, rejected = sample_agents(tools, config.n_agents, backend, config.agents, config.seed)
    for kind, count in sorted(config.real_environment_agents.items()):
        env = REAL_ENVIRONMENTS[kind]
        # the environment serves all its tools, so its agents are offered all of them
        only_core = config.agents.model_copy(update={
            "distractor_rate": 0.0, "min_tools": len(env.tools), "max_tools": len(env.tools)})
        env_tools = [t.model_copy(update={"category": env.category, "domain": env.domain})
                     for t in env.tools]
        extra, bad = sample_agents(env_tools, count, backend, only_core, config.seed)
        agents += [a.model_copy(update={"agent_id": f"{kind}-{a.agent_id}", "environment": kind})
                   for a in extra]
        rejected += bad
    return agents, rejected


AGENTS_PER_BATCH = 1000  # task writing holds one batch of agents' Task objects at a time


def task_frame(agents: pl.DataFrame, tools: list[ToolSpec], config: SynthesisConfig):
    """Tasks of every agent as a compact frame, written a batch of agents at a time."""
    frames, rejected = [], []
    for offset in range(0, agents.height, AGENTS_PER_BATCH):
        batch, _ = from_frame(agents.slice(offset, AGENTS_PER_BATCH), Agent, "synthesis")
        tasks, bad = build_tasks(batch, tools, config)
        frames.append(to_frame(tasks, Task))
        rejected += bad
    return (pl.concat(frames) if frames else to_frame([], Task)), rejected


@dataclass
class EpisodeRun:
    shards: list[Path]  # one Parquet file of trajectories per shard, in order
    quarantined: list[QuarantineRecord]  # unreadable tasks and tasks whose agent is missing
    episodes: int
    run_id: str  # checkpoint folder under config.checkpoint_dir


def play_tasks(agents: pl.DataFrame, tasks: pl.DataFrame, tools: list[ToolSpec],
               config: SynthesisConfig, progress: Callable[[int], None] | None = None,
               on_start: Callable[[int], None] | None = None) -> EpisodeRun:
    """Play every playable task in checkpointed shards (finished shards of the same run are kept)."""
    agent_index = {a.agent_id: a for a in from_frame(agents, Agent, stage="synthesis")[0]}
    valid, unreadable = split_valid(tasks, Task, stage="synthesis")
    playable, unplayable = split_playable(valid, agent_index)
    run_id = fingerprint(playable, agent_index, config.episode, config.rollout,
                         config.agent_backend, config.user_backend)
    if on_start:
        on_start(playable.height)
    shards = run_shards(playable, agent_index, tool_lookup(tools),
                        Path(config.checkpoint_dir) / run_id, config.rollout, config.episode,
                        config.agent_backend, config.user_backend, progress)
    return EpisodeRun(shards, unreadable + unplayable, playable.height, run_id)


def build_tasks(agents: list[Agent], tools: list[ToolSpec], config: SynthesisConfig):
    simulated = [a for a in agents if a.environment == "simulated"]
    tasks, rejected = write_all_tasks(
        simulated, tools, make_backend(config.writer_backend), config.tasks, config.seed
    )
    for agent in agents:
        if agent.environment in REAL_ENVIRONMENTS:
            writer = REAL_ENVIRONMENTS[agent.environment].write_tasks
            tasks += writer(agent.agent_id, agent.seed, config.tasks.tasks_per_agent)
    return tasks, rejected


def tool_lookup(tools: list[ToolSpec]) -> Callable[[Agent], list[ToolSpec]]:
    """agent → its tools, from the repository or from its real environment."""
    index = {t.tool_id: t for t in tools}
    for env in REAL_ENVIRONMENTS.values():
        index.update({t.tool_id: t for t in env.tools})
    return lambda agent: [index[i] for i in agent.tool_ids if i in index]


def split_playable(tasks: pl.DataFrame, agents: dict[str, Agent]):
    """Tasks whose agent is missing cannot be played: quarantine them instead of failing."""
    known = pl.col("agent_id").is_in(list(agents))
    orphans = [
        QuarantineRecord(stage="synthesis", step="episodes", source="catalog",
                         source_ref=row["task_id"], reason=f"agent {row['agent_id']!r} not in agents",
                         original=str(row)[:65536])
        for row in tasks.filter(~known).select("task_id", "agent_id").iter_rows(named=True)
    ]
    return tasks.filter(known), orphans
