"""``kimi-pipeline doctor`` (also ``kedro doctor``): what the configured run will use, and why.

It reads the project's configuration the way a run does (Kedro's config loader for ``--env``
over ``base``; ``local`` when no env is given, ``KEDRO_ENV`` honoured), runs every check of
``kimi_pipeline.doctor_checks.CHECKS`` — CPU capability and precision, threads, library
versions, CUDA, apex, DeepSpeed ops and configs, the policy checkpoint, the MCP servers (started
and listed), OpenAI-compatible endpoints, the MLflow tracking URI, disk and memory against the
run's estimated needs — and prints one table (``--json``: one JSON object). It exits 1 when a
row is ``missing`` (something the configured run needs is absent; the row says the fix), 0 when
every row is ``ok`` or ``warn``. A check that fails to run is itself a ``missing`` row, so one
broken component never hides the others.

Kedro is imported only inside ``load_project_config``; ``kimi_pipeline.summary`` (``report``)
reuses it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from kimi_pipeline.doctor_checks import CHECKS, run_check
from kimi_pipeline.doctor_context import CheckResult, DoctorContext, make_context
from kimi_pipeline.errors import UserError

STYLES = {"ok": "green", "warn": "yellow", "missing": "bold red"}


@dataclass
class ProjectConfig:
    """A project's configuration for one environment, as a run's config loader merges it."""

    project_path: Path  # the Kedro project root
    env: str  # the environment read over base
    parameters: dict[str, Any]  # merged parameters*.yml
    catalog: dict[str, Any]  # merged catalog*.yml
    mlflow: dict[str, Any]  # merged mlflow.yml (kedro-mlflow's settings)
    sources: dict[str, str] = field(default_factory=dict)  # dotted parameter -> file setting it
    errors: list[str] = field(default_factory=list)  # sections that failed to load, one line each


def load_project_config(env: str | None = None, project_path: str | Path | None = None
                        ) -> ProjectConfig:
    """Load parameters, catalog and mlflow.yml with the project's config loader (settings.py),
    as ``kedro run --env`` would; the one function that imports Kedro. An unknown env or a
    folder that is not a Kedro project is a ``UserError``."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project
    from kedro.utils import find_kedro_project

    from kimi_pipeline.cli import check_environment
    from kimi_pipeline.config import parameter_sources

    root = Path(project_path or find_kedro_project(Path.cwd()) or Path.cwd()).resolve()
    if not (root / "pyproject.toml").is_file():
        raise UserError(f"{root} is not a Kedro project (no pyproject.toml); run from the "
                        "project folder")
    bootstrap_project(root)
    env = env or os.environ.get("KEDRO_ENV")
    check_environment(root, None, env)
    conf = root / settings.CONF_SOURCE
    loader = settings.CONFIG_LOADER_CLASS(conf_source=str(conf), env=env,
                                          **settings.CONFIG_LOADER_ARGS)
    loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**"])
    sections, errors = {}, []
    for key in ("parameters", "catalog", "mlflow"):
        try:
            sections[key] = dict(loader[key])
        except Exception as exc:  # noqa: BLE001 -- reported as the config row, checks go on
            sections[key] = {}
            if not (key == "mlflow" and type(exc).__name__ == "MissingConfigException"):
                errors.append(f"{key}: {' '.join(str(exc).split())}")
    env = env or loader.default_run_env
    sources = parameter_sources([conf / loader.base_env, conf / env])
    return ProjectConfig(root, env, sections["parameters"], sections["catalog"],
                         sections["mlflow"], sources, errors)


def diagnose(env: str | None = None, project_path: str | Path | None = None,
             timeout_s: float = 20.0, only: tuple[str, ...] = (), verbose: bool = False
             ) -> tuple[DoctorContext, list[CheckResult]]:
    """Every registered check (or those named in ``only``, in registry order) on the project's
    configuration for ``env``."""
    config = load_project_config(env, project_path)
    ctx = make_context(config.project_path, config.env, config.parameters, mlflow=config.mlflow,
                       timeout_s=timeout_s, sources=config.sources, config_errors=config.errors)
    names = [name for name in CHECKS if not only or name in only]
    return ctx, [row for name in names for row in run_check(name, ctx, verbose)]


def as_json(ctx: DoctorContext, rows: list[CheckResult]) -> dict[str, Any]:
    """The machine-readable result: ok flag, counts by status, every row."""
    counts = {status: sum(r.status == status for r in rows) for status in STYLES}
    return {"ok": counts["missing"] == 0, "project": str(ctx.project_path), "env": ctx.env,
            "counts": counts, "checks": [r.as_dict() for r in rows]}


def render(ctx: DoctorContext, rows: list[CheckResult]) -> None:
    """The table, then one line: the counts and what the exit status means."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"kimi-pipeline doctor: {ctx.project_path} (env {ctx.env})"),
                  show_lines=True, expand=True)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("what will be used, and why", ratio=3, overflow="fold")
    fixes = any(row.fix for row in rows)  # an all-ok table gets no empty fix column
    if fixes:
        table.add_column("fix", ratio=2, overflow="fold")
    for row in rows:
        # Text: details quote commands and errors ("[Errno 2]"), never rich markup
        cells = [Text(row.check), Text(row.status, style=STYLES[row.status]), Text(row.detail)]
        table.add_row(*cells, *([Text(row.fix)] if fixes else []))
    console = Console()
    console.print(table)
    counts = as_json(ctx, rows)["counts"]
    verdict = ("the configured run has what it needs" if not counts["missing"]
               else "the configured run lacks what the missing rows name (exit status 1)")
    console.print(f"{counts['ok']} ok, {counts['warn']} warn, {counts['missing']} missing: "
                  f"{verdict}", soft_wrap=True)


@click.command(name="doctor")
@click.option("--env", "-e", default=None,
              help="Kedro environment read over base (default: KEDRO_ENV, else local).")
@click.option("--json", "json_output", is_flag=True, help="One JSON object instead of the table.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0.1), default=20.0,
              show_default=True, help="Seconds allowed to each MCP server and HTTP probe.")
@click.option("--check", "only", multiple=True, type=click.Choice(list(CHECKS)),
              help="Run only these checks (repeatable).")
@click.option("--verbose", is_flag=True, help="Let a check that fails raise its traceback.")
@click.pass_context
def doctor_command(ctx: click.Context, env: str | None, json_output: bool, timeout_s: float,
                   only: tuple[str, ...], verbose: bool) -> None:
    """Check what the configured run will use, and why; exit 1 when something it needs is
    missing (each such row says the fix)."""
    project = getattr(ctx.obj, "project_path", None)
    # machine output owns stdout: library chatter (logging, DeepSpeed) goes to stderr
    quiet = contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext()
    try:
        with quiet:
            doctor, rows = diagnose(env, project, timeout_s, only, verbose)
    except UserError as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None
    if json_output:
        click.echo(json.dumps(as_json(doctor, rows), indent=2, default=str))
    else:
        render(doctor, rows)
    ctx.exit(1 if any(row.status == "missing" for row in rows) else 0)
