"""Throughput of the openai backend against an endpoint that adds latency, per concurrency level.

Starts ``kimi_pipeline.llm.server`` (echo backend, 100 ms added per request) in a subprocess,
then sends requests through ``complete_many`` with ``max_concurrency`` 1, 8 and 64 (cache off,
no retries) and prints req/s, the share of the ideal ``concurrency / latency``, client and
server CPU milliseconds per request, and the most requests the server has seen at once so far.
Target: with 64 in flight, at least 80 % of ideal (512 req/s). Each level sends
``min(requests, waves * level)`` requests, so the serial level does not take a minute.
Wall-clock rates depend on what else the machine runs; the CPU figures much less so.
Prints figures, never asserts.

    python bench/llm_concurrency.py [--requests 640] [--waves 40] [--levels 1 8 64]
                                    [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request

from kimi_pipeline.llm.base import ChatRequest, complete_many, OpenAIBackendConfig
from kimi_pipeline.llm.openai_backend import OpenAIBackend


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return json.loads(reply.read())


def start_server(latency_ms: float) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "kimi_pipeline.llm.server", "--backend", "echo",
               "--port", str(port), "--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {process.stderr.read().decode()}")
        try:
            _get(f"{root}/health")
            return process, root
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not come up within 30 s")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_s(pid: int) -> float:
    """utime + stime of the server process (Linux /proc; NaN elsewhere)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_level(root: str, server_pid: int, level: int, n: int) -> dict:
    config = OpenAIBackendConfig(model="echo", base_url=f"{root}/v1", cache_dir=None,
                           max_concurrency=level, max_retries=0, timeout_s=30)
    backend = OpenAIBackend(config)
    requests = [ChatRequest(role="agent", messages=[{"role": "user", "content": f"request {i}"}])
                for i in range(n)]
    start, cpu, server_cpu = time.perf_counter(), _cpu_s(), _server_cpu_s(server_pid)
    replies = complete_many(backend, requests)
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
    server_cpu = _server_cpu_s(server_pid) - server_cpu
    return {"level": level, "n": n, "wall": wall, "rate": n / wall, "cpu_ms": 1000 * cpu / n,
            "server_cpu_ms": 1000 * server_cpu / n,
            "failures": sum(r.error is not None for r in replies),
            "server_peak": _get(f"{root}/stats")["max_in_flight"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=640)
    parser.add_argument("--waves", type=int, default=40, help="cap on requests / level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    process, root = start_server(args.latency_ms)
    try:
        run_level(root, process.pid, 1, 2)  # imports and first connections, not measured
        print(f"endpoint latency {args.latency_ms:g} ms; cache off; retries off")
        print(f"{'in flight':>9} {'requests':>8} {'wall s':>7} {'req/s':>7} {'ideal':>7} "
              f"{'% ideal':>7} {'client cpu ms/req':>17} {'server cpu ms/req':>17} "
              f"{'failures':>8} {'server peak':>11}")
        for level in args.levels:
            row = run_level(root, process.pid, level, min(args.requests, args.waves * level))
            ideal = level / latency
            print(f"{level:>9} {row['n']:>8} {row['wall']:>7.2f} {row['rate']:>7.1f} {ideal:>7.0f} "
                  f"{100 * row['rate'] / ideal:>6.1f}% {row['cpu_ms']:>17.3f} "
                  f"{row['server_cpu_ms']:>17.3f} {row['failures']:>8} {row['server_peak']:>11}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


if __name__ == "__main__":
    main()
