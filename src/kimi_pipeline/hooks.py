"""Project hooks: parameter validation at load, input checks before a run, dataset lineage.

Inputs: before any node (and before kedro-mlflow opens a run) every input the selected
pipeline needs from outside itself must exist; a missing one stops the run with one line
naming the dataset, the stage that makes it and the command to run (``MissingInputError``).

Lineage: every versioned dataset a run loads or saves is tagged on its MLflow run as
``in.<name>`` / ``out.<name>`` = version (keys short enough for the run page to show the
dataset's name); the whole map, with the path of every file loaded or saved, versioned or not,
is kept as the artefact ``lineage.json``; the git commit and the Kedro env are tagged too. So
from a dataset version one finds its run (``kimi_pipeline.tracking.runs_for``), and from a run
every input and output version.

The MLflow UI (``MlflowViewHook``): the experiment's kind is model training, so the UI opens it
on its runs rather than on the empty GenAI traces page, and ``kedro mlflow ui`` prints the URL
of that page (MLflow 3.17's UI goes by its own GenAI / Model training switch first, see
``kimi_pipeline.tracking``); kedro-mlflow's run tags are tidied (the runner's class name, no
tags repeating ``kedro_command``); and ``kedro mlflow ui`` finds ``mlflow`` beside this
interpreter without an activated virtual environment.

Time: every node's wall seconds are logged as it ends (``node sft.train_sft: 9 min 5 s``) and
on the MLflow run as ``seconds/<node>``, with running totals ``seconds/stage/<stage>`` (the
node name's namespace) and ``seconds/run``; the run's end prints the stages' times, so
"where did the time go" is answered without timestamps.

Run status: a run is tagged with the process that owns it (``kimi.pid``, ``kimi.host``,
``kimi.pid_started``). SIGTERM or SIGINT during a pipeline ends its run ``KILLED`` (tag
``kimi.killed_by``) before the signal does what it would have done; a failing node ends it
``FAILED`` (kedro-mlflow and ``LineageHook``). SIGKILL leaves no chance to do anything, so the
next run of the experiment closes every run left ``RUNNING`` whose process is gone from this
host as ``KILLED``, with the tag ``kimi.closed_by`` saying so.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import mlflow
import psutil
from kedro.framework.hooks import hook_impl

from kimi_pipeline.config import parameter_sources, validate_parameters
from kimi_pipeline.errors import MissingInputError
from kimi_pipeline.io.optional import OptionalDataset
from kimi_pipeline.tracking import (
    lineage_tag,
    mark_experiment_kind,
    put_scripts_on_path,
    runs_page_url,
    tidy_run_tags,
)

log = logging.getLogger(__name__)


class ParameterValidationHook:
    """Validate all stage parameters as soon as the context exists (before any node runs)."""

    @hook_impl
    def after_context_created(self, context) -> None:
        conf_source = Path(context.config_loader.conf_source)
        loader = context.config_loader
        envs = [loader.base_env, context.env or loader.default_run_env]
        sources = parameter_sources([conf_source / e for e in dict.fromkeys(envs) if e])
        runtime = loader.runtime_params or {}
        sources.update({key: "--params on the command line" for key in _flat_keys(runtime)})
        validate_parameters(context.params, sources)


def _flat_keys(value: Any, prefix: str = "") -> list[str]:
    if not isinstance(value, dict):
        return [prefix] if prefix else []
    keys = [prefix] if prefix else []
    for key, item in value.items():
        keys += _flat_keys(item, f"{prefix}.{key}" if prefix else str(key))
    return keys


class InputCheckHook:
    """Refuse to start a pipeline whose external inputs do not exist yet."""

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens a run that would stay empty
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        missing = [name for name in sorted(pipeline.inputs()) if _is_missing(name, catalog)]
        if missing:
            raise MissingInputError(missing_inputs_message(missing, run_params.get("env")))


def _is_missing(name: str, catalog) -> bool:
    if name == "parameters" or name.startswith("params:"):
        return False
    try:
        if isinstance(catalog.get(name), OptionalDataset):  # absent is a valid state for these
            return False
        return not catalog.exists(name)
    except Exception as exc:  # a dataset that cannot tell is let through to fail on load
        log.debug("cannot check whether %s exists: %s", name, exc)
        return False


def missing_inputs_message(missing: list[str], env: str | None) -> str:
    """One line: the missing inputs grouped by the stage that makes them, with the commands."""
    from kimi_pipeline.pipeline_registry import STAGES, dataset_producers

    producers = dataset_producers()
    env_flag = f" --env={env}" if env else ""
    by_stage: dict[str, list[str]] = {}
    for name in missing:
        by_stage.setdefault(producers.get(name, ""), []).append(f"'{name}'")
    parts = [
        f"{', '.join(names)} made by stage '{stage}' (`kedro run --pipeline={stage}{env_flag}`)"
        for stage, names in sorted(by_stage.items(), key=lambda kv: list(STAGES).index(kv[0])
                                   if kv[0] in STAGES else -1)
        if stage
    ]
    if "" in by_stage:
        parts.insert(0, f"{', '.join(by_stage[''])} made by no stage (check the catalog path)")
    return f"missing input{'s' if len(missing) > 1 else ''}: " + "; ".join(parts) + (
        "; run the producing stage first" if len(by_stage) - ("" in by_stage) else "")


class LineageHook:
    """Tag the active MLflow run with the version and path of each dataset loaded and saved,
    and close the pipeline's run completely when the pipeline ends."""

    def __init__(self) -> None:
        self._catalog = None
        self._env = None
        self._project_path: Path | None = None
        self._lineage: dict[str, dict[str, dict[str, str]]] = {"loaded": {}, "saved": {}}
        self._tagged_run: str | None = None
        self._outer_run: str | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._env = context.env or context.config_loader.default_run_env
        self._project_path = Path(context.project_path)
        run = mlflow.active_run()  # a run an orchestrator started itself is left to it
        self._outer_run = run.info.run_id if run else None

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._close_runs()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._close_runs("FAILED")

    def _close_runs(self, status: str = "FINISHED") -> None:
        """kedro-mlflow re-opens its run at every node, which can stack it in MLflow's run stack;
        one end_run then leaves it active and the next session in the same process (a notebook,
        the tests) would log into it. End the pipeline's run completely."""
        while (run := mlflow.active_run()) and run.info.run_id != self._outer_run:
            mlflow.end_run(status)

    @hook_impl
    def after_catalog_created(self, catalog) -> None:
        self._catalog = catalog
        self._lineage = {"loaded": {}, "saved": {}}

    @hook_impl
    def before_node_run(self) -> None:
        run = mlflow.active_run()
        if run and self._tagged_run != run.info.run_id:
            self._tagged_run = run.info.run_id
            mlflow.set_tags({"kedro_env": self._env or "", **_git_tags(self._project_path)})

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str) -> None:
        self._record("loaded", dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        self._record("saved", dataset_name)

    def _record(self, event: str, name: str) -> None:
        if name.startswith("params:") or name == "parameters" or self._catalog is None:
            return
        entry = dataset_version(self._catalog.get(name), event)
        if entry is None or mlflow.active_run() is None:
            return
        self._lineage[event][name] = entry
        if entry.get("version"):
            mlflow.set_tag(lineage_tag(event, name), entry["version"])
        mlflow.log_dict(self._lineage, "lineage.json")


def dataset_version(dataset, event: str) -> dict[str, str] | None:
    """Path and version a dataset was just loaded from / saved to (None when it has no file)."""
    if dataset is None:
        return None
    version = None
    try:
        if getattr(dataset, "_version", None):
            version = (dataset.resolve_load_version() if event == "loaded"
                       else dataset.resolve_save_version())
            path = dataset._get_versioned_path(version)
        else:
            path = getattr(dataset, "_filepath", None) or getattr(dataset, "_path", None)
    except Exception as exc:  # lineage must never break a run
        log.warning("no lineage for %s: %s", dataset, exc)
        return None
    if path is None:
        return None
    entry = {"path": str(path)}
    if version:
        entry["version"] = version
    return entry


def _git_tags(project_path: Path | None) -> dict[str, str]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project_path, capture_output=True, text=True, timeout=10
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()} if commit else {}


