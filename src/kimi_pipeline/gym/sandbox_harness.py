"""The trusted harness that runs inside a sandboxed job, before and around the model's code.

``gym.sandbox_process`` starts every job as ``python -I -S -c BOOT`` (under ``unshare`` in
``namespaces`` mode): :data:`BOOT` reads a marshalled ``(code, params)`` pair from stdin and
executes the code, which is :data:`HARNESS_CODE`, compiled once here in the parent and never
written to a file, so nothing in the job's reach can replace it. It runs in a bare interpreter
(no site-packages, no ``kimi_pipeline``), hence one self-contained source string.

In order, the harness (see ``gym.sandbox`` for the threat model):

1. in ``namespaces`` mode, still root in the new namespaces, joins the job's cgroups, chroots
   into a minimal read-only tree with a fresh size-limited ``/tmp`` (``_isolate``), and stays
   as the namespace's pid 1 (``_init``), which reaps and finally SIGKILLs everything while a
   forked worker goes on;
2. in the worker: sets rlimits, drops to the job's own uid (or, in ``rlimits`` mode, refuses
   sockets through an audit hook) and closes stdin (``_confine``);
3. compiles the test units, keeps private references to what it uses, runs the solution,
   restores every module's attributes (``_snapshot``), then runs each unit: a value-checked
   assert sends its value as tagged JSON (``_canon``) for the parent to compare, an in-process
   one only its outcome; every record carries the run's nonce and goes to an inherited pipe.
"""

BOOT = (  # the whole of ``python -c``: read (code, params) from stdin, run code with P = params
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

HARNESS_CODE = compile(_HARNESS, "<sandbox-harness>", "exec")
"""The harness, compiled once per parent process; marshalled to every job with its params."""
