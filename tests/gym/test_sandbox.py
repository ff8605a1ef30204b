"""The code sandbox: correct code passes, and hostile code scores 0 and is contained.

Most hostile cases need the namespace isolation (root + util-linux ``unshare``); they are
skipped where it is unavailable rather than run unconfined.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from kimi_pipeline.gym import sandbox_process
from kimi_pipeline.gym.sandbox import SandboxJob, SandboxLimits, run_many, run_tests
from kimi_pipeline.gym.sandbox_process import SANDBOX_UID_BASE

ISOLATED = sandbox_process.namespaces_available()
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs root and util-linux unshare")
FAST = SandboxLimits(cpu_seconds=1, wall_seconds=2.0)
REPO = Path(__file__).resolve().parents[2]

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = "assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(2, 2) > 3\n"

HUMANEVAL_SOLUTION = '''
from typing import List

def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for j, b in enumerate(numbers):
            if i != j and abs(a - b) < threshold:
                return True
    return False
'''
HUMANEVAL_TESTS = '''
METADATA = {"author": "jt", "dataset": "test"}


def check(candidate):
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True
    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False
    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True
    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.8) == False
    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 1.0) == True
    assert candidate([1.1, 2.2, 3.1, 4.1, 5.1], 0.5) == False
'''
FORK_AND_ALLOCATE = (  # 12 x 400 MB: within RLIMIT_AS each, over the job's memory cgroup
    "import os, time\nfor _ in range(12):\n    if os.fork() == 0:\n"
    "        x = bytearray(400 << 20)\n        time.sleep(3)\n        os._exit(0)\n"
    "time.sleep(3)\n"
)
FORK_BOMB = (
    "import os\nwhile True:\n"
    "    try:\n        os.fork()\n    except OSError:\n        pass\n"
)
# a check() with a loop cannot be lifted into value checks: it runs in-process
LOOP_CHECK = '''
def check(candidate):
    for a in range(3):
        assert candidate(a, 1) == a + 1
    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9
'''


def sandbox_processes() -> list[int]:
    """Pids of live processes owned by a sandbox uid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        if any(int(u) >= SANDBOX_UID_BASE for u in uids):
            pids.append(int(entry))
    return pids


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def assert_scores_zero(verdict) -> None:
    assert not verdict.passed and verdict.reason != "passed", verdict


# --------------------------------------------------------------------------- honest code


def test_correct_solution_passes():
    v = run_tests(ADD, ADD_TESTS)
    assert v.passed and v.reason == "passed", v
    assert (v.tests_run, v.tests_passed, v.exit_code) == (3, 3, 0)
    if ISOLATED:
        assert v.isolation.startswith("namespaces") and "ro-root" in v.isolation
        if sandbox_process.cgroup_bases():
            assert "cgroup(" in v.isolation and "memory" in v.isolation


def test_wrong_solution_fails():
    v = run_tests("def add(a, b):\n    return a - b\n", ADD_TESTS)
    assert not v.passed and v.reason == "failed"
    assert (v.tests_run, v.tests_passed) == (3, 0)
    half = run_tests("def add(a, b):\n    return 3\n", ADD_TESTS)
    assert not half.passed and (half.tests_run, half.tests_passed) == (3, 1)


def test_syntax_error():
    v = run_tests("def add(a, b) return a + b", ADD_TESTS)
    assert not v.passed and v.reason == "syntax_error" and v.tests_run == 0


def test_humaneval_style():
    v = run_tests(HUMANEVAL_SOLUTION, HUMANEVAL_TESTS, entry_point="has_close_elements")
    assert v.passed and v.tests_run == 6, v
    wrong = HUMANEVAL_SOLUTION.replace("< threshold", "> threshold")
    v = run_tests(wrong, HUMANEVAL_TESTS, entry_point="has_close_elements")
    assert not v.passed and v.tests_run == 6 and v.tests_passed < 6


def test_humaneval_check_with_loop_runs_in_process():
    assert run_tests(ADD, LOOP_CHECK, entry_point="add").passed
    assert not run_tests("def add(a, b):\n    return a * b\n", LOOP_CHECK, entry_point="add").passed


def test_mbpp_style():
    solution = (
        "import re\n"
        "def text_match_wordz(text):\n"
        "    return 'Found a match!' if re.search(r'\\w*z.\\w*', text) else 'Not matched!'\n"
    )
    tests = (
        'assert text_match_wordz("pythonz.")==("Found a match!")\n'
        'assert text_match_wordz("xyz.")==("Found a match!")\n'
        'assert text_match_wordz("  lang  .")==("Not matched!")\n'
    )
    v = run_tests(solution, tests)
    assert v.passed and v.tests_run == 3, v


