"""MLflow as a new user meets it after a run (issue 15): ``make ui`` and ``kedro mlflow ui`` start
without an activated virtual environment, the printed page lists the runs (not MLflow 3's empty
GenAI traces page), a run page shows readable tags, its metrics with the per-step curves first,
and its plots.

The browser test runs the cheap ``tool_repo`` stage for real, logs per-step curves and the SFT
figure into its run the way the sft stage does (the stage itself is too slow here), serves the
project's SQLite store with ``make ui`` and reads the pages with headless Chromium (screenshots
in ``$KIMI_SCREENSHOT_DIR`` when set). The small tests pin the pieces: tag names, experiment
kind, ints in the optimizer params, the SFT figure's MFU panel.
"""

from __future__ import annotations

import contextlib
import html
import math
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import mlflow
import psutil
import pytest
from mlflow.tracking import MlflowClient
from torch import nn

from kimi_pipeline.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    lineage_tag,
    mark_experiment_kind,
    put_scripts_on_path,
    runner_name,
    runs_for,
    runs_page_url,
    tidy_run_tags,
)
from kimi_pipeline.training.optim import OptimizerConfig, prepare_optimizer
from kimi_pipeline.training.report import training_figure
from tests.browser import chromium, free_port, look, screenshot_dir, serve
from tests.conftest import REPO, run_kedro

VENV_BIN = Path(sysconfig.get_path("scripts"))
KEDRO = str(Path(sys.executable).with_name("kedro"))
# a lighter MLflow server for tests: one worker, no job runners, no access log in the pipe
LIGHT_SERVER = {"MLFLOW_WORKERS": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                "MLFLOW_UVICORN_OPTS": "--no-access-log"}
RUNNER_REPR = "<kedro.runner.sequential_runner.SequentialRunner object at 0x7f3c93622d50>"


# --------------------------------------------------------------------------- the pieces


def test_run_tags_keep_what_kedro_command_does_not_say():
    tags = {"runner": RUNNER_REPR, "run_id": "2026-12-06T08.16.18.209Z", "env": "local",
            "pipeline_names": "['sft']", "to_nodes": "['train_sft']", "kedro_version": "1.7.0",
            "kedro_command": "kedro run --to-nodes=train_sft --pipeline=sft",
            "runtime_params": "{'sft': {'optimizer': {'lr': 0.0003}}}"}
    keep, drop = tidy_run_tags(tags)
    assert keep == {"runner": "SequentialRunner", "kedro_session": "2026-12-06T08.16.18.209Z"}
    assert sorted(drop) == ["env", "pipeline_names", "run_id", "to_nodes"]
    assert runner_name("ParallelRunner") == "ParallelRunner"
    assert runner_name("None") == "SequentialRunner"  # KedroSession.run(runner=None)


def test_lineage_tags_start_short_and_runs_for_finds_old_and_new_tags(tmp_path):
    assert lineage_tag("loaded", "sft_dataset") == "in.sft_dataset"
    assert lineage_tag("saved", "sft_model") == "out.sft_model"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("lineage")
    new = client.create_run(experiment, tags={"out.tools": "v1", "in.tools": "v0"}).info.run_id
    old = client.create_run(experiment, tags={"lineage.saved.tools": "v1"}).info.run_id
    assert sorted(runs_for("tools", "v1", tracking_uri=uri)) == sorted([new, old])
    assert runs_for("tools", "v0", "loaded", tracking_uri=uri) == [new]


def test_experiment_kind_is_model_training_unless_someone_chose_one(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    unset = client.create_experiment("unset")
    inferred = client.create_experiment("inferred", tags={
        EXPERIMENT_KIND_TAG: "genai_development_inferred"})
    chosen = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    assert [mark_experiment_kind(client, e) for e in (unset, inferred, chosen)] == [
        True, True, False]
    kinds = [client.get_experiment(e).tags[EXPERIMENT_KIND_TAG] for e in (unset, inferred, chosen)]
    assert kinds == [MODEL_TRAINING_KIND, MODEL_TRAINING_KIND, "genai_development"]


def test_the_venv_scripts_go_first_on_path_when_missing(monkeypatch):
    monkeypatch.setenv("PATH", path_without_venv())
    assert put_scripts_on_path() == VENV_BIN
    assert os.environ["PATH"].split(os.pathsep)[0] == str(VENV_BIN)
    assert shutil.which("mlflow") == str(VENV_BIN / "mlflow")
    assert put_scripts_on_path() is None  # once is enough


def test_optimizer_counts_and_zero_stage_are_logged_as_ints():
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8))
    params = prepare_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3), 2).describe()
    assert params["optim/zero_stage"] == 2 and isinstance(params["optim/zero_stage"], int)
    assert isinstance(params["optim/adamw_params"], int)
    assert isinstance(params["optim/adamw_tensors"], int)
    assert isinstance(params["optim/lr"], float)


def test_sft_figure_gives_mfu_its_own_panel():
    fig = training_figure(sft_rows(8))
    panels = {ax.get_title(): ax for ax in fig.axes}
    assert len(fig.axes) == 6, "no twin axis drawing MFU over tokens/s"
    assert len(panels["tokens/s"].get_lines()) == 1
    (mfu,) = panels["MFU (% of peak FLOP/s)"].get_lines()
    assert max(mfu.get_ydata()) == pytest.approx(100 * max(r["mfu"] for r in sft_rows(8)))


# --------------------------------------------------------------------------- the browser


