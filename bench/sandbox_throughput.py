"""Throughput of the code sandbox with its limits on, next to a bare interpreter start.

Runs N small correct solutions (default 200) through ``run_many`` with the default
``SandboxLimits`` on 1 and 2 workers, then N bare ``python -I -c pass`` subprocesses, and prints
executions/s (wall clock), executions/s per busy core, and CPU milliseconds per execution
(this process plus its children), whose inverse is the per-core rate on an otherwise idle core.
Wall-clock rates depend on what else the machine runs; the CPU figure much less so.

    python bench/sandbox_throughput.py [--n 200] [--workers 1 2] [--isolation auto]
                                       [--no-cgroups]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

from kimi_pipeline.gym.sandbox import SandboxJob, SandboxLimits, run_many

PROBLEMS = [
    ("def add(a, b):\n    return a + b\n",
     "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(10, 5) == 15\n", None),
    ("def rev(s):\n    return s[::-1]\n",
     "assert rev('abc') == 'cba'\nassert rev('') == ''\n", None),
    (("def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
      "    return a\n"),
     "def check(candidate):\n    assert candidate(10) == 55\n    assert candidate(1) == 1\n",
     "fib"),
    ("import math\ndef hyp(a, b):\n    return math.hypot(a, b)\n",
     "assert abs(hyp(3, 4) - 5.0) < 1e-9\nassert hyp(0, 0) == 0\n", None),
]


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(fn, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children) for fn()."""
    c0, t0 = _cpu(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, _cpu() - c0


def sandbox_row(n: int, workers: int, limits: SandboxLimits) -> tuple[float, float, str]:
    jobs = [SandboxJob(*PROBLEMS[i % len(PROBLEMS)][:2], entry_point=PROBLEMS[i % len(PROBLEMS)][2],
                       limits=limits) for i in range(n)]
    verdicts: list = []
    wall, cpu = measure(lambda: verdicts.extend(run_many(jobs, max_workers=workers)), n)
    bad = [v for v in verdicts if not v.passed]
    if bad:
        raise SystemExit(f"{len(bad)} of {n} correct solutions failed, e.g. {bad[0]}")
    return wall, cpu, verdicts[0].isolation


def bare_row(n: int) -> tuple[float, float]:
    cmd = [sys.executable, "-I", "-c", "pass"]
    return measure(lambda: [subprocess.run(cmd, check=True) for _ in range(n)], n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--isolation", default="auto", choices=["auto", "namespaces", "rlimits"])
    parser.add_argument("--cgroups", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    limits = SandboxLimits(isolation=args.isolation, cgroups=args.cgroups)
    cores = os.cpu_count() or 1
    run_many([SandboxJob(*PROBLEMS[0][:2], limits=limits)] * 4, max_workers=2)  # warm up
    print(f"cores={cores} load_avg={os.getloadavg()[0]:.2f} n={args.n}")
    print(f"{'what':44s} {'exec/s':>8s} {'per core':>9s} {'cpu ms':>7s} {'1/cpu':>7s}")
    first = True
    for workers in args.workers:
        wall, cpu, isolation = sandbox_row(args.n, workers, limits)
        busy = min(workers, cores)
        if first:
            print(f"isolation: {isolation}")
            first = False
        print(f"{f'sandbox, {workers} worker(s)':44s} {args.n / wall:8.1f} "
              f"{args.n / wall / busy:9.1f} {1000 * cpu / args.n:7.2f} {args.n / cpu:7.1f}")
    wall, cpu = bare_row(args.n)
    print(f"{'bare python -I -c pass (sequential)':44s} {args.n / wall:8.1f} {args.n / wall:9.1f} "
          f"{1000 * cpu / args.n:7.2f} {args.n / cpu:7.1f}")


if __name__ == "__main__":
    main()
