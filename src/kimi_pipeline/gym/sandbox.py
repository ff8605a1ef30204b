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
  ``no_new_privs`` and drops to a fresh uid/gid (:data:`SANDBOX_UID_BASE` + a counter), so
  ``RLIMIT_NPROC`` (ignored for root) bounds a fork bomb to that job alone and the job cannot
  signal or read another job or the host. When the worker exits, or the parent sends SIGTERM
  on a limit, init SIGKILLs every process of the namespace and reaps them itself, so
  ``setsid``/double-fork children die and no zombie reaches the host's init; if init does not
  finish, SIGKILL on it takes the whole PID namespace down;
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
"""

from __future__ import annotations

import ast
import atexit
import functools
import itertools
import json
import marshal
import math
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kimi_pipeline.procs import exec_with_parent_death

SANDBOX_UID_BASE = 2_000_000_000
"""First uid/gid of sandboxed jobs; each job gets the next one (2**24 of them, then reuse)."""

MAX_REPORT_BYTES = 8 << 20
"""Cap on the harness's report channel per job (value records are at most 1 MiB each)."""

_TAIL_BYTES = 4096
_NS_FLAGS = ("--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc")
_ENV_PATH = "/usr/local/bin:/usr/bin:/bin"


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


# --------------------------------------------------------------------------- harness (trusted)

_BOOT = (
    "import os,marshal\n"
    "b=[]\n"
    "while 1:\n"
    " c=os.read(0,1<<20)\n"
    " if not c:break\n"
    " b.append(c)\n"
    "c,p=marshal.loads(b''.join(b))\n"
    "g={'__builtins__':dict(vars(__builtins__)),'P':p}\n"
    "del b,p\n"
    "exec(c,g)\n"
)

