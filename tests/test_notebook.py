"""notebooks/explore.ipynb runs top to bottom on a fresh project in the test environment.

The stages that give every section something to show run first (rl is left out: its section
must then say in one line that it has not run, which is checked too); the notebook is
executed by a kernel of this interpreter with the project as its working directory and
``KEDRO_ENV=test``. The executed copy is kept in tmp_path for inspection.
"""

from __future__ import annotations

import json
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from kimi_pipeline.records import Trajectory, from_frame
from kimi_pipeline.tracking import runs_for
from tests.conftest import REPO, load_catalog, run_kedro

pytestmark = pytest.mark.slow

NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
STAGES = ("tool_repo", "synthesis", "filtering", "sft", "gym", "critic")


def _kernel_spec(tmp_path, monkeypatch) -> str:
    """A kernel spec running this interpreter (the project's venv) in a JUPYTER_PATH of its
    own; IPython and Jupyter state go to tmp_path, so no user profile takes part."""
    spec = tmp_path / "jupyter" / "kernels" / "kimi-pipeline-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kimi-pipeline (test)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    return spec.name


def _shown(cell) -> str:
    """Everything a cell displayed: HTML, Markdown, plain text and streams."""
    parts = []
    for output in cell.outputs:
        data = output.get("data", {})
        parts += [data.get(kind, "") for kind in ("text/html", "text/markdown", "text/plain")]
        parts.append(output.get("text", ""))
    return "\n".join(parts)


def test_the_exploration_notebook_shows_every_stage(project, tmp_path, monkeypatch):
    started = time.perf_counter()
    for stage in STAGES:
        run_kedro(project, stage)
    stages_s = time.perf_counter() - started

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "the notebook is saved without outputs")
    monkeypatch.setenv("KEDRO_ENV", "test")
    client = NotebookClient(notebook, kernel_name=_kernel_spec(tmp_path, monkeypatch),
                            timeout=300, resources={"metadata": {"path": str(project)}})
    started = time.perf_counter()
    try:
        client.execute()  # raises CellExecutionError on the first cell that fails
    finally:
        nbformat.write(notebook, tmp_path / "explore.executed.ipynb")
    print(f"stages {stages_s:.1f}s, notebook {time.perf_counter() - started:.1f}s; executed "
          f"notebook: {tmp_path / 'explore.executed.ipynb'}")

    cells = {cell.metadata["tags"][0]: cell for cell in notebook.cells if cell.cell_type == "code"}
    assert not [out for cell in cells.values() for out in cell.outputs
                if out.output_type == "error"]
    catalog = load_catalog(project)

    # chats: user, assistant, the assistant's calls by tool name, the results, the filter verdict
    chats = _shown(cells["chats"])
    trajectories, _ = from_frame(catalog.load("trajectories").collect(), Trajectory, "test")
    called = {call.name for t in trajectories for m in t.messages for call in m.tool_calls}
    assert any(f"tool call · {name}" in chats for name in called), chats[:2000]
    for label in ("user", "assistant", "tool result", "filtering: ", "kept ("):
        assert label in chats, label

    funnel = _shown(cells["funnel"])
    report = catalog.load("filter_report")["funnel"]
    assert "quarantined" in funnel and "kept" in funnel
    assert f"**{report['trajectories']}** synthesised trajectories" in funnel
    for key in report:
        if key.startswith("removed."):
            assert key.removeprefix("removed.") in funnel, key

    assert "success_rate" in _shown(cells["sft"]) and "SFT model" in _shown(cells["sft"])
    assert any("image/png" in out.get("data", {}) for out in cells["sft-curves"].outputs)
    gym = _shown(cells["gym"])
    samples = catalog.load("gym_report")["samples_per_task"]
    assert f"pass@{samples}" in gym and "coding" in gym
    assert "refined" in _shown(cells["critic"])
    assert "has not run yet" in _shown(cells["rl"]) and "--pipeline=rl" in _shown(cells["rl"])

    # lineage: the sft run that saved the newest sft_model, and the filtering run behind it
    lineage = _shown(cells["lineage"])
    version = catalog.get("sft_model").resolve_load_version()
    (sft_run,) = runs_for("sft_model", version)
    dataset_version = catalog.get("sft_dataset").resolve_load_version()
    (filtering_run,) = runs_for("sft_dataset", dataset_version)
    assert sft_run in lineage and version in lineage
    assert dataset_version in lineage and filtering_run in lineage
    assert "raw_tool_specs" in lineage  # walked upstream to the raw inputs
