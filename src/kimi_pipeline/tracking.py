"""Find MLflow runs from catalog datasets (the other half of the lineage recorded by the hook),
and name the active run to training workers, which log their per-step metrics into it."""

from __future__ import annotations

from typing import Literal

import mlflow
from mlflow.tracking import MlflowClient


def runs_for(
    dataset: str,
    version: str,
    event: Literal["saved", "loaded"] = "saved",
    tracking_uri: str | None = None,
) -> list[str]:
    """Ids of the runs that saved (or loaded) ``version`` of catalog dataset ``dataset``."""
    client = MlflowClient(tracking_uri or mlflow.get_tracking_uri())
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, filter_string=f"tags.`lineage.{event}.{dataset}` = '{version}'"
    )
    return [run.info.run_id for run in runs]


def active_run_target() -> dict[str, str] | None:
    """``{'tracking_uri', 'run_id'}`` of the active MLflow run (None without one): what a
    training worker in another process needs to log metrics into the stage's run live."""
    run = mlflow.active_run()
    return {"tracking_uri": mlflow.get_tracking_uri(), "run_id": run.info.run_id} if run else None
