"""`kedro run --pipeline=tool_repo --env=test` end to end: outputs, versions, MLflow lineage, secrets."""

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from kimi_pipeline.records import QuarantineRecord, ToolSpec, from_frame
from kimi_pipeline.tracking import runs_for
from tests.conftest import load_catalog, run_kedro

pytestmark = pytest.mark.slow
SECRET = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def git_project(project, monkeypatch):
    """The project as a git checkout, with a secret in the environment and in credentials."""
    (project / "conf" / "local" / "credentials.yml").write_text(f"llm:\n  api_key: {SECRET}\n")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(project)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return project


def _versions(project: Path, relative: str) -> list[str]:
    return sorted(p.name for p in (project / relative).iterdir())


def test_tool_repo_run_outputs_versions_lineage_and_no_secrets(git_project):
    project = git_project
    run_kedro(project, "tool_repo")
    catalog = load_catalog(project)

    tools, bad_rows = from_frame(catalog.load("tool_repository"), ToolSpec, stage="test")
    assert bad_rows == []
    sources = {t.source for t in tools}
    assert sources == {"mcp", "file", "synthetic"}
    assert {"get_current_time", "convert_time"} <= {t.name for t in tools if t.source == "mcp"}
    assert all(t.category and t.domain for t in tools), "every tool is categorised"
    assert len({t.tool_id for t in tools}) == len(tools)

    quarantined, _ = from_frame(catalog.load("tool_quarantine"), QuarantineRecord, stage="test")
    assert quarantined and all(q.reason and q.original for q in quarantined)
    assert {q.source for q in quarantined} >= {"file"}

    report = json.loads(next((project / "data/08_reporting/tool_repo_report.json").rglob("*.json")).read_text())
    assert report["tools"] == len(tools) and report["mcp_servers"][0]["ok"] is True

    # MLflow: the run carries params, metrics, plots, sample and lineage tags
    client = MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    tags = run.data.tags
    version = _versions(project, "data/03_primary/tool_repository.parquet")[0]
    assert tags["out.tool_repository"] == version and tags["in.tool_repository"] == version
    assert not [key for key in tags if key.startswith("lineage.")]
    assert tags["runner"] == "SequentialRunner" and "pipeline_names" not in tags
    assert tags["kedro_env"] == "test"
    assert len(tags["git_commit"]) == 40
    assert run.data.metrics["tool_repo.tools"] == len(tools)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert artifacts == {"plots/tool_repo_map.png", "plots/tool_repo_counts.png"}
    lineage = json.loads(Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id,
                                                                 artifact_path="lineage.json")).read_text())
    assert lineage["saved"]["tool_repository"]["version"] == version
    saved = lineage["saved"]["tool_repository"]
    assert saved["path"].endswith(f"{version}/tool_repository.parquet")
    assert runs_for("tool_repository", version) == [run.info.run_id]

    # a second run writes new versions next to the old ones, never over them
    first = (project / "data/03_primary/tool_repository.parquet" / version / "tool_repository.parquet").read_bytes()
    run_kedro(project, "tool_repo")
    assert len(_versions(project, "data/03_primary/tool_repository.parquet")) == 2
    second = _versions(project, "data/03_primary/tool_repository.parquet")[1]
    assert mlflow.active_run() is None, "a session leaves no MLflow run open behind it"
    assert len(runs_for("tool_repository", second)) == 1 and runs_for("tool_repository", second) != [run.info.run_id]
    assert (project / "data/03_primary/tool_repository.parquet" / version / "tool_repository.parquet").read_bytes() == first

    # secrets from the environment and credentials.yml appear nowhere MLflow wrote
    for path in [project / "mlflow.db", *project.rglob("mlruns/**/*"), *project.rglob("mlartifacts/**/*")]:
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"secret leaked into {path}"


def test_kedro_viz_build_succeeds(project):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kedro"), "viz", "build", "--include-hooks"],
        cwd=project, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (project / "build" / "index.html").exists()
