"""A killed run leaves nothing behind (issue 16, item 3).

SIGKILL of a ``kedro run`` used to leave the synthesis pool workers running (they went on
writing shards) and its MLflow run ``RUNNING`` forever. Here real runs are killed: with SIGKILL
no worker of synthesis, the SFT launcher or the gym sandbox outlives its parent, and the next
run closes the dead run as ``KILLED``; SIGTERM and SIGINT end the run ``KILLED`` themselves, a
failing node ends it ``FAILED``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import psutil
import pytest

from kimi_pipeline.hooks import close_dead_runs, owner_tags
from tests.conftest import REPO, run_kedro

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")]

KEDRO = str(Path(sys.executable).with_name("kedro"))
# enough episodes that two workers are still busy for several seconds after the first shard
BUSY = "synthesis.n_agents=300,synthesis.rollout.workers=2,synthesis.rollout.shard_size=20"


def kedro_env(root: Path) -> dict[str, str]:
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}


@pytest.fixture(scope="module")
def made_tools(tmp_path_factory) -> Path:
    """A project whose tool repository exists (one real ``kedro run``), copied by each test."""
    root = tmp_path_factory.mktemp("made") / "project"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(REPO / "data" / "01_raw", root / "data" / "01_raw")
    subprocess.run([KEDRO, "run", "--pipeline=tool_repo", "--env=test"], cwd=root,
                   env=kedro_env(root), check=True, capture_output=True)
    return root


@pytest.fixture
def project(made_tools, tmp_path, monkeypatch) -> Path:
    """A fresh copy of ``made_tools`` with an empty MLflow store, as the working directory."""
    root = tmp_path / "project"
    shutil.copytree(made_tools, root, ignore=shutil.ignore_patterns("mlflow.db", "mlruns"))
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


def start_synthesis(root: Path) -> subprocess.Popen:
    """``kedro run --pipeline=synthesis`` in the background; returns once workers are busy (the
    first shard is written)."""
    log = (root / "kedro.log").open("w")
    proc = subprocess.Popen([KEDRO, "run", "--pipeline=synthesis", "--env=test",
                             f"--params={BUSY}"], cwd=root, env=kedro_env(root), stdout=log,
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not shards(root):
        assert proc.poll() is None, (root / "kedro.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no shard written in 90 s"
        time.sleep(0.1)
    return proc


def shards(root: Path) -> list[Path]:
    return sorted((root / "data/02_intermediate/synthesis_shards").glob("*/shard-*.parquet"))


def pool_workers(pid: int) -> list[psutil.Process]:
    kids = psutil.Process(pid).children(recursive=True)
    return [k for k in kids if "--multiprocessing-fork" in k.cmdline()]


def survivors(procs: list[psutil.Process], timeout: float = 5.0) -> list[psutil.Process]:
    """Those of ``procs`` still running after ``timeout`` (killed then, not to leak); a zombie
    that init has not reaped yet is dead."""
    deadline = time.monotonic() + timeout
    while (alive := [p for p in procs if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return alive


def running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def runs(root: Path) -> list:
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("kimi_pipeline")
    return client.search_runs([experiment.experiment_id])


def run_of(root: Path, pid: int):
    [run] = [r for r in runs(root) if r.data.tags.get("kimi.pid") == str(pid)]
    return run


def test_sigkill_of_kedro_kills_the_synthesis_workers_and_the_next_run_closes_its_run(project):
    proc = start_synthesis(project)
    workers = pool_workers(proc.pid)
    assert len(workers) == 2
    everything = psutil.Process(proc.pid).children(recursive=True)  # the resource tracker too
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert survivors(everything) == []
    written = shards(project)
    time.sleep(1)
    assert shards(project) == written, "no shard is written after the run died"
    assert not (project / "data/03_primary/trajectories").exists(), "killed while playing"
    dead = run_of(project, proc.pid)
    assert dead.info.status == "RUNNING"

    run_kedro(project, "synthesis")  # the next run, of any pipeline of the experiment
    dead = run_of(project, proc.pid)
    assert dead.info.status == "KILLED"
    assert dead.data.tags["kimi.closed_by"].startswith("a later run (")
    assert dead.data.tags["kimi.closed_by"].endswith("its process had died (SIGKILL?)")
    assert run_of(project, os.getpid()).info.status == "FINISHED"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_sigterm_or_sigint_of_kedro_ends_its_run_killed(project, sig):
    proc = start_synthesis(project)
    everything = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(sig)
    code = proc.wait(60)  # SIGINT lets the shards in flight finish
    assert code == -sig if sig == signal.SIGTERM else code != 0
    assert survivors(everything) == []
    run = run_of(project, proc.pid)
    assert run.info.status == "KILLED"
    assert run.data.tags["kimi.killed_by"] == sig.name


def test_a_failing_node_ends_the_run_failed(project):
    for path in (project / "data/03_primary/tool_repository.parquet").rglob("*"):
        if path.is_file():
            path.write_bytes(b"not parquet")
    with pytest.raises(Exception):
        run_kedro(project, "synthesis")
    assert run_of(project, os.getpid()).info.status == "FAILED"


def test_only_runs_of_dead_processes_on_this_host_are_closed(tmp_path):
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("e", artifact_location=str(tmp_path / "mlruns"))
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    me = owner_tags()
    tags = {
        "dead": {**me, "kimi.pid": str(gone.pid)},
        "reused_pid": {**me, "kimi.pid_started": "1.0"},
        "alive": me,
        "other_host": {**me, "kimi.pid": str(gone.pid), "kimi.host": "elsewhere"},
        "untagged": {},
    }
    ids = {name: client.create_run(experiment, tags=t, run_name=name).info.run_id
           for name, t in tags.items()}
    current = client.create_run(experiment).info.run_id

    closed = close_dead_runs(client, experiment, current)
    assert sorted(closed) == sorted([ids["dead"], ids["reused_pid"]])
    status = {name: client.get_run(i).info.status for name, i in ids.items()}
    assert status == {"dead": "KILLED", "reused_pid": "KILLED", "alive": "RUNNING",
                      "other_host": "RUNNING", "untagged": "RUNNING"}
    note = client.get_run(ids["dead"]).data.tags["kimi.closed_by"]
    assert note == f"a later run ({current}): its process had died (SIGKILL?)"


def start_and_kill(code: str, args: list[str], ready) -> tuple[int, list[psutil.Process]]:
    """Run ``code`` in a process, wait until ``ready(descendants)``, SIGKILL it; return its pid
    and the descendants it had that are still alive a few seconds later."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not ready(kids := psutil.Process(proc.pid).children(recursive=True)):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "the workers did not start in 90 s"
        time.sleep(0.1)
    kids = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.pid, survivors(kids)