_HARNESS = r'''
def _isolate(P, os, sys):
    """Root, inside fresh namespaces: chroot into a minimal read-only tree; return notes.

    The new root is a small tmpfs holding read-only binds of /usr, /bin, /lib*, /etc, /dev,
    the new /proc and the interpreter's standard library (at its own path), plus a fresh
    writable, size-limited tmpfs at /tmp (also /var/tmp and /dev/shm). The host's other
    directories (/work, /home, /root, /opt, ...) do not exist for the job.
    """
    import _ctypes
    notes = ["namespaces(mnt,net,pid,ipc)", "chroot", "uid"]
    joined = []
    for procs in P["cgroups"]:
        try:
            with open(procs, "w") as f:
                f.write("0")
            joined.append(procs.split("/")[4])
        except OSError:
            pass
    if joined:
        notes.append("cgroup(%s)" % ",".join(joined))
    lib = _ctypes.dlopen(None, 2)

    def fn(name):
        addr = _ctypes.dlsym(lib, name)
        return lambda *a: _ctypes.call_function(addr, a)

    mount, syscall, prctl = fn("mount"), fn("syscall"), fn("prctl")
    MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 2, 4, 4096, 16384

    def must(rc, what):
        if rc != 0:
            raise OSError("sandbox setup failed: " + what)

    def bind(src, dst):
        flags = MS_BIND if src in ("/dev", "/proc") else MS_BIND | MS_REC  # no /dev/pts etc.
        must(mount(src.encode(), dst.encode(), None, flags, None), "bind " + src)

    R = "/tmp"
    must(mount(b"tmpfs", R.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
         "root tmpfs")
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "dev", "proc"):
        src = "/" + name
        if os.path.islink(src):
            os.symlink(os.readlink(src), R + src)
        elif os.path.isdir(src):
            os.mkdir(R + src)
            bind(src, R + src)
    for p in sorted({p for p in sys.path if p and os.path.isdir(p)}):
        if not os.path.isdir(R + p):
            os.makedirs(R + p)
            bind(p, R + p)
    os.mkdir(R + "/tmp")
    os.makedirs(R + "/var")
    os.symlink("/tmp", R + "/var/tmp")
    attr = (1 | 2).to_bytes(8, "little") + bytes(24)  # MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID
    notes.append("ro-root" if syscall(442, -100, R.encode(), 0x8000, attr, 32) == 0 else "rw-root")
    opts = b"size=%dk,nr_inodes=4096,mode=1777" % (P["tmp_kb"],)
    must(mount(b"tmpfs", (R + "/tmp").encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), "tmpfs")
    if os.path.isdir(R + "/dev/shm"):
        must(mount((R + "/tmp").encode(), (R + "/dev/shm").encode(), None, MS_BIND, None), "shm")
    os.chroot(R)
    os.chdir("/")
    must(prctl(38, 1, 0, 0, 0), "no_new_privs")
    return ",".join(notes)


def _init(os, _signal, worker):
    """pid 1 of the job's namespace (root, runs no untrusted code): reap everything; when the
    worker exits or SIGTERM arrives, SIGKILL all the job's processes and reap them here, so no
    zombie is handed to the host's init."""
    status = [137]

    def wipe(*_):
        while True:
            try:
                os.kill(-1, 9)
            except OSError:
                pass
            try:
                os.wait()
            except ChildProcessError:
                os._exit(status[0])

    _signal.signal(15, wipe)
    while True:
        pid, st = os.wait()
        if pid == worker:
            code = os.waitstatus_to_exitcode(st)
            status[0] = code if code >= 0 else 128 - code
            wipe()


def _confine(P, os, sys):
    """The worker, before any untrusted code: rlimits, own uid (or no sockets), stdin closed."""
    import resource
    for name, value in P["rlimits"]:
        resource.setrlimit(getattr(resource, name), (value, value))
    if P["isolate"]:
        uid = P["uid"]
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    else:
        def no_network(event, args):
            if event.startswith("socket."):
                raise PermissionError("network is disabled in the sandbox")
        sys.addaudithook(no_network)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(P["workdir"])


def _canon(v, esc, depth, budget):
    """A test result as tagged JSON of built-in types (the parent compares it)."""
    budget[0] -= 1
    if depth > 60 or budget[0] < 0:
        raise ValueError("result too large or too deep")
    t = type(v)
    if v is None:
        return '["N"]'
    if t is bool:
        return '["B",true]' if v else '["B",false]'
    if issubclass(t, int):
        return '["I","%s"]' % hex(int.__index__(v))
    if issubclass(t, float):
        return '["F","%s"]' % float.__float__(v).hex()
    if issubclass(t, complex):
        c = complex.__complex__(v)
        return '["C","%s","%s"]' % (c.real.hex(), c.imag.hex())
    if issubclass(t, str):
        return '["S",%s]' % esc(str.__str__(v))
    if issubclass(t, (bytes, bytearray)):
        b = bytes.__bytes__(v) if issubclass(t, bytes) else bytes(bytearray(v))
        return '["Y","%s"]' % b.hex()
    d = depth + 1
    if issubclass(t, dict):
        return '["D"%s]' % "".join("," + _canon(k, esc, d, budget) + "," + _canon(x, esc, d, budget)
                                   for k, x in list(dict.items(v)))
    for base, tag in ((list, "L"), (tuple, "T"), (set, "E"), (frozenset, "Z")):
        if issubclass(t, base):
            return '["%s"%s]' % (tag, "".join("," + _canon(x, esc, d, budget)
                                              for x in list(base.__iter__(v))))
    index = getattr(t, "__index__", None)  # numpy integers and the like
    if index is not None:
        r = index(v)
        if issubclass(type(r), int):
            return '["I","%s"]' % hex(int.__index__(r))
    raise TypeError("result is not plain data")


def _snapshot(sys, names):
    """Import the modules the tests use, then remember the interpreter's module state."""
    for name in names:
        try:
            __import__(name)
        except BaseException:
            pass
    module = type(sys)
    mods = dict(sys.modules)
    dicts = [(m.__dict__, dict(m.__dict__)) for m in mods.values() if isinstance(m, module)]
    lists = [(x, list(x)) for x in (sys.path, sys.meta_path, sys.path_hooks)]
    cache = sys.path_importer_cache
    top = [n for n in names if "." not in n and isinstance(mods.get(n), module)]

    def restore(ns):
        """Undo the solution's rebinding of module attributes (shallow; new names stay)."""
        for d, snap in dicts:
            d.update(snap)
        for x, snap in lists:
            x[:] = snap
        sys.modules.update(mods)
        cache.clear()
        for n in top:
            ns[n] = mods[n]

    return restore


def _main(P):
    import os, sys, builtins, _json, _signal
    write, exit_ = os.write, os._exit
    nonce, chan = P["nonce"], P["chan"]
    settrace, setprofile = sys.settrace, sys.setprofile
    esc = _json.encode_basestring_ascii
    streams = [(type(s).flush, s) for s in (sys.stdout, sys.stderr)]

    def emit(kind, idx=-1, payload=""):
        data = ("%s %s %d %s\n" % (nonce, kind, idx, payload)).encode("ascii", "backslashreplace")
        view = memoryview(data)
        while view:
            view = view[write(chan, view):]

    def finish(n):
        for flush, s in streams:
            try:
                flush(s)
            except BaseException:
                pass
        emit("done", n)
        exit_(0)

    def ename(e, what):
        try:
            name = str(type(e).__name__)[:60].replace(" ", "_") or "?"
            write(2, ("\n[sandbox] %s raised %s\n" % (what, name)).encode("ascii", "replace"))
        except BaseException:
            name = "?"
        return name

    notes = "rlimits"
    if P["isolate"]:
        notes = _isolate(P, os, sys)
        _signal.signal(15, lambda *_: exit_(143))
        worker = os.fork()
        if worker:
            _init(os, _signal, worker)
        _signal.signal(15, _signal.SIG_DFL)
    _confine(P, os, sys)
    units = [(kind, compile(src, "<test %d>" % i, "eval" if kind == "value" else "exec"))
             for i, (kind, src) in enumerate(P["units"])]
    safe_builtins = dict(vars(builtins))
    emit("ready", 0, notes)
    try:
        code = compile(P["solution"], "<solution>", "exec")
    except BaseException as e:
        emit("syntax", 0, ename(e, "compiling the solution"))
        finish(0)
    mod = type(sys)("solution")
    sys.modules["solution"] = mod
    del sys.settrace, sys.setprofile
    restore = _snapshot(sys, P["modules"])
    del P
    try:
        exec(code, mod.__dict__)
    except BaseException as e:
        emit("solerr", 0, ename(e, "the solution"))
        finish(0)
    ns = dict(mod.__dict__)
    restore(ns)
    ns["__builtins__"] = safe_builtins
    ns["__name__"] = "__tests__"
    for i, (kind, unit) in enumerate(units):
        settrace(None)
        setprofile(None)
        try:
            if kind == "value":
                text = _canon(eval(unit, ns), esc, 0, [200000])
                if len(text) > 1 << 20:
                    raise ValueError("result too large")
                emit("val", i, text)
            else:
                exec(unit, ns)
                emit("ok", i)
        except BaseException as e:
            emit("fail", i, ename(e, "test unit %d" % i))
    finish(len(units))


_main(globals().pop("P"))
'''

