"""Find MLflow runs from catalog datasets: the other half of the lineage recorded by the hook."""

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