def test_printing_and_plain_data_results():
    solution = (
        "import collections\n"
        "def f(x):\n"
        "    print('debug', x)\n"
        "    return collections.OrderedDict(a=[x, (x, {x})], b=float('inf'))\n"
    )
    v = run_tests(solution, "assert f(1) == {'a': [1, (1, {1})], 'b': 1e999}\n")
    assert v.passed, v
    assert "debug 1" in v.stdout_tail


def test_bad_tests_are_reported():
    assert run_tests(ADD, "assert add(1,").reason.startswith("bad_tests")
    assert run_tests(ADD, "x = 1\n").reason.startswith("bad_tests")


# --------------------------------------------------------------------------- resource abuse


def test_cpu_loop_hits_cpu_limit():
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=10)  # roomy: the machine may be busy
    v = run_tests("while True:\n    pass\n", ADD_TESTS, limits)
    assert not v.passed and v.reason == "cpu_limit", v
    assert v.wall_s < 9


def test_sleep_hits_wall_timeout():
    v = run_tests("import time\ntime.sleep(60)\n", ADD_TESTS, SandboxLimits(wall_seconds=0.8))
    assert not v.passed and v.reason == "timeout", v
    assert v.wall_s < 3.0


@needs_isolation
def test_fork_bomb_is_contained():
    before = len(os.listdir("/proc"))
    bomb = FORK_BOMB
    v = run_tests(bomb, ADD_TESTS, SandboxLimits(cpu_seconds=1, wall_seconds=1.5))
    assert not v.passed and v.reason in ("timeout", "cpu_limit"), v
    assert sandbox_processes() == []
    assert len(os.listdir("/proc")) < before + 10
    for base in sandbox_process.cgroup_bases().values():  # per-job cgroups are gone too
        assert not [d for d in os.listdir(base) if d.startswith("job-")]
    assert run_tests(ADD, ADD_TESTS).passed  # the next job can still start processes


def test_memory_bomb():
    v = run_tests("x = bytearray(8 << 30)\n" + ADD, ADD_TESTS)
    assert not v.passed and v.reason == "solution_error", v
    grow = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))\n"
    v = run_tests(grow, ADD_TESTS, SandboxLimits(memory_mb=256))
    assert not v.passed and v.reason == "solution_error" and "MemoryError" in v.stderr_tail


def test_huge_output_is_cut():
    t0 = time.perf_counter()
    v = run_tests("print('x' * 100_000_000)\n" + ADD, ADD_TESTS)
    assert not v.passed and v.reason == "output_limit", v
    assert len(v.stdout_tail) <= 4096 and time.perf_counter() - t0 < 5


# --------------------------------------------------------------------------- escapes


@needs_isolation
def test_writes_outside_do_not_persist():
    tag = uuid.uuid4().hex
    targets = [f"/tmp/escape_{tag}", f"/var/tmp/escape_{tag}", f"/dev/shm/escape_{tag}",
               f"/root/escape_{tag}", str(REPO / f"escape_{tag}")]
    solution = (
        "import os\n"
        f"for p in {targets!r} + [os.path.expanduser('~/escape_{tag}')]:\n"
        "    try:\n"
        "        open(p, 'w').write('pwned')\n"
        "    except OSError:\n"
        "        pass\n" + ADD
    )
    v = run_tests(solution, ADD_TESTS)
    assert v.passed, v  # still a correct solution; its writes just went nowhere
    for p in [*targets, os.path.expanduser(f"~/escape_{tag}")]:
        assert not os.path.exists(p), p


@needs_isolation
def test_host_files_are_invisible():
    """Datasets, code and home directories on the host cannot be read (no answer peeking)."""
    hidden = [str(REPO), "/home", "/work", "/opt", "/srv"]
    solution = (
        "import os\n"
        "def visible():\n"
        f"    return [p for p in {hidden!r} if os.path.exists(p)]\n"
        "def extra_in_root_home():\n"
        "    names = os.listdir('/root') if os.path.isdir('/root') else []\n"
        "    return [n for n in names if n != '.pyenv']\n"  # only the stdlib path
        "def pid1_is_host_init():\n"
        "    return b'process_api' in open('/proc/1/cmdline', 'rb').read()\n"
    )
    tests = ("assert visible() == []\nassert extra_in_root_home() == []\n"
             "assert pid1_is_host_init() == False\n")
    v = run_tests(solution, tests)
    assert v.passed, v


