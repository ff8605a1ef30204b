"""Run many episodes in checkpointed shards: resumable, deterministic, bounded in memory.

Work is split into fixed shards (by sorted task id). Each finished shard is written atomically
to ``shard_dir/shard-NNNNN.parquet``; a shard file that exists is never recomputed. A run killed
at any point and started again therefore ends with exactly the same set of trajectories, none
lost and none doubled, and (offline) identical content, because every episode's seed and
persona derive from its task alone. Offline episodes are CPU-bound and run in worker
processes; LLM-backed ones run asynchronously with many episodes in flight per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.envs.episode import EpisodeConfig, run_episode
from kimi_pipeline.envs.user_sim import PERSONAS
from kimi_pipeline.llm.base import BackendConfig, make_backend
from kimi_pipeline.records import Agent, Task, ToolSpec, Trajectory, to_frame


class RolloutConfig(BaseModel):
    """How episodes are scheduled."""

    model_config = ConfigDict(extra="forbid")

    shard_size: int = Field(500, ge=1, description="Episodes per checkpointed shard.")
    workers: int = Field(
        2, ge=1, description="Worker processes (use 1 for remote LLM backends: they are I/O-bound)."
    )
    episodes_in_flight: int = Field(
        64, ge=1, description="Concurrent episodes per worker (matters for LLM backends)."
    )
    seed: int = Field(0, description="Global seed mixed into every episode seed.")


@dataclass
class WorkItem:
    agent: Agent
    task: Task
    tools: list[ToolSpec]
    persona: str
    seed: int


def episode_seed(task_id: str, global_seed: int) -> int:
    """A stable 31-bit seed for one task's episode (independent of run order and sharding)."""
    digest = hashlib.sha256(f"{global_seed}:{task_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_work(
    agents: dict[str, Agent], tasks: list[Task], tools_for: Callable[[Agent], list[ToolSpec]],
    seed: int,
) -> list[WorkItem]:
    personas = sorted(PERSONAS)
    items = []
    for task in sorted(tasks, key=lambda t: t.task_id):
        episode = episode_seed(task.task_id, seed)
        agent = agents[task.agent_id]
        persona = random.Random(episode).choice(personas)
        items.append(WorkItem(agent, task, tools_for(agent), persona, episode))
    return items


def fingerprint(items: list[WorkItem], *configs: BaseModel) -> str:
    """Identity of a run's work: a changed task, tool or config never reuses old shards."""
    h = hashlib.sha256()
    for item in items:
        h.update(item.task.model_dump_json().encode())
        h.update(item.agent.model_dump_json().encode())
        h.update(",".join(t.tool_id for t in item.tools).encode())
        h.update(f"{item.persona}:{item.seed}".encode())
    for config in configs:
        h.update(config.model_dump_json().encode())
    return h.hexdigest()[:16]


def run_shards(
    items: list[WorkItem],
    shard_dir: Path,
    rollout: RolloutConfig,
    episode: EpisodeConfig,
    agent_backend: BackendConfig,
    user_backend: BackendConfig,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Make sure every shard file exists; return them in order. Finished shards are skipped."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = [items[i : i + rollout.shard_size] for i in range(0, len(items), rollout.shard_size)]
    paths = [shard_dir / f"shard-{k:05d}.parquet" for k in range(len(shards))]
    todo = [(k, shard) for k, shard in enumerate(shards) if not paths[k].exists()]
    if progress:
        progress(sum(len(s) for k, s in enumerate(shards) if paths[k].exists()))
    args = [(str(paths[k]), shard, episode, agent_backend, user_backend, rollout.episodes_in_flight)
            for k, shard in todo]
    if rollout.workers == 1 or len(todo) <= 1:
        for a in args:
            _run_shard(*a)
            if progress:
                progress(len(a[1]))
    else:
        with ProcessPoolExecutor(rollout.workers, mp_context=get_context("spawn")) as pool:
            for done in pool.map(_run_shard_args, args):
                if progress:
                    progress(done)
    return paths


def _run_shard_args(args: tuple) -> int:
    return _run_shard(*args)


def _run_shard(path: str, items: list[WorkItem], episode: EpisodeConfig,
               agent_cfg: BackendConfig, user_cfg: BackendConfig, in_flight: int) -> int:
    agent_backend, user_backend = make_backend(agent_cfg), make_backend(user_cfg)

    async def play_all() -> list[Trajectory]:
        gate = asyncio.Semaphore(in_flight)

        async def play(item: WorkItem) -> Trajectory:
            async with gate:
                return await run_episode(item.agent, item.task, item.tools, agent_backend,
                                         user_backend, item.persona, item.seed, episode)

        return await asyncio.gather(*(play(item) for item in items))

    trajectories = asyncio.run(play_all())
    tmp = f"{path}.tmp-{os.getpid()}"
    to_frame(trajectories, Trajectory).write_parquet(tmp)
    os.replace(tmp, path)  # atomic: a shard file either is complete or does not exist
    return len(items)


def shard_stats(paths: list[Path]) -> dict[str, Any]:
    return {"shards": len(paths), "bytes": sum(p.stat().st_size for p in paths)}


def config_json(*configs: BaseModel) -> str:
    return json.dumps([c.model_dump(mode="json") for c in configs], sort_keys=True)
