"""``kimi-pipeline report``: every stage's headline table from its newest report version, and
"not run yet" with the command for the stages that have none.

One real stage run (tool_repo, the cheapest) checks a headline against a report as the pipeline
writes it; the other tables come from reports saved through the project's catalog.
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from kimi_pipeline.pipeline_registry import dataset_producers
from kimi_pipeline.summary import HEADLINES, report_command, version_time
from tests.conftest import load_catalog, run_kedro

RL_REPORT = {
    "iterations": 2,
    "heldout": {
        "gain_points": 25.0,
        "table": [
            {"scope": "all", "name": "all", "model": "sft_model", "reward": 0.25, "tasks": 4},
            {"scope": "all", "name": "all", "model": "rl_model", "reward": 0.5, "tasks": 4},
            {"scope": "domain", "name": "math", "model": "sft_model", "reward": 0.0, "tasks": 2},
            {"scope": "domain", "name": "math", "model": "rl_model", "reward": 0.5, "tasks": 2},
            {"scope": "level", "name": "math/L1", "model": "rl_model", "reward": 0.5, "tasks": 2},
        ],
    },
    "tool_tasks": {"sft_model": {"episodes": 24, "success_rate": 0.25},
                   "rl_model": {"episodes": 24, "success_rate": 0.125}},
}


def report(*args: str):
    return CliRunner(env={"COLUMNS": "200"}).invoke(report_command, list(args))


def lines_with(out: str, word: str) -> list[str]:
    """The table rows whose first cell is ``word`` (cells split on rich's borders)."""
    cells = [[c.strip() for c in re.split(r"[│┃]", line)[1:-1]] for line in out.splitlines()]
    return [row for row in cells if row and row[0] == word]


def test_every_stage_is_produced_by_its_pipeline():
    producers = dataset_producers()
    assert list(HEADLINES) == ["tool_repo", "synthesis", "filtering", "sft", "gym", "critic", "rl"]
    for stage, spec in HEADLINES.items():
        assert producers[spec.dataset] == stage


def test_a_project_without_runs_lists_every_stage_as_not_run_yet(project):
    result = report("--env", "test")
    assert result.exit_code == 0, result.stdout + result.stderr
    for stage in HEADLINES:
        assert f"{stage}: not run yet (kedro run --pipeline={stage} --env=test)" in result.stdout
    assert "┏" not in result.stdout  # no table at all


def test_a_saved_rl_report_is_its_before_after_table_with_version_and_time(project):
    load_catalog(project).save("rl_report", RL_REPORT)
    result = report("--env", "test", "--stage", "rl", "--stage", "sft")
    assert result.exit_code == 0, result.stdout + result.stderr
    out = result.stdout
    saved = next((project / "data/08_reporting/rl_report.json").iterdir()).name
    assert f"rl_report version {saved}, {version_time(saved)}" in out
    assert lines_with(out, "all") == [["all", "4", "0.25", "0.5", "25"]]
    assert lines_with(out, "math") == [["math", "2", "0", "0.5", "50"]]
    assert lines_with(out, "math/L1") == []  # levels are not the headline
    assert lines_with(out, "tool tasks (agent)") == [
        ["tool tasks (agent)", "24", "0.25", "0.125", "-12.5"]]
    assert "2 iterations; gain 25 points" in out
    assert "sft: not run yet (kedro run --pipeline=sft --env=test)" in out
    assert "tool_repo" not in out  # --stage keeps only the stages asked for


def test_the_sft_headline_names_the_demonstrations_it_mixed_in(project):
    figures = {"success_rate": 0.0, "parse_validity_rate": 0.5, "episodes": 3}
    load_catalog(project).save("sft_report", {
        "training": {"steps": 4, "final_loss": 0.5},
        "evaluation": {"initial": figures, "sft": {**figures, "success_rate": 0.25}},
        "packing": {"demonstrations": {"distinct": 7, "repeats": 3, "examples": 21,
                                       "share": 0.15}},
    })
    out = report("--env", "test", "--stage", "sft").stdout
    assert lines_with(out, "success_rate") == [["success_rate", "0", "0.25"]]
    assert "steps 4, final loss 0.5, 7 verified demonstrations at 0.15 of the examples" in out


def test_a_report_of_an_unknown_schema_shows_its_top_level_fields(project):
    load_catalog(project).save("critic_report", {"pairs_total": 7, "note": "new schema"})
    out = report("--env", "test", "--stage", "critic").stdout
    assert lines_with(out, "pairs_total") == [["pairs_total", "7"]]
    assert "no headline for this schema" in out


def test_an_unreadable_report_is_named_and_the_other_stages_still_listed(project):
    version = project / "data/08_reporting/gym_report.json/2026-01-01T00.00.00.000Z"
    version.mkdir(parents=True)
    (version / "gym_report.json").write_text("{not json [Errno 2]")
    result = report("--env", "test")
    assert result.exit_code == 0, result.stdout + result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith("gym:")]
    assert line.startswith("gym: gym_report could not be read: ")
    assert "rl: not run yet (kedro run --pipeline=rl --env=test)" in result.stdout


@pytest.mark.slow
def test_after_a_tool_repo_run_its_table_is_printed(project):
    run_kedro(project, "tool_repo")
    out = report("--env", "test").stdout
    (tools,) = lines_with(out, "tools")
    assert int(tools[1]) > 0
    assert lines_with(out, "MCP server time") == [["MCP server time", "ok, 2 tools"]]
    assert "tool_repo: Tool repository (tool_repo_report version" in out
    assert "synthesis: not run yet (kedro run --pipeline=synthesis --env=test)" in out
