"""Shared fixtures: an isolated copy of the Kedro project (conf + raw data) per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs the suite in parallel workers (pytest-xdist) that share the cores: one
    # torch thread each, since a second thread spin-waits on the core the other worker holds
    # (docs/troubleshooting.md, Threads). Set before torch is imported; subprocesses inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A runnable project in tmp_path: pyproject, conf/, the shipped raw data, its own MLflow."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / "src").mkdir()  # the package itself is installed; Kedro only wants the folder
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    shutil.copytree(REPO / "data" / "01_raw", root / "data" / "01_raw")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    return root


def run_kedro(root: Path, pipeline: str, env: str = "test", params: dict | None = None):
    """Run one registered pipeline in a fresh Kedro session; return the session's outputs."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=env, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])


def load_catalog(root: Path, env: str = "test"):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(root)
    with KedroSession.create(project_path=root, env=env) as session:
        return session.load_context().catalog