_HARNESS_CODE = compile(_HARNESS, "<sandbox-harness>", "exec")


# --------------------------------------------------------------------------- test planning


@dataclass(frozen=True)
class _Plan:
    """Units for the harness and, per unit, how the parent judges it.

    ``checks[i]`` is ``None`` for setup statements, ``("ok", None)`` for in-process asserts and
    ``("eq"|"ne", expected)`` for value-checked asserts whose expected value stays here.
    """

    units: tuple[tuple[str, str], ...]
    checks: tuple[tuple[str, Any] | None, ...]
    modules: tuple[str, ...] = ()

    @property
    def n_tests(self) -> int:
        return sum(c is not None for c in self.checks)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _value_check(test: ast.expr) -> tuple[ast.expr, str, Any] | None:
    """``<expr> ==/!= <literal>`` (either order) -> (expr, op, expected), else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    op = {ast.Eq: "eq", ast.NotEq: "ne"}.get(type(test.ops[0]))
    if op is None:
        return None
    left, right = test.left, test.comparators[0]
    for expr, other in ((left, right), (right, left)):
        ok, expected = _literal(other)
        if ok:
            return expr, op, expected
    return None


def _liftable_check(tree: ast.Module) -> tuple[str, list[ast.Assert]] | None:
    """A top-level ``def check(x)`` whose body is only asserts -> (param name, asserts)."""
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "check"):
            continue
        a = node.args
        if (node.decorator_list or len(a.args) != 1 or a.posonlyargs or a.vararg or a.kwarg
                or a.kwonlyargs or a.defaults):
            return None
        asserts = [s for s in node.body if isinstance(s, ast.Assert)]
        rest = [s for s in node.body if not isinstance(s, (ast.Assert, ast.Pass))
                and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        return (a.args[0].arg, asserts) if asserts and not rest else None
    return None


def _test_modules(tree: ast.Module) -> tuple[str, ...]:
    """Modules the tests import, or use by a standard-library name (``math.isclose``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in sys.stdlib_module_names):
            names.add(node.value.id)
    return tuple(sorted(names))


