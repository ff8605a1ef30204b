"""``kimi-pipeline report`` (also ``kedro report``): the newest run's headline table per stage.

Every stage ends in a versioned JSON report dataset (``tool_repo_report`` … ``rl_report`` in
``conf/base/catalog*.yml``). For each stage this loads the newest version through the
project's catalog for ``--env`` (the config loader ``kimi_pipeline.doctor`` uses) and prints
the stage's headline with rich, titled with the dataset version and its time: the tool counts,
the synthesis totals, the filtering funnel, SFT's evaluation before/after, the gym's pass@k per
domain (base vs SFT), the critic's agreement with the verifiers, RL's held-out reward before/
after. A stage with no saved report is listed as ``not run yet`` with the command that makes
it. A report whose fields a headline does not know (an older or newer schema) is shown as its
top-level numbers instead of failing.

Each headline is a small function registered with ``@headline(stage, dataset, title)`` in
``HEADLINES``, returning ``Headline(columns, rows, caption)``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import click

from kimi_pipeline.errors import UserError

VERSION_FORMAT = "%Y-%m-%dT%H.%M.%S.%fZ"  # Kedro's dataset version strings (UTC)


@dataclass
class Headline:
    """One stage's table: column names, rows of cells, a line under it (or None)."""

    columns: list[str]
    rows: list[list[Any]]
    caption: str | None = None


@dataclass
class StageHeadline:
    """Where a stage's report lives and how its headline is drawn from it."""

    stage: str  # the pipeline name (kedro run --pipeline=<stage>)
    dataset: str  # the catalog entry the stage's report node writes
    title: str  # the table's title
    table: Callable[[dict[str, Any]], Headline]  # report -> headline


@dataclass
class StageResult:
    """What ``report`` found for one stage."""

    stage: str
    dataset: str
    state: str  # "ok", "not run", "not in catalog" or "unreadable"
    version: str | None = None  # the newest saved version
    headline: Headline | None = None
    note: str = ""  # the run command for a stage not run, the reason for the other states
    report: dict[str, Any] = field(default_factory=dict)


HEADLINES: dict[str, StageHeadline] = {}


def headline(stage: str, dataset: str, title: str):
    """Register ``fn(report) -> Headline`` as the headline of ``stage`` (DAG order)."""

    def wrap(fn: Callable[[dict[str, Any]], Headline]) -> Callable[[dict[str, Any]], Headline]:
        HEADLINES[stage] = StageHeadline(stage, dataset, title, fn)
        return fn

    return wrap


def dig(report: dict[str, Any], dotted: str) -> Any:
    """``report["a"]["b"]`` for ``"a.b"``; None where a key is absent."""
    value: Any = report
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def metric_rows(report: dict[str, Any], fields: list[tuple[str, str]]) -> list[list[Any]]:
    """``[label, value]`` for each (label, dotted key) present in the report."""
    return [[label, dig(report, key)] for label, key in fields if dig(report, key) is not None]


