"""Run many episodes in checkpointed shards: resumable, deterministic, bounded in memory.

Work is split into fixed shards (by sorted task id). Each finished shard is written atomically
to ``shard_dir/shard-NNNNN.parquet``; a shard file that exists is never recomputed. A run killed
at any point and started again therefore ends with exactly the same set of trajectories, none
lost and none doubled, and (offline) identical content, because every episode's seed and
persona derive from its task alone. Offline episodes are CPU-bound and run in worker
processes; LLM-backed ones run asynchronously with many episodes in flight per process. Worker
processes die with the process that started them, even when it is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.agents.episode import EpisodeConfig, run_episode
from kimi_pipeline.envs.user_sim import PERSONAS
from kimi_pipeline.llm.base import BackendConfig, make_backend
from kimi_pipeline.procs import die_with_parent
from kimi_pipeline.records import Agent, Task, ToolSpec, Trajectory, from_frame, to_frame


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
    """Episodes for ``tasks``: each one's seed and persona derive from its task id alone."""
    personas = sorted(PERSONAS)
    items = []
    for task in tasks:
        episode = episode_seed(task.task_id, seed)
        agent = agents[task.agent_id]
        persona = random.Random(episode).choice(personas)
        items.append(WorkItem(agent, task, tools_for(agent), persona, episode))
    return items


def code_fingerprint() -> str:
    """Hash of the code that plays episodes (environments, agents, backends, records)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for folder in ("envs", "agents", "llm"):
        for path in sorted((root / folder).glob("*.py")):
            h.update(path.read_bytes())
    h.update((root / "records.py").read_bytes())
    return h.hexdigest()


def fingerprint(tasks: pl.DataFrame, agents: dict[str, Agent], *configs: BaseModel) -> str:
    """Identity of a run's work: a changed task, agent, config or episode code never reuses
    old shards."""
    h = hashlib.sha256(tasks.sort("task_id").hash_rows(seed=0).to_numpy().tobytes())
    h.update(code_fingerprint().encode())
    for agent_id in sorted(agents):
        h.update(agents[agent_id].model_dump_json().encode())
    for config in configs:
        h.update(config.model_dump_json().encode())
    return h.hexdigest()[:16]


def run_shards(
    tasks: pl.DataFrame,
    agents: dict[str, Agent],
    tools_for: Callable[[Agent], list[ToolSpec]],
    shard_dir: Path,
    rollout: RolloutConfig,
    episode: EpisodeConfig,
    agent_backend: BackendConfig,
    user_backend: BackendConfig,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Make sure every shard file exists; return them in order. Finished shards are skipped.

    ``tasks`` stays a compact frame: each shard's records are built only when the shard is
    handed to a worker, and at most ``workers + 1`` shards are in flight, so memory does not
    grow with the number of episodes.
    """
    tasks = tasks.sort("task_id")
    size = rollout.shard_size
    paths = [shard_dir / f"shard-{k:05d}.parquet" for k in range((tasks.height + size - 1) // size)]
    shard_dir.mkdir(parents=True, exist_ok=True)
    for stale in shard_dir.glob("*.tmp-*"):  # left by a killed run
        stale.unlink()
    todo = [k for k, path in enumerate(paths) if not path.exists()]
    if progress:
        progress(tasks.height - sum(min(size, tasks.height - k * size) for k in todo))

    def job(k: int) -> tuple:
        records, _ = from_frame(tasks.slice(k * size, size), Task, stage="synthesis")
        items = plan_work(agents, records, tools_for, rollout.seed)
        return (str(paths[k]), items, episode, agent_backend, user_backend, rollout.episodes_in_flight)

    if rollout.workers == 1 or len(todo) <= 1:
        for k in todo:
            done = _run_shard(*job(k))
            if progress:
                progress(done)
        return paths
    # workers die with this process even on SIGKILL (they start from this thread, which waits
    # for them); otherwise they would go on writing shards for a run nobody finishes
    with ProcessPoolExecutor(rollout.workers, mp_context=get_context("spawn"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending, queue = set(), iter(todo)
        for k in itertools.islice(queue, rollout.workers + 1):
            pending.add(pool.submit(_run_shard, *job(k)))
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                if progress:
                    progress(future.result())
                for k in itertools.islice(queue, 1):
                    pending.add(pool.submit(_run_shard, *job(k)))
    return paths


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
