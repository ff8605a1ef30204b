"""The project's ``kedro run``, as a real process: one ``Error:`` line for every user mistake.

Each case asserts the exact line, a non-zero exit, and that no traceback is printed unless
``--verbose`` asks for it; a run also starts without the known library warnings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from kimi_pipeline.records import QuarantineRecord, from_frame
from tests.conftest import load_catalog

KEDRO = Path(sys.executable).parent / "kedro"
LIBRARY_WARNINGS = ("UserWarning", "KedroDeprecationWarning", "register_new_resolver", "type hints")


def kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "COLUMNS": "200"}
    return subprocess.run([str(KEDRO), "run", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)


def assert_one_line_error(out: subprocess.CompletedProcess, expected: str) -> None:
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stderr.rstrip("\n").splitlines()[-1] == f"Error: {expected}"
    both = out.stdout + out.stderr
    assert "Traceback" not in both and "╭" not in both, both[-3000:]
    assert not [w for w in LIBRARY_WARNINGS if w in both], both[:3000]


def test_unknown_environment_names_it_and_lists_the_known_ones(project):
    out = kedro(project, "--env=nope")
    assert_one_line_error(out, f"unknown environment 'nope': there is no folder "
                               f"{project / 'conf' / 'nope'}; environments: base, gpu, local, test")


def test_unknown_pipeline_lists_the_valid_names(project):
    out = kedro(project, "--pipeline=nope", "--env=test")
    assert_one_line_error(out, "unknown pipeline 'nope'; pipelines: "
                               "__default__, critic, filtering, gym, rl, sft, synthesis, tool_repo")


def test_every_bad_parameter_in_one_line(project):
    out = kedro(project, "--pipeline=tool_repo", "--env=test",
                "--params=tool_repo.evolve.tools_per_domian=3,tool_repo.sample_size=-1")
    assert_one_line_error(
        out,
        "2 parameter problems: parameter 'tool_repo.evolve.tools_per_domian' in --params on the "
        "command line: Extra inputs are not permitted; parameter 'tool_repo.sample_size' in "
        "--params on the command line: Input should be greater than or equal to 0",
    )


def test_missing_upstream_dataset_names_the_stage_and_command(project):
    out = kedro(project, "--pipeline=sft", "--env=test")
    assert_one_line_error(
        out,
        "missing inputs: 'tool_repository' made by stage 'tool_repo' (`kedro run "
        "--pipeline=tool_repo --env=test`); 'agents', 'tasks' made by stage 'synthesis' (`kedro run "
        "--pipeline=synthesis --env=test`); 'sft_dataset' made by stage 'filtering' (`kedro run "
        "--pipeline=filtering --env=test`); run the producing stage first",
    )
    assert not (project / "data" / "06_models").exists()


def test_verbose_shows_the_traceback(project):
    out = kedro(project, "--env=nope", "--verbose")
    assert out.returncode != 0
    assert "Traceback" in out.stdout + out.stderr and "unknown environment 'nope'" in out.stderr


@pytest.fixture
def broken_server_project(project):
    """The test env with a second, mistyped MCP server next to the working one."""
    params = project / "conf" / "test" / "parameters_tool_repo.yml"
    params.write_text(params.read_text() + (
        "  mcp_servers:\n"
        "    - name: time\n"
        "      command: [python, -m, mcp_server_time, --local-timezone, UTC]\n"
        "    - name: tiem\n"
        "      command: [python, -m, mcp_server_tiem]\n"
    ))
    return project


def test_a_broken_mcp_server_is_warned_quarantined_reported_and_tracked(broken_server_project):
    project = broken_server_project
    out = kedro(project, "--pipeline=tool_repo", "--env=test")
    assert out.returncode == 0, out.stderr[-3000:]
    both = out.stdout + out.stderr
    assert "MCP server 'tiem' failed (process exited with code 1 during initialize:" in both
    assert "No module named mcp_server_tiem" in both
    assert not [w for w in LIBRARY_WARNINGS if w in both]

    rows, _ = from_frame(load_catalog(project).load("tool_quarantine"), QuarantineRecord, stage="t")
    (row,) = [r for r in rows if r.step == "harvest"]
    assert (row.source, row.source_ref) == ("mcp", "tiem") and "mcp_server_tiem" in row.reason
    assert json.loads(row.original)["command"] == ["python", "-m", "mcp_server_tiem"]

    report_file = next((project / "data/08_reporting/tool_repo_report.json").rglob("*.json"))
    (failure,) = json.loads(report_file.read_text())["source_failures"]
    assert failure["source"] == "mcp" and failure["name"] == "tiem"

    client = MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.data.metrics["tool_repo.source_failures"] == 1
    assert run.data.tags["tool_repo.source_failures"].startswith("mcp:tiem: process exited")


def test_require_all_sources_turns_the_failure_into_one_error_line(broken_server_project):
    out = kedro(broken_server_project, "--pipeline=tool_repo", "--env=test",
                "--params=tool_repo.require_all_sources=true")
    assert out.returncode == 1
    last = out.stderr.rstrip("\n").splitlines()[-1]
    assert last.startswith("Error: MCP server 'tiem' failed (process exited with code 1")
    assert last.endswith("stopping because tool_repo.require_all_sources is true")
    assert "Traceback" not in out.stdout + out.stderr
