"""Synthesis at scale, offline: trajectories/s and peak memory for N episodes.

    python bench/synthesis_scale.py --episodes 10000
    python bench/synthesis_scale.py --episodes 100000

Builds evolved tools, agents and tasks like the default `synthesis` run (offline), plays every
task in checkpointed shards with two worker processes, and prints the wall time of each phase,
episodes/s, and the peak resident memory of the main process and of the busiest worker.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from kimi_pipeline.agents.synthesis import SynthesisConfig, build_agents, build_tasks, tool_lookup
from kimi_pipeline.envs.rollout import plan_work, run_shards
from kimi_pipeline.llm import make_backend
from kimi_pipeline.tools.config import EvolveConfig, NormaliseConfig
from kimi_pipeline.tools.evolve import evolve_synthetic_tools
from kimi_pipeline.tools.repository import tools_from_evolution


def peak_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


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
    t2 = time.perf_counter()
    items = plan_work({a.agent_id: a for a in agents}, tasks, tool_lookup(tools), 0)
    with tempfile.TemporaryDirectory() as folder:
        paths = run_shards(items, Path(folder), config.rollout, config.episode,
                           config.agent_backend, config.user_backend)
        size = sum(p.stat().st_size for p in paths)
    t3 = time.perf_counter()
    print(f"tools {len(tools):,} in {t1 - t0:.1f}s | agents {len(agents):,} + tasks {len(tasks):,} "
          f"in {t2 - t1:.1f}s")
    print(f"episodes {len(items):,} in {t3 - t2:.1f}s = {len(items) / (t3 - t2):,.0f}/s "
          f"({args.workers} workers); shards {len(paths)} = {size / 2**20:.0f} MiB on disk")
    print(f"peak RSS: main {peak_mib(resource.RUSAGE_SELF):,.0f} MiB, "
          f"largest worker {peak_mib(resource.RUSAGE_CHILDREN):,.0f} MiB; total {t3 - t0:.1f}s")


if __name__ == "__main__":
    main()