class MlflowViewHook:
    """What the MLflow UI shows (see the module docstring): the experiment marked as model
    training, tidy run tags, ``mlflow`` on ``PATH`` for ``kedro mlflow ui``."""

    def __init__(self) -> None:
        self._outer_run: str | None = None

    @hook_impl(trylast=True)  # after kedro-mlflow set the tracking URI and the experiment up
    def after_context_created(self, context) -> None:
        ui = _mlflow_ui_options()
        if ui is not None:
            put_scripts_on_path()  # kedro-mlflow starts `mlflow ui` from PATH
        run = mlflow.active_run()  # a run an orchestrator started itself is left to it
        self._outer_run = run.info.run_id if run else None
        config = getattr(context, "mlflow", None)  # kedro-mlflow's configuration
        if run is not None or config is None:
            return
        experiment = _mark_experiment(config)
        if experiment is not None and ui is not None:
            url = runs_page_url(ui.get("host") or config.ui.host, ui.get("port") or config.ui.port,
                                experiment.experiment_id)
            # on a line of its own: the log handler would wrap the URL
            click.echo(f"MLflow UI, the runs of experiment '{experiment.name}':\n  {url}")

    @hook_impl(trylast=True)  # after kedro-mlflow tagged its run with Kedro's run parameters
    def before_pipeline_run(self) -> None:
        run = mlflow.active_run()
        if run is None or run.info.run_id == self._outer_run:
            return
        try:
            client = mlflow.MlflowClient()
            keep, drop = tidy_run_tags(client.get_run(run.info.run_id).data.tags)
            for key in drop:
                client.delete_tag(run.info.run_id, key)
            if keep:
                mlflow.set_tags(keep)
        except Exception as exc:  # tags must never stop a run
            log.warning("could not tidy the tags of MLflow run %s: %s", run.info.run_id, exc)