def fmt(value: Any) -> str:
    """A cell: floats to 4 significant digits, the rest as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------ the headlines


@headline("tool_repo", "tool_repo_report", "Tool repository")
def _tool_repo(report: dict[str, Any]) -> Headline:
    rows = metric_rows(report, [("tools", "tools"), ("domains", "domains"),
                                ("near duplicates merged", "near_duplicates_merged"),
                                ("quarantined", "quarantined")])
    rows += [[f"from {source}", n] for source, n in (report.get("by_source") or {}).items()]
    for server in report.get("mcp_servers") or []:
        state = (f"ok, {server.get('tools')} tools" if server.get("ok")
                 else f"failed: {server.get('error')}")
        rows.append([f"MCP server {server.get('name')}", state])
    return Headline(["metric", "value"], rows)


@headline("synthesis", "synthesis_report", "Synthesis")
def _synthesis(report: dict[str, Any]) -> Headline:
    return Headline(["metric", "value"], metric_rows(report, [
        ("agents", "agents"), ("tasks", "tasks"), ("trajectories", "trajectories"),
        ("multi-turn share", "multi_turn_share"), ("user turns (mean)", "user_turns_mean"),
        ("tool calls (mean)", "tool_calls_mean"),
        ("state rubric met", "state_rubric_met_rate.all"), ("quarantined", "quarantined")]))


@headline("filtering", "filter_report", "Filtering funnel")
def _filtering(report: dict[str, Any]) -> Headline:
    rows = [[step, n] for step, n in (report.get("funnel") or {}).items()]
    quality = report.get("judge_quality") or {}
    caption = (f"judge precision {fmt(quality.get('precision'))}, recall "
               f"{fmt(quality.get('recall'))}" if quality else None)
    return Headline(["step", "rows"], rows, caption)


SFT_METRICS = ["success_rate", "mean_score", "parse_validity_rate", "schema_validity_rate",
               "right_tool_rate", "finished_rate", "episodes"]


@headline("sft", "sft_report", "SFT: the agent before and after")
def _sft(report: dict[str, Any]) -> Headline:
    before = dig(report, "evaluation.initial") or {}
    after = dig(report, "evaluation.sft") or {}
    rows = [[key, before.get(key), after.get(key)] for key in SFT_METRICS
            if key in before or key in after]
    training = report.get("training") or {}
    parts = [f"{label} {fmt(training[key])}" for label, key in [
        ("steps", "steps"), ("final loss", "final_loss"), ("eval loss", "final_eval_loss"),
        ("tokens/s", "tokens_per_s"), ("dtype", "matmul_dtype")] if key in training]
    mixed = dig(report, "packing.demonstrations") or {}
    if mixed.get("distinct"):
        parts.append(f"{mixed['distinct']} verified demonstrations at {fmt(mixed.get('share'))} "
                     "of the examples")
    caption = ", ".join(parts) or None
    return Headline(["metric", "base model", "SFT model"], rows, caption)


@headline("gym", "gym_report", "Gym: pass@k per domain")
def _gym(report: dict[str, Any]) -> Headline:
    compared = [r for r in report.get("base_vs_policy") or [] if r.get("scope") == "domain"]
    if compared:
        keys = [k.removeprefix("base_") for k in compared[0] if k.startswith("base_pass@")]
        columns = ["domain", "tasks", *[f"base {k}" for k in keys], *[f"SFT {k}" for k in keys]]
        rows = [[r["name"], r.get("tasks"), *[r.get(f"base_{k}") for k in keys],
                 *[r.get(f"policy_{k}") for k in keys]] for r in compared]
    else:
        domains = report.get("domains") or []
        keys = [k for k in (domains[0] if domains else {}) if k.startswith("pass@")]
        columns = ["domain", "tasks", *keys]
        rows = [[r.get("domain"), r.get("tasks"), *[r.get(k) for k in keys]] for r in domains]
    overall = report.get("overall") or {}
    caption = ("overall (SFT): " + ", ".join(f"{k} {fmt(v)}" for k, v in overall.items())
               if overall else None)
    return Headline(columns, rows, caption)


@headline("critic", "critic_report", "Critic: agreement with the verifiers")
def _critic(report: dict[str, Any]) -> Headline:
    table = report.get("agreement") or {}
    columns = list(dict.fromkeys(k for scores in table.values() for k in scores))
    rows = [[phase, *[scores.get(k) for k in columns]] for phase, scores in table.items()]
    chance = report.get("chance")
    return Headline(["critic", *columns], rows,
                    f"chance = {fmt(chance)}" if chance is not None else None)


@headline("rl", "rl_report", "RL: held-out reward before and after")
def _rl(report: dict[str, Any]) -> Headline:
    pivot: dict[str, dict[str, Any]] = {}
    for row in dig(report, "heldout.table") or []:
        if row.get("scope") in ("all", "domain"):
            entry = pivot.setdefault(str(row.get("name")), {"tasks": row.get("tasks")})
            entry[str(row.get("model"))] = row.get("reward")
    def row(name: str, n: Any, before: Any, after: Any) -> list[Any]:
        gain = (after - before) * 100 if None not in (before, after) else None
        return [name, n, before, after, gain]

    rows = [row(name, entry["tasks"], entry.get("sft_model"), entry.get("rl_model"))
            for name, entry in pivot.items()]
    agent = report.get("tool_tasks") or {}
    if {"sft_model", "rl_model"} <= set(agent):  # played as the agent: rubric success
        rows.append(row("tool tasks (agent)", agent["rl_model"].get("episodes"),
                        agent["sft_model"].get("success_rate"),
                        agent["rl_model"].get("success_rate")))
    gain = dig(report, "heldout.gain_points")
    caption = (f"{report.get('iterations')} iterations; gain {fmt(gain)} points"
               if gain is not None else None)
    return Headline(["tasks", "n", "SFT model", "RL model", "gain (points)"], rows, caption)


def fallback(report: dict[str, Any]) -> Headline:
    """The report's top-level numbers and strings, for a schema no headline knows."""
    rows = [[k, v] for k, v in report.items() if isinstance(v, (int, float, str))]
    return Headline(["field", "value"], rows, "(top-level fields: no headline for this schema)")


