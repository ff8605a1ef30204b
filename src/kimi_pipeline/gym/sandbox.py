"""Run untrusted model-written Python against unit tests and return a verdict it cannot forge.

What it does
------------
``run_tests(solution, tests)`` executes ``solution`` and then ``tests`` (MBPP-style ``assert``
lines, or a HumanEval-style ``check(candidate)`` plus ``entry_point``) in a fresh, limited,
isolated process and returns a :class:`SandboxVerdict`; ``run_many`` runs many jobs on a thread
pool, one process per job. In ``namespaces`` mode everything a job started is dead and every
file it wrote is gone when the call returns.

Isolation (``isolation="auto"`` picks the strongest available; the verdict says which ran)
-----------------------------------------------------------------------------------------
``namespaces`` (root plus util-linux ``unshare``; the default on our machines): the job runs
under ``unshare --mount --net --pid --ipc --fork --kill-child --mount-proc`` and a small
trusted harness (``python -I -S``; ``-S`` saves a third of the start-up cost) that, still root
in the new namespaces,

* chroots into a minimal tree: a small tmpfs with read-only, nosuid binds of ``/usr``,
  ``/bin``, ``/lib*``, ``/etc``, ``/dev``, the new ``/proc`` and the interpreter's standard
  library, plus a fresh size-limited tmpfs as ``/tmp`` (also ``/var/tmp`` and ``/dev/shm``),
  the job's working and home directory. The host's data and code (``/work``, ``/home``,
  ``/root``, ...) do not exist for the job, so it can neither peek at answers nor leave files;
  the tmpfs disappears with the mount namespace;
* stays as pid 1 (``init``: root, runs no untrusted code) and forks the worker, which sets
  rlimits (CPU, address space, processes, file size, open files, no core dumps) and
  ``no_new_privs`` and drops to a fresh uid/gid (``sandbox_process.SANDBOX_UID_BASE`` + a
  counter), so ``RLIMIT_NPROC`` (ignored for root) bounds a fork bomb to that job alone and
  the job cannot signal or read another job or the host. When the worker exits, or the
  parent sends SIGTERM on a limit, init SIGKILLs every process of the namespace and reaps them
  itself, so ``setsid``/double-fork children die and no zombie reaches the host's init; if
  init does not finish, SIGKILL on it takes the whole PID namespace down;
* has an empty network namespace (loopback down: every connect fails) and its own IPC
  namespace (no SysV segment outlives the job);
* where cgroup v1 is writable, joins per-job ``cpu`` and ``memory`` groups made by the parent:
  one CPU at most (a fork bomb cannot starve other jobs) and memory for the job and its tmpfs
  together (the OOM killer stays inside the job); they are removed afterwards.

``rlimits`` (no root or no ``unshare``): rlimits, a new session killed afterwards, a fresh
temporary directory, and an audit hook refusing ``socket.*``. This is much weaker (see below).

The parent reads stdout/stderr/report pipes with ``poll`` under a byte cap and a wall-clock
deadline (a pidfd tells when the job ended) and kills on the first breach. A job also dies
with the thread that started it (``PR_SET_PDEATHSIG``, see ``kimi_pipeline.procs``), so a
caller killed with SIGKILL leaves no job running.

Why the verdict cannot be forged
--------------------------------
The untrusted code shares the interpreter with the harness, so anything the harness does
in-process the solution can in principle imitate. Hence two layers:

1. *Value-checked asserts.* The tests are parsed in the (trusted) parent. An assertion of the
   form ``assert <expr> == <literal>`` (or ``!=``) is sent to the sandbox as ``<expr>`` only:
   the harness evaluates it, converts the result to plain data (tagged JSON of built-in types;
   subclasses are reduced to their built-in value, foreign objects are rejected) and the parent
   compares it with the literal, which never enters the sandbox. Objects with a rigged
   ``__eq__``, patched builtins, ``sys.settrace`` jumps or even full control of the harness do
   not help: passing requires producing the right value. Most MBPP and HumanEval asserts are
   of this form; a HumanEval ``check`` whose body is only asserts is lifted into such asserts.
2. *In-process asserts* (anything else, e.g. ``abs(f(x) - y) < 1e-6`` or a ``check`` with
   loops) run in the harness, and their outcome travels over an inherited pipe as a line that
   starts with a per-run random nonce given on stdin (read before any untrusted code runs;
   stdin is then ``/dev/null``). Printing to stdout proves nothing; ``sys.exit``/``os._exit``/
   a crash means no final ``done`` record (which must carry the unit count) and a failed run;
   ``SystemExit`` inside a test is a failed test; a record repeated for one test fails the
   run. Before running the solution the harness keeps its own references to everything it
   uses (its builtins are a private copy), deletes ``sys.settrace``/``sys.setprofile`` and
   resets tracing before each unit, imports the modules the tests use and snapshots every
   module's attributes (plus ``sys.path``/``meta_path``/``path_hooks``), which it restores
   after the solution ran; tests run in their own namespace whose ``__builtins__`` is a copy
   taken before the solution, with the tests' own definitions (``check``) and the genuine
   modules they name. So rebinding ``builtins.*``, ``AssertionError``, ``math.isclose``,
   ``sys.modules['math']`` or a test helper has no effect.

What it does NOT protect against
--------------------------------
* A solution that deliberately introspects the harness (``gc.get_objects``, frames, ``ctypes``
  memory reads, ``PyEval_SetTrace`` through ``ctypes``) can learn the nonce and forge the
  outcome of *in-process* asserts; so can deeper patches the shallow restore misses (a class
  attribute such as ``collections.Counter.__eq__``, a module the tests reach only indirectly).
  Value-checked asserts stay sound. Tasks whose tests must be unforgeable should use them.
* It is not a container or VM: the kernel attack surface is the host's (no seccomp); without
  cgroup v1 (e.g. a cgroup-v2-only host) CPU is shared only by the kernel's per-session
  autogroups and memory is bounded per process (``RLIMIT_AS`` times ``max_processes`` in the
  worst case, plus the tmpfs); per-uid kernel objects (keyrings) are not cleaned. Results must
  be plain data for value checks (``Decimal``/``Fraction`` results fail them; subclasses of
  built-in types and objects with ``__index__`` are fine).
* In ``rlimits`` mode the job runs as the caller's user: it can write wherever that user can,
  escape the kill with ``setsid``, and use the network through ``ctypes``. Use it for trusted
  smoke tests only.

Linux only (``pidfd_open``, ``/proc``). Only the interpreter's standard library is importable
(``-S``); the interpreter must not live under ``/tmp``.

Where the parts live
--------------------
This module is the API and the verdict. ``gym.sandbox_plan`` splits the tests into units and
judges the harness's records (trusted parent, no model code); ``gym.sandbox_harness`` is the
trusted code that runs inside the job (isolation set-up, init, the units);
``gym.sandbox_process`` starts, feeds, watches and kills the job's process and owns its uid
and cgroups.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kimi_pipeline.gym.sandbox_plan import Plan, plan_tests, report_records, unit_ok
from kimi_pipeline.gym.sandbox_process import (
    RawRun,
    execute,
    make_cgroups,
    namespaces_available,
    next_uid,
    remove_cgroups,
)


@dataclass(frozen=True)
class SandboxLimits:
    """Per-job limits. CPU time is enforced in whole seconds (rounded up) per process.

    ``isolation``: ``auto``, ``namespaces`` or ``rlimits`` (see the module docstring);
    ``cgroups``: also confine a namespaced job to one CPU and ``memory_mb + tmp_mb`` of memory
    when cgroup v1 is writable (costs a few ms of latency per job, little CPU).
    """

    cpu_seconds: float = 2.0
    wall_seconds: float = 5.0
    memory_mb: int = 512
    max_processes: int = 16
    max_output_bytes: int = 65536
    max_file_bytes: int = 16 << 20
    tmp_mb: int = 64
    max_open_files: int = 256
    isolation: str = "auto"
    cgroups: bool = True

    def __post_init__(self) -> None:
        if min(self.cpu_seconds, self.wall_seconds) <= 0:
            raise ValueError("cpu_seconds and wall_seconds must be positive")
        if min(self.memory_mb, self.max_processes, self.max_output_bytes, self.tmp_mb) <= 0:
            raise ValueError("memory, process, output and tmp limits must be positive")
        if self.isolation not in ("auto", "namespaces", "rlimits"):
            raise ValueError("isolation must be 'auto', 'namespaces' or 'rlimits'")


@dataclass(frozen=True)
class SandboxVerdict:
    """Outcome of one job. ``passed`` is the binary reward; ``reason`` says why.

    ``reason`` is one of ``passed``, ``failed`` (a test failed), ``syntax_error``,
    ``solution_error`` (the solution raised, ``SystemExit`` included, before the tests),
    ``crashed`` (no complete report: ``os._exit``, a signal), ``timeout``, ``cpu_limit``,
    ``output_limit``, ``report_limit``, ``bad_tests: ...`` or ``sandbox_error: ...``.
    ``tests_run``/``tests_passed`` count assertions (a ``check`` that is not lifted counts
    once). ``isolation`` says which protections were in force.
    """

    passed: bool
    reason: str
    tests_run: int
    tests_passed: int
    wall_s: float
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str
    isolation: str = ""


@dataclass(frozen=True)
class SandboxJob:
    """One job for :func:`run_many`."""

    solution: str
    tests: str
    entry_point: str | None = None
    limits: SandboxLimits | None = None


# --------------------------------------------------------------------------- limits


def _mode(limits: SandboxLimits) -> str:
    if limits.isolation == "auto":
        return "namespaces" if namespaces_available() else "rlimits"
    return limits.isolation


def _rlimits(limits: SandboxLimits, isolate: bool) -> list[tuple[str, int]]:
    out = [
        ("RLIMIT_CPU", math.ceil(limits.cpu_seconds)),
        ("RLIMIT_AS", limits.memory_mb << 20),
        ("RLIMIT_FSIZE", limits.max_file_bytes),
        ("RLIMIT_NOFILE", limits.max_open_files),
        ("RLIMIT_CORE", 0),
    ]
    if isolate:  # per-job uid: the count is this job's own processes and threads
        out.append(("RLIMIT_NPROC", limits.max_processes))
    return out


# --------------------------------------------------------------------------- verdicts


def _reason(raw: RawRun, recs: list[tuple[str, int, str]], plan: Plan,
            results: dict[int, bool], cpu_limit: int) -> str:
    kinds = {k for k, _, _ in recs}
    done = [i for k, i, _ in recs if k == "done"]
    if raw.error:
        return f"sandbox_error: {raw.error}"
    if raw.limit:
        return raw.limit
    if not done and raw.cpu_s >= cpu_limit - 0.05:  # killed by RLIMIT_CPU's SIGKILL
        return "cpu_limit"
    if "syntax" in kinds:
        return "syntax_error"
    if "solerr" in kinds:
        return "solution_error"
    if "ready" not in kinds:
        return "sandbox_error: harness did not start"
    if done != [len(plan.units)] or raw.exit_code != 0:
        return "crashed"
    if len(results) == len(plan.units) and all(results.values()):
        return "passed"
    return "failed"


def _judge(raw: RawRun, plan: Plan, limits: SandboxLimits, t0: float) -> SandboxVerdict:
    recs = report_records(raw.chan, raw.nonce)
    results: dict[int, bool] = {}
    duplicate = False
    for kind, idx, payload in recs:
        if kind in ("ok", "fail", "val"):
            if not 0 <= idx < len(plan.units) or idx in results:
                duplicate = True
                continue
            results[idx] = unit_ok(kind, payload, plan.checks[idx])
        elif kind == "ready":
            raw.isolation = payload
    reason = _reason(raw, recs, plan, results, math.ceil(limits.cpu_seconds))
    if duplicate and reason == "passed":
        reason = "failed"
    tests = [i for i, c in enumerate(plan.checks) if c is not None]
    return SandboxVerdict(
        passed=reason == "passed",
        reason=reason,
        tests_run=sum(i in results for i in tests),
        tests_passed=sum(results.get(i, False) for i in tests),
        wall_s=time.perf_counter() - t0,
        exit_code=raw.exit_code,
        stdout_tail=raw.stdout.decode("utf-8", "replace"),
        stderr_tail=raw.stderr.decode("utf-8", "replace"),
        isolation=raw.isolation,
    )


# --------------------------------------------------------------------------- public API


def run_tests(solution: str, tests: str, limits: SandboxLimits | None = None,
              entry_point: str | None = None) -> SandboxVerdict:
    """Run ``solution`` then ``tests`` in a fresh sandbox; ``passed`` is the binary reward.

    ``tests`` is Python source: ``assert`` statements (MBPP style; other statements are setup),
    or a ``check(candidate)`` definition that is called with ``entry_point`` when given.
    """
    limits = limits or SandboxLimits()
    t0 = time.perf_counter()
    mode = _mode(limits)
    try:
        plan = plan_tests(tests, entry_point)
    except ValueError as e:
        return SandboxVerdict(False, f"bad_tests: {e}", 0, 0, time.perf_counter() - t0, None,
                              "", "", mode)
    if mode == "namespaces" and not namespaces_available():
        return SandboxVerdict(False, "sandbox_error: namespaces unavailable (needs root and "
                              "util-linux unshare)", 0, 0, time.perf_counter() - t0, None,
                              "", "", mode)
    raw = _run_job(solution, plan, limits, isolate=mode == "namespaces")
    if not raw.isolation:
        raw.isolation = mode
    return _judge(raw, plan, limits, t0)


def _run_job(solution: str, plan: Plan, limits: SandboxLimits, isolate: bool) -> RawRun:
    """One job process: namespaced with its own uid and cgroups, or in a temporary directory."""
    params = {"tmp_kb": limits.tmp_mb << 10, "rlimits": _rlimits(limits, isolate),
              "solution": solution, "units": list(plan.units), "modules": list(plan.modules)}
    caps = {"wall_seconds": limits.wall_seconds, "max_output_bytes": limits.max_output_bytes}
    if not isolate:
        workdir = tempfile.mkdtemp(prefix="kimi-sandbox-")
        try:
            return execute({**params, "cgroups": []}, False, 0, workdir, **caps)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    uid = next_uid()
    memory = (limits.memory_mb + limits.tmp_mb + 64) << 20  # the job and its tmpfs, + 64 MiB
    cgroups = make_cgroups(uid, memory) if limits.cgroups else []
    try:
        params["cgroups"] = [f"{d}/cgroup.procs" for d in cgroups]
        return execute(params, True, uid, "/tmp", **caps)
    finally:
        remove_cgroups(cgroups)


def _job_kwargs(job: SandboxJob | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(job, SandboxJob):
        return {"solution": job.solution, "tests": job.tests, "limits": job.limits,
                "entry_point": job.entry_point}
    return dict(job)


def run_many(jobs: Iterable[SandboxJob | Mapping[str, Any]],
             max_workers: int | None = None) -> list[SandboxVerdict]:
    """Run jobs concurrently (one sandboxed process each); verdicts in input order.

    A job is a :class:`SandboxJob` or a mapping of :func:`run_tests` keyword arguments. The
    default of two workers per core hides the per-job latency of namespace and cgroup set-up
    and tear-down (kernel RCU waits), which costs no CPU.
    """
    kwargs = [_job_kwargs(j) for j in jobs]
    workers = max(1, max_workers or 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda kw: run_tests(**kw), kwargs))


__all__: Sequence[str] = ["SandboxJob", "SandboxLimits", "SandboxVerdict", "run_many",
                          "run_tests"]