@pytest.mark.slow
def test_make_ui_opens_on_the_runs_with_curves_first_and_plots(project, tmp_path):
    browser = chromium()
    stripped = path_without_venv()
    if shutil.which("mlflow", path=stripped):
        pytest.skip("an mlflow outside the venv is on PATH: nothing to tell apart")
    run_kedro(project, "tool_repo")
    client = MlflowClient()
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    log_like_sft(client, run.info.run_id, tmp_path)
    env = {**LIGHT_SERVER, "PATH": stripped, "VIRTUAL_ENV": ""}

    kedro_ui, kedro_log = start([KEDRO, "mlflow", "ui", "--port", str(free_port())], project,
                                env, tmp_path / "kedro_ui.log")
    port = free_port()
    make_ui = ["make", "-f", str(REPO / "Makefile"), "-o", f"{VENV_BIN.parent}/.installed",
               f"VENV={VENV_BIN.parent}", "ui", f"PORT={port}"]
    url = runs_page_url("127.0.0.1", port, run.info.experiment_id)
    with serve(make_ui, f"http://127.0.0.1:{port}/", cwd=project, env=env, timeout_s=90) as ui:
        assert_starts_mlflow(kedro_ui, kedro_log)
        pages = look_at_run(browser, url, run.info.run_id, screenshot_dir(tmp_path))
    assert url in ui.stdout.read(), "make ui prints the page of the runs"

    runs = text(pages["runs"])
    assert "Runs - Experiment" in runs and "tool_repo" in runs and "matching run" in runs
    assert "No data available" not in runs, "the GenAI overview, not the runs"
    run_page = text(pages["run"])
    for shown in ("tool_repo.tools", "train/loss", "out.tool_repository : ",
                  "runner : SequentialRunner", "kedro_session : "):
        assert shown in run_page
    assert "object at 0x" not in run_page and "lineage." not in run_page
    charts = text(pages["charts"])
    assert 0 <= charts.index("train (7)") < charts.index("Model metrics (")
    assert "plots/sft_training.png" in text(pages["plot"]) and "<img" in pages["plot"]


def look_at_run(browser: str, runs_url: str, run_id: str, folder: Path) -> dict[str, str]:
    """The DOM of the runs page, the run page, its charts and its SFT plot (with screenshots)."""
    base, query = runs_url.split("?")
    run_url = f"{base}/{run_id}"
    pages = {"runs": (runs_url, 20_000, (1600, 1000)),
             "run": (f"{run_url}?{query}", 20_000, (1600, 1800)),
             # the charts draw after MLflow's auto-refresh fetched them: a long virtual time
             "charts": (f"{run_url}/model-metrics?{query}", 200_000, (1600, 1800)),
             "plot": (f"{run_url}/artifacts/plots/sft_training.png?{query}", 20_000, (1600, 1000))}
    return {name: look(browser, url, folder / f"mlflow_{name}.png", wait_ms=wait, size=size)
            for name, (url, wait, size) in pages.items()}


# --------------------------------------------------------------------------- helpers


def path_without_venv() -> str:
    """``PATH`` without the virtual environment's scripts, as in a shell that did not activate
    it."""
    venv = VENV_BIN.resolve()
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != venv)


def sft_rows(steps: int) -> list[dict[str, float]]:
    """Per-step rows shaped like the SFT trainer's (``training/loop.py``)."""
    rows = []
    for step in range(1, steps + 1):
        speed = 900 + 40 * math.sin(step)
        rows.append({"step": step, "loss": 1 + 3 * math.exp(-step / 6),
                     "lr": 1e-3 * min(1, step / 4), "tokens_per_s": speed, "mfu": speed * 3e-5,
                     "peak_memory_mb": 800.0 + step, "max_attention_logit": 5 + step / 10})
    rows[-1]["eval_loss"] = rows[-1]["loss"] + 0.1
    return rows


def log_like_sft(client: MlflowClient, run_id: str, folder: Path) -> None:
    """Per-step curves through the workers' sink and the SFT figure as ``plots/``, into
    ``run_id``, as the sft stage logs them."""
    from kimi_pipeline.training.loop import MetricsSink

    sink = MetricsSink(folder / "metrics.jsonl", {"tracking_uri": mlflow.get_tracking_uri(),
                                                  "run_id": run_id})
    rows = sft_rows(20)
    for row in rows:
        sink.log(int(row["step"]), {k: v for k, v in row.items() if k != "step"})
    client.log_figure(run_id, training_figure(rows), "plots/sft_training.png")


def start(command: list[str], cwd: Path, env: dict[str, str],
          log: Path) -> tuple[subprocess.Popen, Path]:
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process, log


def assert_starts_mlflow(process: subprocess.Popen, log: Path, timeout_s: float = 60) -> None:
    """``process`` (``kedro mlflow ui``) runs ``mlflow ui`` within ``timeout_s``; stop both."""
    deadline = time.monotonic() + timeout_s
    try:
        while not any(_is_mlflow_ui(child) for child in _children(process)):
            assert process.poll() is None, f"kedro mlflow ui exited:\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no mlflow ui in {timeout_s:.0f} s"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        process.wait(timeout=30)


def _children(process: subprocess.Popen) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(process.pid).children(recursive=True)
    return []


def _is_mlflow_ui(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        command = proc.cmdline()
        return any(Path(part).name == "mlflow" for part in command) and "ui" in command
    return False


def text(dom: str) -> str:
    """What a page says: its DOM without scripts, styles and tags, whitespace collapsed."""
    dom = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))