def _calls_check(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
               and isinstance(n.value.func, ast.Name) and n.value.func.id == "check"
               for n in tree.body)


@functools.lru_cache(maxsize=1024)
def _plan(tests: str, entry_point: str | None) -> _Plan:
    """Split ``tests`` into units; raises ValueError for unusable tests."""
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point {entry_point!r} is not an identifier")
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"tests do not parse: {e}") from None
    units: list[tuple[str, str]] = []
    checks: list[tuple[str, Any] | None] = []

    def add(kind: str, src: str, check: tuple[str, Any] | None) -> None:
        units.append((kind, src))
        checks.append(check)

    def add_assert(node: ast.Assert) -> None:
        vc = _value_check(node.test)
        if vc is None:
            add("exec", ast.unparse(node), ("ok", None))
        else:
            add("value", ast.unparse(vc[0]), (vc[1], vc[2]))

    for node in tree.body:
        if isinstance(node, ast.Assert):
            add_assert(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            add("exec", ast.unparse(node), ("ok", None))
        else:
            add("setup", ast.unparse(node), None)
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    if entry_point and defines_check and not _calls_check(tree):
        lifted = _liftable_check(tree)
        if lifted is None:
            add("exec", f"check({entry_point})", ("ok", None))
        else:
            add("setup", f"{lifted[0]} = {entry_point}", None)
            for node in lifted[1]:
                add_assert(node)
    plan = _Plan(tuple(units), tuple(checks), _test_modules(tree))
    if plan.n_tests == 0:
        raise ValueError("tests contain no assertions")
    return plan


# --------------------------------------------------------------------------- judging


def _decode(node: Any, depth: int = 0) -> Any:
    """Tagged JSON from the harness -> built-in value; raises on anything malformed."""
    if not isinstance(node, list) or not node or depth > 100:
        raise ValueError("bad value record")
    tag, args = node[0], node[1:]
    scalar = {
        "N": lambda: None,
        "B": lambda: args[0] if isinstance(args[0], bool) else _bad(),
        "I": lambda: int(args[0], 16),
        "F": lambda: float.fromhex(args[0]),
        "C": lambda: complex(float.fromhex(args[0]), float.fromhex(args[1])),
        "S": lambda: args[0] if isinstance(args[0], str) else _bad(),
        "Y": lambda: bytes.fromhex(args[0]),
    }
    if tag in scalar:
        return scalar[tag]()
    items = [_decode(a, depth + 1) for a in args]
    containers = {"L": list, "T": tuple, "E": set, "Z": frozenset}
    if tag in containers:
        return containers[tag](items)
    if tag == "D" and len(items) % 2 == 0:
        return dict(zip(items[::2], items[1::2]))
    raise ValueError("bad value record")


def _bad() -> Any:
    raise ValueError("bad value record")


def _unit_ok(kind: str, payload: str, check: tuple[str, Any] | None) -> bool:
    if check is None or check[0] == "ok":
        return kind == "ok"
    if kind != "val":
        return False
    try:
        equal = _decode(json.loads(payload)) == check[1]
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError, MemoryError):
        return False  # malformed or hostile payload: the unit simply fails
    return equal if check[0] == "eq" else not equal


def _records(chan: bytes, nonce: str) -> list[tuple[str, int, str]]:
    """Lines of the report channel that carry this run's nonce."""
    prefix = nonce.encode() + b" "
    out = []
    for line in chan.split(b"\n"):
        if not line.startswith(prefix):
            continue
        parts = line[len(prefix):].split(b" ", 2)
        if len(parts) != 3:
            continue
        try:
            out.append((parts[0].decode("ascii"), int(parts[1]), parts[2].decode("ascii")))
        except ValueError:
            continue
    return out


@dataclass
class _Raw:
    """What came back from one process."""

    nonce: str
    chan: bytes = b""
    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = None
    cpu_s: float = 0.0
    limit: str | None = None
    isolation: str = ""
    error: str | None = None


