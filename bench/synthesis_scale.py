"""Synthesis at scale, offline: trajectories/s and peak memory for N episodes.

    python bench/synthesis_scale.py --episodes 10000
    python bench/synthesis_scale.py --episodes 100000

Builds evolved tools, agents and tasks like the default `synthesis` run (offline), plays every
task in checkpointed shards with two worker processes, and prints the wall time of each phase,
episodes/s, and the peak resident memory of the main process and of the busiest worker.
"""

from __future__ import annotations

import argparse
import gc
import resource
import tempfile
import threading
import time
from pathlib import Path

import psutil

from kimi_pipeline.agents.synthesis import SynthesisConfig, build_agents, build_tasks, tool_lookup
from kimi_pipeline.agents.rollout import run_shards
from kimi_pipeline.llm import make_backend
from kimi_pipeline.records import Task, to_frame
from kimi_pipeline.tools.config import EvolveConfig, NormaliseConfig
from kimi_pipeline.tools.evolve import evolve_synthetic_tools
from kimi_pipeline.tools.repository import tools_from_evolution


class PeakMemory(threading.Thread):
    """Polls the resident memory of this process and of its workers (MiB)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.main = self.worker = 0.0
        self.running = True

    def run(self):
        me = psutil.Process()
        while self.running:
            self.main = max(self.main, me.memory_info().rss / 2**20)
            for child in me.children(recursive=True):
                try:
                    self.worker = max(self.worker, child.memory_info().rss / 2**20)
                except psutil.Error:
                    pass
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks-per-agent", type=int, default=8)
    args = parser.parse_args()

    t0 = time.perf_counter()
    result = evolve_synthetic_tools(make_backend({"kind": "offline"}), EvolveConfig())
    tools, _ = tools_from_evolution(result, NormaliseConfig())
    t1 = time.perf_counter()
    n_agents = max(1, args.episodes // args.tasks_per_agent)
    config = SynthesisConfig.model_validate({
        "n_agents": n_agents, "real_environment_agents": {},
        "tasks": {"tasks_per_agent": args.tasks_per_agent},
        "rollout": {"workers": args.workers, "shard_size": 500},
    })
    agents, _ = build_agents(tools, config)
    tasks, _ = build_tasks(agents, tools, config)
    frame, n_tasks = to_frame(tasks, Task), len(tasks)
    del tasks  # the pipeline hands the episode node a frame, as here
    gc.collect()
    t2 = time.perf_counter()
    before = psutil.Process().memory_info().rss / 2**20
    peaks = PeakMemory()
    peaks.start()
    with tempfile.TemporaryDirectory() as folder:
        paths = run_shards(frame, {a.agent_id: a for a in agents}, tool_lookup(tools), Path(folder),
                           config.rollout, config.episode, config.agent_backend, config.user_backend)
        size = sum(p.stat().st_size for p in paths)
    peaks.running = False
    t3 = time.perf_counter()
    print(f"tools {len(tools):,} in {t1 - t0:.1f}s | agents {len(agents):,} + tasks {n_tasks:,} "
          f"in {t2 - t1:.1f}s (task frame {frame.estimated_size() / 2**20:.0f} MiB)")
    print(f"episodes {n_tasks:,} in {t3 - t2:.1f}s = {n_tasks / (t3 - t2):,.0f}/s "
          f"({args.workers} workers); shards {len(paths)} = {size / 2**20:.0f} MiB on disk")
    print(f"episode phase: main RSS {before:,.0f} -> peak {peaks.main:,.0f} MiB, largest worker "
          f"{peaks.worker:,.0f} MiB | whole run peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB; "
          f"total {t3 - t0:.1f}s")


if __name__ == "__main__":
    main()