def test_network_is_unreachable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    solution = (
        "import socket\n"
        "def connected():\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n"
        "        return True\n"
        "    except Exception:\n"
        "        return False\n"
    )
    v = run_tests(solution, "assert connected() == True\n")
    assert not v.passed and v.tests_run == 1, v
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


def test_rlimits_mode_blocks_sockets_too():
    v = run_tests("import socket\ns = socket.socket()\n", ADD_TESTS,
                  SandboxLimits(isolation="rlimits"))
    assert v.reason == "solution_error" and v.isolation == "rlimits", v
    assert run_tests(ADD, ADD_TESTS, SandboxLimits(isolation="rlimits")).passed


@needs_isolation  # in rlimits mode the job runs as our user and could kill us
def test_killing_the_parent_fails_quietly():
    me = os.getpid()
    solution = (
        "import os, signal\n"
        f"for pid in (os.getppid(), {me}, -{os.getpgrp()}, 1, -1):\n"
        "    try:\n"
        "        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n"
        "        pass\n" + ADD
    )
    v = run_tests(solution, ADD_TESTS)
    assert os.getpid() == me  # still here
    assert v.passed, v


@needs_isolation
def test_detached_child_dies_with_the_job():
    tag = uuid.uuid4().hex
    marker = f"31.{int(tag[:6], 16)}"
    solution = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        f"            os.execv('/bin/sleep', ['sleep', '{marker}'])\n"
        "        time.sleep(0.6)\n"
        f"        open('/tmp/escape_{tag}', 'w').write('late')\n"
        f"        open('{REPO}/escape_{tag}', 'w').write('late')\n"
        "    os._exit(0)\n" + ADD
    )
    v = run_tests(solution, ADD_TESTS)
    assert v.passed, v
    assert processes_with(marker) == [] and sandbox_processes() == []
    time.sleep(1.0)
    assert not os.path.exists(f"/tmp/escape_{tag}")
    assert not (REPO / f"escape_{tag}").exists()
    assert processes_with(marker) == []


# --------------------------------------------------------------------------- forged verdicts


def test_early_exits_score_zero():
    for code in ("import sys\nsys.exit(0)\n", "raise SystemExit(0)\n"):
        v = run_tests(code + ADD, ADD_TESTS)
        assert not v.passed and v.reason == "solution_error", v
    v = run_tests("import os\nos._exit(0)\n" + ADD, ADD_TESTS)
    assert not v.passed and v.reason == "crashed" and v.tests_run == 0, v
    v = run_tests("def add(a, b):\n    raise SystemExit(0)\n", ADD_TESTS)
    assert not v.passed and v.tests_passed == 0, v
    v = run_tests("import os\ndef add(a, b):\n    os._exit(0)\n", ADD_TESTS)
    assert not v.passed and v.reason == "crashed", v


def test_patched_assert_and_builtins_score_zero():
    wrong = "def add(a, b):\n    return 0\n"
    patches = [
        "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n",
        "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.all = lambda x: True\n",
        "import builtins\nbuiltins.check = lambda c: None\ndef check(candidate):\n    pass\n",
    ]
    tests = "assert abs(add(0.1, 0.2) - 0.3) < 1e-9\nassert all([add(1, 1) == 2])\n"
    for patch in patches:
        assert_scores_zero(run_tests(patch + wrong, tests))
        assert_scores_zero(run_tests(patch + wrong, LOOP_CHECK, entry_point="add"))


PATCHED_MODULES = [  # (patch, tests that the patch alone would make pass in-process)
    ("import math\nmath.isclose = lambda *a, **k: True\n",
     "import math\nassert math.isclose(add(0.1, 0.2), 0.5)\n"),
    ("import math\nmath.isclose = lambda *a, **k: True\n",
     "assert math.isclose(add(0.1, 0.2), 0.5)\n"),
    ("import sys\nsys.modules['math'] = type('M', (), {'isclose': lambda *a, **k: True})\n",
     "import math\nassert math.isclose(add(0.1, 0.2), 0.5)\n"),
    ("math = type('M', (), {'isclose': staticmethod(lambda *a, **k: True)})()\n",
     "assert math.isclose(add(0.1, 0.2), 0.5)\n"),
    ("import os\nos.path.isfile = lambda p: True\n",
     "import os\nassert os.path.isfile('/nonexistent')\n"),
]


@pytest.mark.parametrize(("patch", "tests"), PATCHED_MODULES)
def test_patched_test_modules_score_zero(patch, tests):
    assert_scores_zero(run_tests(patch + ADD, tests))