def _reason(raw: _Raw, recs: list[tuple[str, int, str]], plan: _Plan,
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


def _judge(raw: _Raw, plan: _Plan, limits: SandboxLimits, t0: float) -> SandboxVerdict:
    recs = _records(raw.chan, raw.nonce)
    results: dict[int, bool] = {}
    duplicate = False
    for kind, idx, payload in recs:
        if kind in ("ok", "fail", "val"):
            if not 0 <= idx < len(plan.units) or idx in results:
                duplicate = True
                continue
            results[idx] = _unit_ok(kind, payload, plan.checks[idx])
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


# --------------------------------------------------------------------------- processes


_UID_SPAN = 1 << 24
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _next_uid() -> int:
    """A uid/gid for one job; consecutive jobs never share one (until 2**24 jobs later)."""
    with _uid_lock:
        return SANDBOX_UID_BASE + next(_uid_counter) % _UID_SPAN


@functools.lru_cache(maxsize=1)
def _unshare() -> str | None:
    return shutil.which("unshare")


@functools.lru_cache(maxsize=1)
def _namespaces_available() -> bool:
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
def _cgroup_bases() -> dict[str, str]:
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
    atexit.register(_remove_cgroups, list(bases.values()))  # if no other process uses them
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
                _remove_cgroups([f"{base}/{name}"])


_stale_cgroups: list[str] = []
_stale_lock = threading.Lock()


def _make_cgroups(uid: int, limits: SandboxLimits) -> list[str]:
    """Per-job cgroups: one CPU, and memory for the job and its tmpfs together."""
    values = {
        "cpu": {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"},
        "memory": {"memory.limit_in_bytes": str((limits.memory_mb + limits.tmp_mb + 64) << 20)},
    }
    made = []
    for ctl, base in _cgroup_bases().items():
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


def _remove_cgroups(dirs: list[str]) -> None:
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


def _mode(limits: SandboxLimits) -> str:
    if limits.isolation == "auto":
        return "namespaces" if _namespaces_available() else "rlimits"
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
                 limits: SandboxLimits) -> None:
        self.proc, self.limits = proc, limits
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
            if self.out.total + self.err.total > self.limits.max_output_bytes:
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


def _payload(solution: str, plan: _Plan, limits: SandboxLimits, uid: int, nonce: str,
             chan: int, isolate: bool, workdir: str, cgroups: list[str]) -> bytes:
    params = {
        "nonce": nonce, "chan": chan, "isolate": isolate, "uid": uid, "workdir": workdir,
        "cgroups": [f"{d}/cgroup.procs" for d in cgroups],
        "tmp_kb": limits.tmp_mb << 10, "rlimits": _rlimits(limits, isolate),
        "solution": solution, "units": list(plan.units), "modules": list(plan.modules),
    }
    return marshal.dumps((_HARNESS_CODE, params))


def _spawn(isolate: bool, workdir: str, chan_w: int) -> subprocess.Popen:
    python = [sys.executable, "-I", "-S", "-c", _BOOT]
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


def _execute(solution: str, plan: _Plan, limits: SandboxLimits, uid: int, isolate: bool,
             workdir: str, cgroups: list[str]) -> _Raw:
    raw = _Raw(nonce=secrets.token_hex(16))
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
        payload = _payload(solution, plan, limits, uid, raw.nonce, chan_w, isolate, workdir,
                           cgroups)
        pump = _Pump(proc, chan_r, payload, limits)
        exited = pump.run(pidfd, time.perf_counter() + limits.wall_seconds)
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
        plan = _plan(tests, entry_point)
    except ValueError as e:
        return SandboxVerdict(False, f"bad_tests: {e}", 0, 0, time.perf_counter() - t0, None,
                              "", "", mode)
    if mode == "namespaces" and not _namespaces_available():
        return SandboxVerdict(False, "sandbox_error: namespaces unavailable (needs root and "
                              "util-linux unshare)", 0, 0, time.perf_counter() - t0, None,
                              "", "", mode)
    isolate = mode == "namespaces"
    if isolate:
        uid = _next_uid()
        cgroups = _make_cgroups(uid, limits) if limits.cgroups else []
        try:
            raw = _execute(solution, plan, limits, uid, True, "/tmp", cgroups)
        finally:
            _remove_cgroups(cgroups)
    else:
        workdir = tempfile.mkdtemp(prefix="kimi-sandbox-")
        try:
            raw = _execute(solution, plan, limits, 0, False, workdir, [])
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if not raw.isolation:
        raw.isolation = mode
    return _judge(raw, plan, limits, t0)


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


__all__: Sequence[str] = ["SANDBOX_UID_BASE", "SandboxJob", "SandboxLimits", "SandboxVerdict",
                          "run_many", "run_tests"]
