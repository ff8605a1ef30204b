"""One sandboxed job as a process: start it isolated, feed it, watch it, kill it, clean up.

``execute`` starts ``python -I -S -c BOOT`` (``gym.sandbox_harness``) — under ``unshare``
with fresh mount, network, PID and IPC namespaces in ``namespaces`` mode, as a new session
otherwise — writes the marshalled harness and its params to its stdin, and reads stdout,
stderr and the report pipe with ``poll`` under byte caps and a wall-clock deadline (a pidfd
tells when the job ended), killing it on the first breach. Each namespaced job gets its own
uid (:func:`next_uid`) so ``RLIMIT_NPROC`` bounds a fork bomb to that job, and, where cgroup v1
is writable, its own ``cpu`` and ``memory`` cgroups (:func:`make_cgroups`), removed afterwards
(and by the next user of the sandbox when a caller was SIGKILLed before it could). A job also
dies with the thread that started it (``PR_SET_PDEATHSIG``, see ``kimi_pipeline.procs``).
What this returns is raw (:class:`RawRun`); ``gym.sandbox`` judges it.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import marshal
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from kimi_pipeline.gym.sandbox_harness import BOOT, HARNESS_CODE
from kimi_pipeline.procs import exec_with_parent_death

SANDBOX_UID_BASE = 2_000_000_000
"""First uid/gid of sandboxed jobs; each job gets the next one (2**24 of them, then reuse)."""

MAX_REPORT_BYTES = 8 << 20
"""Cap on the harness's report channel per job (value records are at most 1 MiB each)."""

_TAIL_BYTES = 4096
_NS_FLAGS = ("--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc")
_ENV_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class RawRun:
    """What came back from one job process, before the parent judges it."""

    nonce: str  # this run's secret: only report lines starting with it count
    chan: bytes = b""  # the report channel, as written
    stdout: bytes = b""  # last few KiB
    stderr: bytes = b""  # last few KiB
    exit_code: int | None = None
    cpu_s: float = 0.0  # user + system time of the job's processes
    limit: str | None = None  # the breach it was killed for: timeout, output_limit, report_limit
    isolation: str = ""  # the protections in force, as the harness reported them
    error: str | None = None  # the process could not be started


_UID_SPAN = 1 << 24
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def next_uid() -> int:
    """A uid/gid for one job; consecutive jobs never share one (until 2**24 jobs later)."""
    with _uid_lock:
        return SANDBOX_UID_BASE + next(_uid_counter) % _UID_SPAN


@functools.lru_cache(maxsize=1)
def _unshare() -> str | None:
    return shutil.which("unshare")


@functools.lru_cache(maxsize=1)
def namespaces_available() -> bool:
    """Root with a working util-linux ``unshare`` (probed once)."""
    if os.name != "posix" or os.geteuid() != 0 or _unshare() is None:
        return False
    try:
        probe = subprocess.run([_unshare(), *_NS_FLAGS, "true"], capture_output=True, timeout=10,
                               check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=1)
def cgroup_bases() -> dict[str, str]:
    """cgroup v1 controller -> our ``kimi-sandbox`` directory under the caller's own group."""
    bases: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return bases
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for ctl in set(controllers.split(",")) & {"cpu", "memory"}:
            base = f"/sys/fs/cgroup/{ctl}{path.rstrip('/')}/kimi-sandbox"
            try:
                os.makedirs(base, exist_ok=True)
            except OSError:
                continue
            bases[ctl] = base
            _remove_orphan_cgroups(base)
    atexit.register(remove_cgroups, list(bases.values()))  # if no other process uses them
    return bases


def _remove_orphan_cgroups(base: str) -> None:
    """Remove the job cgroups (``job-PID-UID``) a caller killed with SIGKILL left behind."""
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == "job" and parts[1].isdigit():
            if not os.path.exists(f"/proc/{parts[1]}"):
                remove_cgroups([f"{base}/{name}"])


_stale_cgroups: list[str] = []
_stale_lock = threading.Lock()


def make_cgroups(uid: int, memory_bytes: int) -> list[str]:
    """Per-job cgroups: one CPU, and ``memory_bytes`` for the job and its tmpfs together."""
    values = {
        "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"},
        "memory": {"memory.limit_in_bytes": str(memory_bytes)},
    }
    made = []
    for ctl, base in cgroup_bases().items():
        job = f"{base}/job-{os.getpid()}-{uid}"
        try:
            os.mkdir(job)
            made.append(job)
            for name, value in values[ctl].items():
                with open(f"{job}/{name}", "w") as f:
                    f.write(value)
        except OSError:
            continue
    return made


def remove_cgroups(dirs: list[str]) -> None:
    """Remove job cgroups (empty once the job is reaped); retry leftovers next time."""
    with _stale_lock:
        pending, _stale_cgroups[:] = [*_stale_cgroups, *dirs], []
    for d in pending:
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            with _stale_lock:
                _stale_cgroups.append(d)


class _Tail:
    """Counts a stream's bytes and keeps its last few KiB."""

    def __init__(self) -> None:
        self.total, self.buf = 0, bytearray()

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self.buf += data
        del self.buf[:-_TAIL_BYTES]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _exited(pidfd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))


