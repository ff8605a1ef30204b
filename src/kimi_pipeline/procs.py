"""Child processes that die with the process that started them, even when it gets SIGKILL.

A killed Kedro process used to leave its workers behind: synthesis pool workers re-parented to
init went on writing shards and then idled holding memory, and so did training and sandbox
processes. Nothing in the parent can clean up after SIGKILL, so the children must notice
themselves. On Linux the kernel does it: ``prctl(PR_SET_PDEATHSIG)`` makes it send a signal to
a child when the parent *thread* that forked it exits (every caller here forks from a thread
that outlives its children: the pool's submitting thread, the sandbox job's thread, the node).

* :func:`die_with_parent` runs in a child (a process pool's ``initializer``). It arms the
  signal and then checks that the parent is still the expected one: a parent that died before
  the ``prctl`` ran would never trigger it, and the child would already belong to init.
* :func:`exec_with_parent_death` prefixes a command with a tiny interpreter that does the same
  and then ``exec``s the command (the setting survives ``execve``), or with util-linux
  ``setpriv`` where the check is not needed. Only the command's own process is covered, not
  what it starts (the sandbox's ``unshare --kill-child`` takes care of the rest).
* :func:`supervised` prefixes a command with :func:`supervise` (``python -m
  kimi_pipeline.procs PARENT_PID -- CMD...``), a small process that dies with its parent
  (as SIGTERM, so it can act), is a child subreaper (orphans of the tree come to it) and, when
  the parent dies or it is told to stop, SIGKILLs every process of the tree. Use it for trees
  (the DeepSpeed launcher and its workers).

Elsewhere than Linux these are no-ops and commands are returned unchanged.
:func:`usable_cores` says how many processes a stage may spread work over (the affinity mask).
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
LINUX = sys.platform.startswith("linux")
TERM_GRACE_S = 5.0
"""How long a supervised tree may take to stop on SIGTERM while the parent is alive."""

_EXEC_CODE = (
    "import os,sys,_ctypes\n"
    "_ctypes.call_function(_ctypes.dlsym(_ctypes.dlopen(None,2),'prctl'),(1,9,0,0,0))\n"
    "os.getppid()==int(sys.argv[1]) or os._exit(137)\n"
    "os.execv(sys.argv[2],sys.argv[2:])\n"
)


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}, {value}): {os.strerror(err)}")


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a child of ``parent_pid``: receive ``sig`` when it exits; exit now if it is gone."""
    if not LINUX:
        return
    _prctl(PR_SET_PDEATHSIG, int(sig))
    if os.getppid() != parent_pid:  # the parent died before prctl: nobody would signal us
        os._exit(128 + signal.SIGKILL)


def exec_with_parent_death(cmd: list[str], check_parent: bool = True) -> list[str]:
    """``cmd`` run so that the kernel SIGKILLs it when the calling thread exits.

    ``cmd[0]`` must be a path (it is ``exec``ed without a PATH search). The prefix is a bare
    interpreter (about 8 ms) that also checks the parent. With ``check_parent=False`` and
    util-linux ``setpriv`` installed, ``setpriv --pdeathsig`` arms the signal at no measurable
    cost, but a parent dying in the instant before it does goes unnoticed: use that only where
    the child notices by itself (the sandbox: its payload pipe closes and it exits).
    """
    if not LINUX:
        return list(cmd)
    if not check_parent and _setpriv():
        return [_setpriv(), "--pdeathsig", "KILL", "--", *cmd]
    return [sys.executable, "-I", "-S", "-c", _EXEC_CODE, str(os.getpid()), *cmd]


@functools.lru_cache(maxsize=1)
def _setpriv() -> str | None:
    """util-linux ``setpriv`` if it knows ``--pdeathsig`` (2.33 and later)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage.stdout else None


def supervised(cmd: list[str]) -> list[str]:
    """``cmd`` run under :func:`supervise`: its whole process tree dies with the caller."""
    if not LINUX:
        return list(cmd)
    return [sys.executable, "-m", "kimi_pipeline.procs", str(os.getpid()), "--", *cmd]


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children first)."""
    found, frontier = [], [pid]
    while frontier:
        kids = [k for p in frontier for k in _children(p)]
        found += kids
        frontier = kids
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids += [int(k) for k in f.read().split()]
        except OSError:
            pass
    return kids


def kill_tree(pid: int, passes: int = 20) -> None:
    """SIGKILL every process below ``pid`` until none is left (a forking tree needs passes)."""
    for _ in range(passes):
        pids = descendants(pid)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        _reap()
        time.sleep(0.01)


def _reap() -> None:
    """Collect exited children (as a subreaper, orphans of the tree are ours to wait for)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def supervise(parent_pid: int, cmd: list[str]) -> int:
    """Run ``cmd`` as a tree that dies with ``parent_pid``; return its exit code.

    When the parent dies (we get SIGTERM from the kernel) every process of the tree is
    SIGKILLed at once. A SIGTERM or SIGHUP while the parent lives is passed on to the command,
    which gets :data:`TERM_GRACE_S` to stop before the tree is SIGKILLed. SIGINT is left to the
    command (Ctrl-C reaches the whole foreground process group anyway).
    """
    me, child = os.getpid(), []

    def stop(signum, _frame):
        if child and os.getppid() == parent_pid:
            child[0].send_signal(signum)
            _wait_exited(child[0].pid, TERM_GRACE_S)
        kill_tree(me)
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    signal.signal(signal.SIGINT, lambda *_: None)
    die_with_parent(parent_pid, signal.SIGTERM)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    child.append(subprocess.Popen(cmd, preexec_fn=lambda: die_with_parent(me)))  # one thread
    code = child[0].wait()
    kill_tree(me)  # what the command left behind (daemons, orphaned workers)
    return code if code >= 0 else 128 - code


def _wait_exited(pid: int, timeout: float) -> None:
    """Poll (we may be in a signal handler on top of a blocking wait) until ``pid`` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
        except ChildProcessError:
            return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m kimi_pipeline.procs PARENT_PID -- COMMAND...\n")
        return 2
    return supervise(int(argv[0]), argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