def test_always_equal_result_scores_zero():
    cheat = (
        "class Any:\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    def __hash__(self): return 0\n"
        "def add(a, b):\n    return Any()\n"
    )
    assert_scores_zero(run_tests(cheat, "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"))
    assert_scores_zero(run_tests(cheat, HUMANEVAL_TESTS, entry_point="add"))
    sneaky_int = "class I(int):\n    def __eq__(self, o): return True\n" \
                 "def add(a, b):\n    return I(0)\n"
    assert_scores_zero(run_tests(sneaky_int, "assert add(1, 2) == 3\n"))


def test_settrace_jump_scores_zero():
    cheat = (
        "import sys, threading\n"
        "def tracer(frame, event, arg):\n"
        "    if event == 'line' and frame.f_code.co_name == 'check':\n"
        "        frame.f_lineno = frame.f_code.co_firstlineno + 5\n"
        "    return tracer\n"
        "def add(a, b):\n"
        "    f = sys._getframe(1)\n"
        "    f.f_trace, f.f_trace_lines = tracer, True\n"
        "    for hook in (getattr(sys, 'settrace', None), getattr(threading, 'settrace', None)):\n"
        "        try:\n"
        "            hook(tracer)\n"
        "        except Exception:\n"
        "            pass\n"
        "    return 0\n"
    )
    assert_scores_zero(run_tests(cheat, LOOP_CHECK, entry_point="add"))
    assert_scores_zero(run_tests(cheat, ADD_TESTS))


def test_fake_success_output_scores_zero():
    fake = (
        "import os, sys\n"
        "print('all tests passed'); print('OK'); print('PASSED 3/3')\n"
        "lines = ''.join(f'{n} {k} {i} x\\n' for n in ('0' * 32, 'f' * 32)\n"
        "                for k in ('ready', 'ok', 'val', 'done') for i in range(4))\n"
        "for fd in range(64):\n"
        "    try:\n"
        "        os.write(fd, lines.encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "def add(a, b):\n    return 0\n"
    )
    v = run_tests(fake, ADD_TESTS)
    assert_scores_zero(v)
    assert "all tests passed" in v.stdout_tail


def test_harness_introspection_cannot_forge_value_checks():
    """Even with the harness's own reporting function the right values are still needed."""
    attack = (
        "import gc, os\n"
        "for obj in gc.get_objects():\n"
        "    if getattr(obj, '__name__', '') == 'emit' and hasattr(obj, '__code__'):\n"
        "        print('found the harness reporter', flush=True)\n"
        "        for i in range(4):\n"
        "            obj('ok', i)\n"
        "            obj('val', i, '[\"I\",\"0x3\"]')\n"
        "        obj('done', 2)\n"
        "        os._exit(0)\n"
        "def add(a, b):\n    return 0\n"
    )
    v = run_tests(attack, "assert add(1, 2) == 4\nassert add(2, 2) == 5\n")
    assert_scores_zero(v)
    assert "found the harness reporter" in v.stdout_tail  # the attack really ran


# --------------------------------------------------------------------------- batches


def test_hostile_jobs_do_not_change_other_rewards():
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=1.5)
    hostile = [
        "while True:\n    pass\n",
        "print('y' * 10_000_000)\n",
        "import os\nos._exit(0)\n",
        "import builtins\nbuiltins.abs = lambda x: 0\nadd = lambda a, b: 0\n",
        "x = bytearray(8 << 30)\n",
    ]
    if ISOLATED:
        hostile += [FORK_BOMB, FORK_AND_ALLOCATE]
    jobs: list = []
    for h in hostile:
        jobs.append(SandboxJob(ADD, ADD_TESTS))
        jobs.append(SandboxJob(ADD + h, ADD_TESTS, limits=limits))
    jobs.append({"solution": HUMANEVAL_SOLUTION, "tests": HUMANEVAL_TESTS,
                 "entry_point": "has_close_elements"})
    verdicts = run_many(jobs, max_workers=2)
    assert [v.passed for v in verdicts] == [True, False] * len(hostile) + [True], verdicts
    if ISOLATED:
        assert sandbox_processes() == []


def test_run_many_is_concurrent_and_ordered():
    jobs = [SandboxJob(f"def add(a, b):\n    return a + b + {k % 2}\n", ADD_TESTS)
            for k in range(8)]
    verdicts = run_many(jobs, max_workers=2)
    assert [v.passed for v in verdicts] == [k % 2 == 0 for k in range(8)]


@needs_isolation
def test_threads_share_nothing():
    """Concurrent jobs get distinct nonces, uids and directories."""
    solution = ("import os\nopen('/tmp/mine', 'a').write('x')\n"
                "def size():\n    return os.path.getsize('/tmp/mine')\n")
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        run_tests(solution, "assert size() == 1\n"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(v.passed for v in results), results
