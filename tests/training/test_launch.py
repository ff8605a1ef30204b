"""``training.launch``: the run spec, the worker command and environment, and ``launch`` itself
with a stand-in worker (``tests/launch_worker.py``): the result comes back, a failing worker
raises with its log instead of hanging, a stale result is never mistaken for a new one.

Real training workers run in ``test_sft_run.py`` and ``tests/rl/test_loop.py``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from kimi_pipeline.training.engine import EngineConfig
from kimi_pipeline.training.launch import ALLOCATOR_ENV, RunSpec, command, launch, worker_env
from kimi_pipeline.training.loop import TrainConfig
from kimi_pipeline.training.optim import OptimizerConfig

REPO = Path(__file__).resolve().parents[2]
WORKER = "tests.launch_worker"


def spec(run_dir: Path, **overrides) -> RunSpec:
    return RunSpec(
        run_dir=str(run_dir), initial_model="models/base", tokenizer="models/base",
        train_data=str(run_dir / "train.pt"), context_tokens=123.5,
        train=TrainConfig(seq_len=64, max_steps=3, seed=7),
        optimizer=OptimizerConfig(name="muon", lr=0.02),
        deepspeed={"zero_optimization": {"stage": 2}, "bf16": {"enabled": False}},
        **overrides,
    )


def test_the_spec_round_trips_through_its_json_and_refuses_unknown_keys(tmp_path):
    original = spec(tmp_path, mlflow_run={"tracking_uri": "sqlite:///m.db", "run_id": "r1"})
    again = RunSpec.model_validate_json(original.model_dump_json())
    assert again == original
    assert again.train.max_steps == 3 and again.optimizer.name == "muon"
    payload = json.loads(original.model_dump_json())
    with pytest.raises(ValidationError, match="learning_rate"):
        RunSpec.model_validate({**payload, "learning_rate": 0.1})


def test_one_process_runs_the_module_directly_several_go_through_the_deepspeed_launcher():
    spec_path = Path("/runs/x/spec.json")
    assert command(spec_path, EngineConfig(), 1234, "pkg.worker") == [
        sys.executable, "-m", "pkg.worker", str(spec_path)]
    engine = EngineConfig(num_processes=4, num_nodes=2, hostfile="hosts",
                          launcher_args=["--bind_cores_to_rank"])
    cmd = command(spec_path, engine, 1234, "pkg.worker")
    assert cmd[:3] == [sys.executable, "-m", "deepspeed.launcher.runner"]
    flags = cmd[3:]
    assert flags[flags.index("--num_gpus") + 1] == "4"
    assert flags[flags.index("--num_nodes") + 1] == "2"
    assert flags[flags.index("--master_port") + 1] == "1234"
    assert flags[flags.index("--hostfile") + 1] == "hosts"
    assert "--no_local_rank" in flags and "--bind_cores_to_rank" in flags
    assert flags[-3:] == ["--module", "pkg.worker", str(spec_path)]


def test_cpu_workers_get_the_cpu_accelerator_and_their_share_of_the_cores(monkeypatch):
    for name in ("DS_ACCELERATOR", "TORCHDYNAMO_DISABLE", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = worker_env(EngineConfig(num_processes=2), cuda=False)
    assert env["DS_ACCELERATOR"] == "cpu" and env["TORCHDYNAMO_DISABLE"] == "1"
    assert env["OMP_NUM_THREADS"] == "4"
    assert all(env[k] == v for k, v in ALLOCATOR_ENV.items())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # a user's own setting is kept
    assert worker_env(EngineConfig(num_processes=2), cuda=False)["OMP_NUM_THREADS"] == "3"
    on_gpu = worker_env(EngineConfig(num_processes=2), cuda=True)
    assert "DS_ACCELERATOR" not in on_gpu and on_gpu["OMP_NUM_THREADS"] == "3"


@pytest.fixture
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # ``python -m tests.launch_worker`` resolves from here


@pytest.mark.timeout(120)
def test_a_single_process_run_returns_the_workers_result(tmp_path, in_repo, monkeypatch):
    monkeypatch.setenv("LAUNCH_WORKER", "ok")
    run = spec(tmp_path / "run")
    result = launch(run, EngineConfig(master_port=29871), "train.log", module=WORKER)
    written = RunSpec.model_validate_json((tmp_path / "run" / "spec.json").read_text())
    assert written == run  # what the worker reads is the spec it was given
    assert result["run_dir"] == run.run_dir
    assert result["argv"] == [str(tmp_path / "run" / "spec.json")]
    assert result["env"] == {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0",
                             "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29871",
                             "DS_ACCELERATOR": "cpu",
                             "MALLOC_TRIM_THRESHOLD_": ALLOCATOR_ENV["MALLOC_TRIM_THRESHOLD_"]}
    assert "worker ok: loading models/base" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.timeout(120)
def test_a_failing_worker_makes_launch_raise_with_its_log(tmp_path, in_repo, monkeypatch):
    run_dir = tmp_path / "run"
    monkeypatch.setenv("LAUNCH_WORKER", "fail")
    with pytest.raises(RuntimeError) as failure:
        launch(spec(run_dir), EngineConfig(), "train.log", module=WORKER)
    message = str(failure.value)
    assert "exit code 1" in message and str(run_dir / "train.log") in message
    assert "worker fail: loading models/base" in message  # the tail of the worker's output
    assert "worker error: the initial model has no config.json" in message  # and its stderr


@pytest.mark.timeout(120)
def test_a_worker_that_writes_no_result_fails_even_over_a_stale_one(tmp_path, in_repo,
                                                                     monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text('{"steps": 99}')  # left by an earlier, finished run
    monkeypatch.setenv("LAUNCH_WORKER", "silent")
    with pytest.raises(RuntimeError, match="exit code 0"):
        launch(spec(run_dir), EngineConfig(), "train.log", module=WORKER)
    assert not (run_dir / "result.json").exists()
