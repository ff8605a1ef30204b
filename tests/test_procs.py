"""Children die with their parent (``kimi_pipeline.procs``): killed with SIGKILL, a parent takes
its workers, their children and even processes that left the session with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from kimi_pipeline.procs import supervised

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

TREE = ["/bin/sh", "-c", "sleep 300 & sleep 300 & (setsid sleep 300 &); wait"]


def start_parent(body: str) -> tuple[subprocess.Popen, list[psutil.Process]]:
    """A Python parent running ``body``; once it printed 'ready', it and its descendants."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(body)],
                              stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    return parent, psutil.Process(parent.pid).children(recursive=True)


def kill_and_survivors(parent: subprocess.Popen, kids: list[psutil.Process],
                       timeout: float = 5.0) -> list[psutil.Process]:
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    _, alive = psutil.wait_procs(kids, timeout=timeout)
    for proc in alive:
        proc.kill()
    return alive


def wait_for_descendants(pid: int, count: int, timeout: float = 10.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = psutil.Process(pid).children(recursive=True)
        if len(kids) >= count:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"only {len(kids)} of {count} descendants started")


def test_a_supervised_tree_dies_with_its_parent_even_what_left_the_session():
    parent, _ = start_parent(f"""
        import subprocess
        from kimi_pipeline.procs import supervised
        proc = subprocess.Popen(supervised({TREE!r}))
        print("ready", flush=True)
        proc.wait()
    """)
    kids = wait_for_descendants(parent.pid, 5)  # supervisor, sh, three sleeps
    assert kill_and_survivors(parent, kids) == []


def test_an_exec_wrapped_command_dies_with_its_parent():
    for check in (True, False):
        parent, kids = start_parent(f"""
            import subprocess
            from kimi_pipeline.procs import exec_with_parent_death
            proc = subprocess.Popen(exec_with_parent_death(["/bin/sleep", "300"], {check}))
            print("ready", flush=True)
            proc.wait()
        """)
        kids = wait_for_descendants(parent.pid, 1)
        deadline = time.monotonic() + 10
        while kids[0].name() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert kids[0].name() == "sleep"  # exec'd: no wrapper process stays
        assert kill_and_survivors(parent, kids) == []


def test_a_child_whose_parent_died_before_arming_exits_at_once():
    code = "from kimi_pipeline.procs import die_with_parent; die_with_parent(1); print('alive')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 128 + signal.SIGKILL and "alive" not in done.stdout


def test_supervised_passes_output_and_exit_code_through():
    done = subprocess.run(supervised(["/bin/sh", "-c", "echo hi; exit 3"]), capture_output=True,
                          text=True)
    assert (done.returncode, done.stdout) == (3, "hi\n")


def test_sigterm_to_the_supervisor_reaches_the_command_then_ends_the_tree():
    proc = subprocess.Popen(supervised(["/bin/sh", "-c", "trap 'echo term; exit 0' TERM; "
                                        "sleep 300 & wait"]), stdout=subprocess.PIPE, text=True)
    kids = wait_for_descendants(proc.pid, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    assert proc.stdout.read() == "term\n"
    _, alive = psutil.wait_procs(kids, timeout=5)
    assert alive == []