def _mark_experiment(config) -> mlflow.entities.Experiment | None:
    """The project's MLflow experiment (None when it cannot be read), marked model training."""
    try:
        client = mlflow.MlflowClient(config.server.mlflow_tracking_uri)
        experiment = client.get_experiment_by_name(config.tracking.experiment.name)
        if experiment is not None:
            mark_experiment_kind(client, experiment.experiment_id)
        return experiment
    except Exception as exc:  # the UI's first page must never stop a run
        log.warning("could not mark the MLflow experiment as model training: %s", exc)
        return None


def _mlflow_ui_options() -> dict[str, Any] | None:
    """The options of ``kedro mlflow ui`` when this session is that command's (else None)."""
    ctx = click.get_current_context(silent=True)
    is_ui = ctx is not None and ctx.info_name == "ui" and ctx.parent is not None \
        and ctx.parent.info_name == "mlflow"
    return dict(ctx.params) if is_ui else None


def duration(seconds: float) -> str:
    """``9 min 5 s``, ``42.0 s``: a wall time as people read it."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


class NodeTimeHook:
    """Wall seconds of each node and stage (see the module docstring)."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._stages: dict[str, float] = defaultdict(float)

    @hook_impl
    def before_pipeline_run(self) -> None:
        self._started, self._stages = {}, defaultdict(float)

    @hook_impl
    def before_node_run(self, node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node) -> None:
        seconds = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        stage = node.namespace or node.name
        self._stages[stage] += seconds
        log.info("node %s: %s", node.name, duration(seconds))
        if mlflow.active_run() is None:
            return
        try:
            mlflow.log_metrics({f"seconds/{node.name}": seconds,
                                f"seconds/stage/{stage}": self._stages[stage],
                                "seconds/run": sum(self._stages.values())})
        except Exception as exc:  # timings must never stop a run
            log.warning("could not log the time of node %s: %s", node.name, exc)

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._stages:
            log.info("time by stage: %s; in all %s", ", ".join(
                f"{stage} {duration(s)}" for stage, s in self._stages.items()),
                duration(sum(self._stages.values())))


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEAD_OWNER_NOTE = "a later run ({run_id}): its process had died (SIGKILL?)"


