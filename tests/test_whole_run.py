"""`kedro run --env=test`: the seven stages in DAG order in one Kedro session and one MLflow run.

Each stage test starts its own session; `make run` is one session whose stages share one MLflow
run, so what one stage logs must not clash with another's (MLflow refuses a second value under a
param name: sft's and rl's optimizer settings once did, and `make run` failed after RL trained).
"""

from __future__ import annotations

import mlflow
import pytest

from tests.conftest import load_catalog, run_kedro

pytestmark = pytest.mark.slow

STAGE_REPORTS = ("tool_repo_report", "synthesis_report", "filter_report", "sft_report",
                 "gym_report", "critic_report", "rl_report")


def test_kedro_run_runs_the_seven_stages_in_one_session_and_one_mlflow_run(project):
    # rl with its own learning rate, as on base (sft 2e-4, rl 6e-5): both must be logged
    run_kedro(project, "__default__", params={"rl": {"optimizer": {"lr": 0.005}}})

    catalog = load_catalog(project)
    for name in STAGE_REPORTS:
        assert catalog.load(name), name
    assert catalog.load("rl_model").load_model() is not None

    client = mlflow.tracking.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    params, metrics = runs[0].data.params, runs[0].data.metrics
    assert float(params["optim/lr"]) == 0.01 and float(params["rl/optim/lr"]) == 0.005
    for stage_metric in ("gym.overall.pass_rate", "rl.heldout.gain_points", "rl/reward/task"):
        assert stage_metric in metrics, stage_metric
    assert any(key.startswith("train/") for key in metrics)  # sft's curves
    # where the time went: every node, every stage, the run
    stages = {f"seconds/stage/{stage}" for stage in
              ("tool_repo", "synthesis", "filtering", "sft", "gym", "critic", "rl")}
    assert stages <= metrics.keys()
    assert "seconds/sft.train_sft" in metrics and "seconds/rl.train_rl" in metrics
    assert metrics["seconds/run"] == pytest.approx(sum(metrics[k] for k in stages))
