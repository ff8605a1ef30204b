"""The project's ``kedro run``: Kedro's own run command, with user mistakes told in one line.

Kedro picks this module's ``run`` over its built-in one (a project may ship a ``cli.py`` with a
``cli`` group). It takes every option of Kedro's ``run`` and adds ``--verbose``. Before the
session starts it checks the environment (a folder under the conf source) and the pipeline
names; during the run a ``UserError`` (bad or secret parameters, a missing upstream input, a
required source that failed) ends the command with one ``Error: …`` line and exit status 1.
The traceback is shown only with ``--verbose``; any other exception is a bug and keeps it.

``--pipeline`` is translated to ``--pipelines`` here, so ``kedro run --pipeline=sft`` keeps
working without Kedro's deprecation note.

``kedro doctor`` and ``kedro report`` are the same commands as ``kimi-pipeline doctor`` /
``kimi-pipeline report`` (``kimi_pipeline.doctor``, ``kimi_pipeline.summary``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import CONTEXT_SETTINGS, KedroCliError

from kimi_pipeline.doctor import doctor_command
from kimi_pipeline.errors import UserError
from kimi_pipeline.summary import report_command


class UserMistake(click.ClickException):
    """Printed by click as ``Error: <message>`` with exit status 1, no traceback."""


@click.group(context_settings=CONTEXT_SETTINGS, name=__file__)
def cli() -> None:
    """Project commands of kimi_pipeline."""


cli.add_command(doctor_command, name="doctor")
cli.add_command(report_command, name="report")

_VERBOSE = click.Option(
    ["--verbose"], is_flag=True, default=False,
    help="Show the full traceback of a user error (bad parameter, unknown env/pipeline, …).",
)


@cli.command(name="run", params=[*kedro_run.params, _VERBOSE], help=kedro_run.help)
@click.pass_context
def run(ctx: click.Context, verbose: bool, **options: Any) -> Any:
    """Run the pipeline (Kedro's ``run``); user mistakes end in one line."""
    KedroCliError.VERBOSE_ERROR = verbose
    project_path = _project_path(ctx)
    if options.get("pipeline"):
        options["pipelines"] = [options["pipeline"], *(options.get("pipelines") or [])]
    options["pipeline"] = None
    try:
        check_environment(project_path, options.get("conf_source"), options.get("env"))
        check_pipelines(options.get("pipelines") or [])
        return kedro_run.callback(**options)
    except UserError as exc:
        if verbose:
            raise
        raise UserMistake(one_line(exc)) from None


def _project_path(ctx: click.Context) -> Path:
    """The project Kedro bootstrapped (``kedro run``), else the working directory
    (``python -m``)."""
    return Path(getattr(ctx.obj, "project_path", None) or Path.cwd())


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_environment(project_path: Path, conf_source: str | None, env: str | None) -> None:
    """An unknown ``--env`` (or KEDRO_ENV) is a ``UserError`` listing the environments."""
    from kedro.framework.project import settings

    env = env or os.environ.get("KEDRO_ENV")
    conf = Path(conf_source or settings.CONF_SOURCE)
    conf = conf if conf.is_absolute() else project_path / conf
    if not env or not conf.is_dir() or (conf / env).is_dir():
        return
    known = sorted(p.name for p in conf.iterdir() if p.is_dir() and not p.name.startswith("."))
    raise UserError(
        f"unknown environment '{env}': there is no folder {conf / env}; "
        f"environments: {', '.join(known) or '(none)'}"
    )


def check_pipelines(names: list[str]) -> None:
    """An unknown pipeline name is a ``UserError`` listing the registered pipelines."""
    from kedro.framework.project import pipelines

    known = sorted(pipelines.keys())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(
            f"unknown pipeline{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(n) for n in unknown)}; pipelines: {', '.join(known)}"
        )