def commands(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(" ".join(proc.cmdline()))
        except psutil.Error:
            pass
    return out


LAUNCH = """
    import sys
    from kimi_pipeline.training.engine import EngineConfig
    from kimi_pipeline.training.launch import RunSpec, launch
    launch(RunSpec.model_validate_json(open(sys.argv[1]).read()),
           EngineConfig.model_validate_json(open(sys.argv[2]).read()))
"""


@pytest.mark.parametrize("processes", [1, 2])
def test_sigkill_of_the_sft_launcher_kills_the_training_workers(tmp_path, monkeypatch,
                                                                 processes):
    from tests.training.test_sft_run import config, prepare, sft_frame

    monkeypatch.chdir(REPO)  # the DeepSpeed config path is relative to the project
    cfg = config(tmp_path, max_steps=100_000, checkpoint_every=100_000, eval_every=100_000)
    cfg.engine.num_processes = processes
    prepared = prepare(sft_frame(), cfg, tmp_path)
    spec, engine = tmp_path / "spec.json", tmp_path / "engine.json"
    spec.write_text(prepared.spec.model_dump_json())
    engine.write_text(cfg.engine.model_dump_json())

    def training(kids):
        return sum("kimi_pipeline.training.launch" in c and "kimi_pipeline.procs" not in c
                   and "deepspeed" not in c for c in commands(kids)) >= processes

    _, alive = start_and_kill(LAUNCH, [str(spec), str(engine)], training)
    assert commands(alive) == []


SANDBOX = """
    import sys
    from kimi_pipeline.gym.sandbox import SandboxJob, SandboxLimits, run_many
    limits = SandboxLimits(cpu_seconds=300, wall_seconds=300, isolation=sys.argv[1])
    run_many([SandboxJob("import time\\ntime.sleep(300)\\n", "assert True", None, limits)] * 2, 2)
"""


@pytest.mark.parametrize("isolation", ["namespaces", "rlimits"])
def test_sigkill_of_gym_verification_kills_the_sandboxed_jobs(isolation):
    from kimi_pipeline.gym.sandbox_process import namespaces_available as _namespaces_available

    if isolation == "namespaces" and not _namespaces_available():
        pytest.skip("namespaces need root and util-linux unshare")
    per_job = 3 if isolation == "namespaces" else 1  # unshare, the job's init, its worker

    def sleeping(kids):  # every job started (no setpriv left to exec its command)
        started = commands(kids)
        return len(started) >= 2 * per_job and not any("--pdeathsig" in c for c in started)

    pid, alive = start_and_kill(SANDBOX, [isolation], sleeping)
    assert commands(alive) == []
    # the killed caller could not remove its jobs' cgroups: the next user of the sandbox does
    left = subprocess.run([sys.executable, "-c", LEFT_CGROUPS, str(pid)], check=True,
                          capture_output=True, text=True).stdout.split()
    assert left == []


LEFT_CGROUPS = """
import os, sys
from kimi_pipeline.gym.sandbox_process import cgroup_bases as _cgroup_bases
prefix = f"job-{sys.argv[1]}-"
print(*[d for base in _cgroup_bases().values() for d in os.listdir(base) if d.startswith(prefix)])
"""