def draw(spec: StageHeadline, report: dict[str, Any]) -> Headline:
    """The stage's headline, or the fallback when its fields are not there."""
    try:
        table = spec.table(report)
    except (KeyError, TypeError, AttributeError, ValueError):
        return fallback(report)
    return table if table.rows else fallback(report)


# ------------------------------------------------------------------------------ loading


def run_command(stage: str, env: str) -> str:
    """The command that makes a stage's report (the env named unless it is the default)."""
    return f"kedro run --pipeline={stage}" + (f" --env={env}" if env != "local" else "")


def version_time(version: str | None) -> str:
    """A Kedro version string as a readable UTC time ('' when it is not one)."""
    try:
        stamp = datetime.strptime(str(version), VERSION_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return ""
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def load_stage(config: Any, spec: StageHeadline) -> StageResult:
    """The newest saved report of one stage through the project's catalog entry for it."""
    from kedro.framework.context.context import _convert_paths_to_absolute_posix
    from kedro.io import DataCatalog

    entry = config.catalog.get(spec.dataset)
    if entry is None:
        return StageResult(spec.stage, spec.dataset, "not in catalog",
                           note=f"no '{spec.dataset}' entry in conf/*/catalog*.yml")
    conf = _convert_paths_to_absolute_posix(config.project_path,
                                            copy.deepcopy({spec.dataset: entry}))
    try:
        dataset = DataCatalog.from_config(conf).get(spec.dataset)
        if not dataset.exists():
            return StageResult(spec.stage, spec.dataset, "not run",
                               note=run_command(spec.stage, config.env))
        resolve = getattr(dataset, "resolve_load_version", None)
        version = resolve() if resolve else None
        report = dataset.load()  # the version just resolved (the dataset caches it)
    except Exception as exc:  # noqa: BLE001 -- one unreadable report must not hide the others
        return StageResult(spec.stage, spec.dataset, "unreadable",
                           note=f"{spec.dataset} could not be read: {' '.join(str(exc).split())}")
    if not isinstance(report, dict):
        report = {"report": report}
    return StageResult(spec.stage, spec.dataset, "ok", version, draw(spec, report), report=report)


def collect(env: str | None = None, project_path: Any = None, stages: tuple[str, ...] = ()
            ) -> tuple[Any, list[StageResult]]:
    """The project's configuration for ``env`` and each selected stage's newest report."""
    from kimi_pipeline.doctor import load_project_config

    config = load_project_config(env, project_path)
    chosen = [spec for name, spec in HEADLINES.items() if not stages or name in stages]
    return config, [load_stage(config, spec) for spec in chosen]


# ------------------------------------------------------------------------------ printing


def render(config: Any, results: list[StageResult]) -> None:
    """One rich table per stage that ran; one line per stage that did not."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # report text is shown as it is, never read as rich markup

    console = Console()
    for result in results:
        spec = HEADLINES[result.stage]
        if result.state != "ok" or result.headline is None:
            state = f"not run yet ({result.note})" if result.state == "not run" else result.note
            console.print(Text.assemble("\n", (result.stage, "bold"), f": {state}"),
                          soft_wrap=True)
            continue
        when = version_time(result.version)
        console.print(Text.assemble(
            "\n", (result.stage, "bold"), f": {spec.title} ({result.dataset} version "
            f"{result.version or 'unversioned'}{f', {when}' if when else ''})"), soft_wrap=True)
        table = Table()
        for i, column in enumerate(result.headline.columns):
            table.add_column(Text(column), justify="left" if i == 0 else "right")
        for row in result.headline.rows:
            table.add_row(*[Text(fmt(cell)) for cell in row])
        console.print(table)
        if result.headline.caption:  # below the table, unwrapped (a caption wraps to its width)
            console.print(Text(result.headline.caption), soft_wrap=True)


@click.command(name="report")
@click.option("--env", "-e", default=None,
              help="Kedro environment whose catalog is read (default: KEDRO_ENV, else local).")
@click.option("--stage", "stages", multiple=True, type=click.Choice(list(HEADLINES)),
              help="Only these stages (repeatable); default: every stage in DAG order.")
@click.pass_context
def report_command(ctx: click.Context, env: str | None, stages: tuple[str, ...]) -> None:
    """Print the newest run's headline table of each stage; stages without a saved report are
    listed with the command that makes it."""
    try:
        config, results = collect(env, getattr(ctx.obj, "project_path", None), stages)
    except UserError as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None
    render(config, results)
