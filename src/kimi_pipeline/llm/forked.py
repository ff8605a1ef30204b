"""One sampling batch split over forked single-thread processes: both cores of a small CPU.

Decoding a 135M model is a chain of small matmuls; one process with two torch threads syncs its
threads at every op, so when anything else holds a core (a test run, a notebook, the verifier
sandbox) each op waits for the descheduled thread and throughput collapses (measured 47 tokens/s
at 2 threads against 118 at 1 on this project's shared 2-core machine). Two processes with one
thread each never wait on each other: on idle cores they run side by side, on a busy machine
they share what is free.

The caller's process decodes the first part itself; every other part runs in a child made with
``os.fork`` at the moment of the call, so it reads the very weights the parent holds (pages
shared copy-on-write: no copy, no transfer, and a policy that RL just updated is sampled as it is
now). Each child samples its part, sends the pickled samples through a pipe and exits with
``os._exit`` (it never returns into the caller's code, never logs, never touches the caller's
threads or event loop). A child that dies or fails raises ``ForkedSamplingError`` in the caller
with its exit status or its traceback.

Prompts are split into contiguous parts of about equal cost (prompt tokens plus sampled budget).
Each part draws from its own generator seeded from the caller's, so a seed reproduces a batch
for a given number of processes (a different number of processes gives different, equally
valid samples: the same holds for torch's thread count). Forking is safe on Linux with the
model on the CPU and CUDA never initialised: ``can_fork`` says when it applies, and elsewhere
the caller samples in one process.
"""

from __future__ import annotations

import os
import pickle
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class ForkedSamplingError(RuntimeError):
    """A forked sampling process died or raised: its exit status or traceback."""


def can_fork(device: torch.device) -> bool:
    """Forking is safe here: Linux (macOS system libraries are not fork-safe, Windows has no
    fork), the model on the CPU, CUDA never initialised in this process."""
    return (sys.platform.startswith("linux") and device.type == "cpu"
            and not torch.cuda.is_initialized())


def split_by_cost(costs: Sequence[int], parts: int) -> list[range]:
    """Contiguous ranges of ``costs`` (one per prompt) with about equal sums, none empty;
    at most ``parts`` of them."""
    parts = max(1, min(parts, len(costs)))
    total, ranges, start, running = sum(costs), [], 0, 0
    for index, cost in enumerate(costs):
        running += cost
        left_parts = parts - len(ranges) - 1
        left_items = len(costs) - index - 1
        if left_parts > 0 and (running >= total * (len(ranges) + 1) / parts
                               or left_items == left_parts):
            ranges.append(range(start, index + 1))
            start = index + 1
    ranges.append(range(start, len(costs)))
    return [r for r in ranges if len(r)]


def run_forked(parts: Sequence[Callable[[], T]], threads_per_process: int = 1) -> list[T]:
    """``[part() for part in parts]``, the first in this process, each other in a forked child;
    every process uses ``threads_per_process`` torch threads. Results come back pickled."""
    if len(parts) <= 1:
        return [part() for part in parts]
    children = [_fork_child(part, threads_per_process) for part in parts[1:]]
    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_process)
    try:
        first = parts[0]()
    except BaseException:
        for pid, read_end in children:  # reap them; the caller's own error is the one to see
            try:
                _collect(pid, read_end)
            except ForkedSamplingError:
                pass
        raise
    finally:
        torch.set_num_threads(before)
    return [first, *(_collect(pid, read_end) for pid, read_end in children)]


def _fork_child(part: Callable[[], Any], threads: int) -> tuple[int, int]:
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about forking with threads alive
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: sample, send, exit without returning into the caller
        os.close(read_end)
        status = 0
        try:
            torch.set_num_threads(threads)
            payload = pickle.dumps(("ok", part()), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # noqa: BLE001 — everything goes back to the parent
            payload = pickle.dumps(("error", traceback.format_exc()))
            status = 1
        try:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _collect(pid: int, read_end: int) -> Any:
    with os.fdopen(read_end, "rb") as pipe:
        payload = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not payload:
        raise ForkedSamplingError(f"sampling process {pid} died without a result "
                                  f"({_describe(status)})")
    kind, value = pickle.loads(payload)
    if kind != "ok":
        raise ForkedSamplingError(f"sampling process {pid} failed:\n{value}")
    return value


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.WEXITSTATUS(status)}"
