"""What the project writes to MLflow and how the MLflow UI shows it, in one place.

* Lineage: the tag of a dataset version a run loaded or saved is ``in.<dataset>`` /
  ``out.<dataset>`` = version: short enough that the run page (which gives a tag's key and value
  300 px together) shows the dataset's name. ``runs_for`` goes from a dataset version back to
  its runs (runs tagged the older way, ``lineage.loaded.<dataset>`` / ``lineage.saved.…``, too).
* Metric names: the UI puts a metric in the chart section named by what comes before its last
  ``/`` (sections sorted by name), and every name without ``/`` in the section "Model metrics",
  shown last. So per-step curves are ``<prefix>/<name>`` (``train/loss``, ``rl/reward/task``,
  logged live by the training workers, see ``active_run_target``) and open the page, while the
  one-value figures of the stage reports stay ``<stage>.<name>`` and come after them.
* Experiment kind: MLflow 3 opens an experiment whose tag ``mlflow.experimentKind`` is not set
  on its (empty) GenAI traces page; ``mark_experiment_kind`` sets it to model training. The UI
  of MLflow 3.17 goes by its own "GenAI / Model training" switch first (kept in the browser,
  GenAI until a user flips it; the ``workflowType`` URL parameter overrides it), so
  ``kedro mlflow ui`` also prints ``runs_page_url``, the page of the runs in model training.
* Run tags: kedro-mlflow tags every run with Kedro's run parameters; ``tidy_run_tags`` says
  which of them to drop (repeated in ``kedro_command``) or rewrite (the runner object's repr).
* ``kedro mlflow ui`` starts ``mlflow`` from ``PATH``; ``put_scripts_on_path`` lets it find the
  one installed beside this interpreter when the virtual environment is not activated.
"""

from __future__ import annotations

import os
import re
import sysconfig
from pathlib import Path
from typing import Literal

import mlflow
from mlflow.tracking import MlflowClient

LINEAGE_PREFIX = {"loaded": "in", "saved": "out"}
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"  # shown by the UI as "Machine learning"
ML_WORKFLOW = "machine_learning"  # the UI's "Model training" switch, as a URL parameter
# values the UI infers or leaves when nobody chose a kind: overwritten; a chosen one is kept
UNCHOSEN_KINDS = {"", "no_inferred_type", "genai_development_inferred",
                  "custom_model_development_inferred"}
# Kedro run parameters kedro-mlflow tags a run with, which its ``kedro_command`` tag repeats
# (or ``kedro_env`` does, for ``env``)
REPEATED_RUN_TAGS = ("env", "pipeline_names", "from_nodes", "to_nodes", "node_names",
                     "from_inputs", "tags", "load_versions")
RENAMED_RUN_TAGS = {"run_id": "kedro_session"}  # Kedro's session id, not MLflow's run id
DEFAULT_RUNNER = "SequentialRunner"  # what KedroSession.run runs without a runner


def lineage_tag(event: Literal["saved", "loaded"], dataset: str) -> str:
    """The run tag holding the version of ``dataset`` the run loaded (``in.…``) or saved."""
    return f"{LINEAGE_PREFIX[event]}.{dataset}"


def runs_for(
    dataset: str,
    version: str,
    event: Literal["saved", "loaded"] = "saved",
    tracking_uri: str | None = None,
) -> list[str]:
    """Ids of the runs that saved (or loaded) ``version`` of catalog dataset ``dataset``."""
    client = MlflowClient(tracking_uri or mlflow.get_tracking_uri())
    experiments = [e.experiment_id for e in client.search_experiments()]
    ids: list[str] = []
    for key in (lineage_tag(event, dataset), f"lineage.{event}.{dataset}"):
        runs = client.search_runs(experiments, filter_string=f"tags.`{key}` = '{version}'")
        ids += [run.info.run_id for run in runs if run.info.run_id not in ids]
    return ids


def active_run_target() -> dict[str, str] | None:
    """``{'tracking_uri', 'run_id'}`` of the active MLflow run (None without one): what a
    training worker in another process needs to log metrics into the stage's run live."""
    run = mlflow.active_run()
    return {"tracking_uri": mlflow.get_tracking_uri(), "run_id": run.info.run_id} if run else None


def mark_experiment_kind(client: MlflowClient, experiment_id: str) -> bool:
    """Make the UI open experiment ``experiment_id`` on its runs (model training) unless someone
    chose a kind for it; return whether the tag was written."""
    kind = client.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND_TAG)
    if kind is not None and kind not in UNCHOSEN_KINDS:
        return False
    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    return True


def tidy_run_tags(tags: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``(tags to set, tag keys to delete)`` that turn kedro-mlflow's run tags into the useful
    ones: no tag repeating ``kedro_command``, the runner's class name instead of its repr,
    Kedro's session id under a name that does not pass for MLflow's run id."""
    drop = [key for key in REPEATED_RUN_TAGS if key in tags]
    keep: dict[str, str] = {}
    for old, new in RENAMED_RUN_TAGS.items():
        if old in tags:
            keep[new] = tags[old]
            drop.append(old)
    if "runner" in tags:
        keep["runner"] = runner_name(tags["runner"])
    return keep, drop


def runner_name(value: str) -> str:
    """``SequentialRunner`` from ``<kedro.runner.sequential_runner.SequentialRunner object at
    0x…>`` (or from a class name or path, returned as the last dotted part); ``None``, a session
    run without a runner, ran Kedro's default, ``SequentialRunner``."""
    if value.strip() in ("", "None"):
        return DEFAULT_RUNNER
    match = re.match(r"<([\w.]+) object at 0x[0-9a-fA-F]+>$", value.strip())
    return (match.group(1) if match else value.strip()).rsplit(".", 1)[-1]


def runs_page_url(host: str, port: str | int, experiment_id: str) -> str:
    """The MLflow UI's page of the runs of ``experiment_id``, whatever the browser's switch."""
    return f"http://{host}:{port}/#/experiments/{experiment_id}/runs?workflowType={ML_WORKFLOW}"


def put_scripts_on_path() -> Path | None:
    """Put this interpreter's scripts folder (the venv's ``bin``) first on ``PATH`` when it
    holds ``mlflow`` and is not on ``PATH`` yet; return the folder added (None otherwise)."""
    scripts = Path(sysconfig.get_path("scripts"))
    path = os.environ.get("PATH", "")
    on_path = {Path(p).absolute() for p in path.split(os.pathsep) if p}
    if not (scripts / "mlflow").is_file() or scripts.absolute() in on_path:
        return None
    os.environ["PATH"] = os.pathsep.join(p for p in (str(scripts), path) if p)
    return scripts