def _wait_until_gone(uid: int, timeout: float = 5.0) -> None:
    """Return once no process of the job's uid is left (a fork bomb takes a moment to die)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _processes_of(uid):
        time.sleep(0.01)


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _kill(proc: subprocess.Popen, pidfd: int, isolate: bool) -> None:
    """End the job and everything it started.

    Namespaces: SIGTERM asks the job's init to SIGKILL and reap all its processes (so no zombie
    is handed to the host); if it does not finish at once, init and ``unshare`` are SIGKILLed
    (the kernel then kills the rest of the PID namespace). rlimits mode: SIGKILL the session.
    """
    if isolate:
        for sig, wait in ((signal.SIGTERM, 0.5), (signal.SIGKILL, 0.0)):
            for pid in _children(proc.pid):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if _exited(pidfd, wait):
                return
    else:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


class _Pump:
    """Feeds the payload and reads stdout, stderr and the report channel under caps/deadline."""

    def __init__(self, proc: subprocess.Popen, chan_r: int, payload: bytes,
                 max_output_bytes: int) -> None:
        self.proc, self.max_output_bytes = proc, max_output_bytes
        self.out, self.err, self.chan = _Tail(), _Tail(), bytearray()
        self.readers = {proc.stdout.fileno(): self.out, proc.stderr.fileno(): self.err,
                        chan_r: self.chan}
        self.win, self.pending = proc.stdin.fileno(), memoryview(payload)
        os.set_blocking(self.win, False)
        self.poller = select.poll()
        self.poller.register(self.win, select.POLLOUT)
        for fd in self.readers:
            self.poller.register(fd, select.POLLIN)
        self.limit: str | None = None

    def _write(self) -> None:
        try:
            n = os.write(self.win, self.pending[:1 << 16])
        except BlockingIOError:
            return
        except OSError:
            n = len(self.pending)
        self.pending = self.pending[n:]
        if not self.pending:
            self.poller.unregister(self.win)
            self.proc.stdin.close()

    def _read(self, fd: int) -> None:
        data = os.read(fd, 1 << 16)
        if not data:
            self.poller.unregister(fd)
            del self.readers[fd]
            return
        sink = self.readers[fd]
        if sink is self.chan:
            self.chan += data
            if len(self.chan) > MAX_REPORT_BYTES:
                self.limit = "report_limit"
        else:
            sink.add(data)
            if self.out.total + self.err.total > self.max_output_bytes:
                self.limit = "output_limit"

    def run(self, pidfd: int, deadline: float) -> bool:
        """Pump until the process exited and its pipes are drained; True if it exited."""
        self.poller.register(pidfd, select.POLLIN)
        exited, grace = False, deadline
        while self.limit is None and (self.readers or not exited):
            now = time.perf_counter()
            if now >= grace:
                if not exited:
                    self.limit = "timeout"
                break
            for fd, _ in self.poller.poll(max(1, int((grace - now) * 1000))):
                if fd == pidfd:
                    exited, grace = True, min(deadline, now + 0.25)
                    self.poller.unregister(pidfd)
                elif fd == self.win:
                    self._write()
                elif fd in self.readers:
                    self._read(fd)
        return exited


def _spawn(isolate: bool, workdir: str, chan_w: int) -> subprocess.Popen:
    python = [sys.executable, "-I", "-S", "-c", BOOT]
    cmd = [_unshare() or "unshare", *_NS_FLAGS, *python] if isolate else python
    # SIGKILLed when this thread (the caller's, waiting for the job) or the process dies, so a
    # killed caller leaves no job behind (unshare --kill-child takes the namespace down). The
    # setpriv prefix does not check the caller is still alive: one dead within the millisecond
    # before the signal is armed leaves a job that runs until it ends or its CPU limit
    cmd = exec_with_parent_death(cmd, check_parent=False)
    env = {"PATH": _ENV_PATH, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8"}
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, pass_fds=(chan_w,), start_new_session=True,
                            env=env, cwd="/" if isolate else workdir)


def execute(harness_params: dict[str, Any], isolate: bool, uid: int, workdir: str,
            wall_seconds: float, max_output_bytes: int) -> RawRun:
    """Run the harness with ``harness_params`` in one job process; what came back, unjudged.

    ``isolate``: in fresh namespaces as ``uid`` (else rlimits only, in ``workdir``). The job
    is killed on the first breach of ``wall_seconds`` or of the output caps, and in every case
    nothing it started is left running when this returns (see :func:`_kill`).
    """
    raw = RawRun(nonce=secrets.token_hex(16))
    chan_r, chan_w = os.pipe()
    try:
        proc = _spawn(isolate, workdir, chan_w)
    except OSError as e:
        os.close(chan_r)
        raw.error = f"cannot start: {e}"
        return raw
    finally:
        os.close(chan_w)
    pidfd = os.pidfd_open(proc.pid)
    pump, exited = None, False
    try:
        params = {"nonce": raw.nonce, "chan": chan_w, "isolate": isolate, "uid": uid,
                  "workdir": workdir, **harness_params}
        pump = _Pump(proc, chan_r, marshal.dumps((HARNESS_CODE, params)), max_output_bytes)
        exited = pump.run(pidfd, time.perf_counter() + wall_seconds)
    finally:
        killed = not (exited and isolate and pump.limit is None)
        if killed:
            _kill(proc, pidfd, isolate)  # rlimits mode: the session may have outlived the job
        _, status, usage = os.wait4(proc.pid, 0)
        if killed and isolate:
            _wait_until_gone(uid)  # the kernel tears a dead namespace down asynchronously
        proc.returncode = os.waitstatus_to_exitcode(status)
        os.close(pidfd)
        os.close(chan_r)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if not f.closed:
                f.close()
    raw.chan, raw.stdout, raw.stderr = bytes(pump.chan), bytes(pump.out.buf), bytes(pump.err.buf)
    raw.exit_code, raw.limit = proc.returncode, pump.limit
    raw.cpu_s = usage.ru_utime + usage.ru_stime
    return raw