class RunStatusHook:
    """Tag the pipeline's run with its process; end it ``KILLED`` on SIGTERM/SIGINT; close
    the runs of dead processes left ``RUNNING`` (see the module docstring)."""

    def __init__(self) -> None:
        self._outer_run: str | None = None
        self._run_id: str | None = None
        self._previous: dict[int, Any] = {}

    @hook_impl
    def after_context_created(self) -> None:
        run = mlflow.active_run()  # a run an orchestrator started itself is left to it
        self._outer_run = run.info.run_id if run else None

    @hook_impl(trylast=True)  # after kedro-mlflow opened the pipeline's run
    def before_pipeline_run(self) -> None:
        run = mlflow.active_run()
        self._run_id = None
        if run is None or run.info.run_id == self._outer_run:
            return  # no tracking for this pipeline, or the orchestrator's run
        self._run_id = run.info.run_id
        mlflow.set_tags(owner_tags())
        try:
            close_dead_runs(mlflow.MlflowClient(), run.info.experiment_id, self._run_id)
        except Exception as exc:  # housekeeping must never stop a run
            log.warning("could not close the runs of dead processes: %s", exc)
        self._install()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._restore()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._restore()

    def _install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers (a session run from a thread)
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if previous is signal.SIG_IGN or previous is None:
                continue  # ignored (e.g. SIGINT of a background job) or not set from Python
            self._previous[sig] = previous
            signal.signal(sig, self._on_signal)

    def _restore(self) -> None:
        while self._previous:
            sig, previous = self._previous.popitem()
            signal.signal(sig, previous)

    def _on_signal(self, signum: int, _frame) -> None:
        """End the run KILLED, then let the signal do what it did before (exit, or raise
        KeyboardInterrupt)."""
        self._restore()
        try:
            self._end_killed(signal.Signals(signum).name)
        except Exception as exc:  # the signal must still take effect
            log.warning("could not end the MLflow run as KILLED: %s", exc)
        signal.raise_signal(signum)

    def _end_killed(self, name: str) -> None:
        log.warning("%s: ending MLflow run %s as KILLED", name, self._run_id)
        client = mlflow.MlflowClient()
        client.set_tag(self._run_id, "kimi.killed_by", name)
        while (run := mlflow.active_run()) and run.info.run_id != self._outer_run:
            mlflow.end_run("KILLED")
        if client.get_run(self._run_id).info.status == "RUNNING":  # open in another thread
            client.set_terminated(self._run_id, "KILLED")


def owner_tags() -> dict[str, str]:
    """Which process on which host owns a run (its start time tells a reused pid apart)."""
    me = psutil.Process()
    return {"kimi.pid": str(me.pid), "kimi.host": socket.gethostname(),
            "kimi.pid_started": repr(me.create_time())}


def close_dead_runs(client, experiment_id: str, current_run: str) -> list[str]:
    """End as KILLED, with a ``kimi.closed_by`` note, every RUNNING run of the experiment whose
    owning process on this host is gone; return their ids. Runs of other hosts, and runs
    without an owner tag, are left alone (nothing here can tell whether they still live)."""
    host = socket.gethostname()
    runs = client.search_runs(
        [experiment_id], max_results=1000,
        filter_string=f"attributes.status = 'RUNNING' and tags.`kimi.host` = '{host}'")
    closed = []
    for run in runs:
        tags = run.data.tags
        if run.info.run_id == current_run or "kimi.pid" not in tags:
            continue
        if owner_alive(int(tags["kimi.pid"]), tags.get("kimi.pid_started")):
            continue
        note = DEAD_OWNER_NOTE.format(run_id=current_run)
        client.set_tag(run.info.run_id, "kimi.closed_by", note)
        client.set_terminated(run.info.run_id, "KILLED")
        log.warning("closed MLflow run %s as KILLED: its process %s had died",
                    run.info.run_id, tags["kimi.pid"])
        closed.append(run.info.run_id)
    return closed


def owner_alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` still runs and is the one that started at ``started``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:  # dead, its parent has not reaped it yet
            return False
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return started is None or abs(created - float(started)) < 0.01
