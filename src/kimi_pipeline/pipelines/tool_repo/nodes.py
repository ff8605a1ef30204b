"""Thin nodes of the tool_repo stage: catalog data in, library call, catalog data out."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any, Callable

import mlflow
import polars as pl

from kimi_pipeline.llm import make_backend
from kimi_pipeline.records import QuarantineRecord, ToolSpec, from_frame, to_frame
from kimi_pipeline.tools import report
from kimi_pipeline.tools.config import ToolRepoConfig
from kimi_pipeline.tools.evolve import evolve_synthetic_tools
from kimi_pipeline.tools.ingest import ingest_files
from kimi_pipeline.tools.mcp_harvest import harvest_servers
from kimi_pipeline.tools.repository import (
    build_repository,
    failed_servers,
    tools_from_evolution,
    tools_from_mcp,
)


def harvest_mcp_tools(params: dict[str, Any]):
    config = ToolRepoConfig.model_validate(params)
    start = time.perf_counter()
    result = harvest_servers(config.mcp_servers)
    failures = failed_servers(result.servers, required=config.require_all_sources)
    tools, rejected = tools_from_mcp(result.tools, config.normalise)
    rejected = failures + rejected
    stats = {"servers": [asdict(s) for s in result.servers], "seconds": _since(start)}
    return _tools(tools), _quarantine(rejected), stats


def ingest_tool_files(raw_tool_specs: dict[str, Callable[[], str]], params: dict[str, Any]):
    config = ToolRepoConfig.model_validate(params)
    start = time.perf_counter()
    tools, rejected = [], []
    for item in ingest_files(raw_tool_specs, config.normalise):
        (tools if isinstance(item, ToolSpec) else rejected).append(item)
    stats = {"files": len(raw_tool_specs), "seconds": _since(start)}
    return _tools(tools), _quarantine(rejected), stats


def evolve_tools(params: dict[str, Any]):
    config = ToolRepoConfig.model_validate(params)
    start = time.perf_counter()
    if not config.evolve.enabled:
        return _tools([]), _quarantine([]), {"enabled": False, "seconds": _since(start)}
    result = evolve_synthetic_tools(make_backend(config.evolve.backend), config.evolve)
    tools, rejected = tools_from_evolution(result, config.normalise)
    return _tools(tools), _quarantine(rejected), {**result.stats, "seconds": _since(start)}


def build_tool_repository(mcp_tools, file_tools, synthetic_tools, params: dict[str, Any]):
    config = ToolRepoConfig.model_validate(params)
    start = time.perf_counter()
    sources, unreadable = [], []
    for frame in (mcp_tools, file_tools, synthetic_tools):
        tools, bad = from_frame(frame, ToolSpec, stage="tool_repo")
        sources.append(tools)
        unreadable += bad
    build = build_repository(sources, config)
    stats = {**build.stats, "unreadable_rows": len(unreadable), "seconds": _since(start)}
    return _tools(build.tools), pl.DataFrame(build.map_rows), stats


def collect_quarantine(mcp: pl.DataFrame, files: pl.DataFrame, synthetic: pl.DataFrame):
    return pl.concat([mcp, files, synthetic], how="vertical")


def report_tool_repo(
    tool_repository: pl.DataFrame,
    tool_quarantine: pl.DataFrame,
    tool_map: pl.DataFrame,
    mcp_stats: dict[str, Any],
    file_stats: dict[str, Any],
    evolution_stats: dict[str, Any],
    repository_stats: dict[str, Any],
    params: dict[str, Any],
):
    config = ToolRepoConfig.model_validate(params)
    tools, _ = from_frame(tool_repository, ToolSpec, stage="tool_repo")
    rejected, _ = from_frame(tool_quarantine, QuarantineRecord, stage="tool_repo")
    seconds = {
        "mcp": mcp_stats["seconds"],
        "files": file_stats["seconds"],
        "evolve": evolution_stats["seconds"],
        "build": repository_stats["seconds"],
    }
    stats = {
        **{k: v for k, v in repository_stats.items() if k != "seconds"},
        "files_read": file_stats["files"],
        "evolution": {k: v for k, v in evolution_stats.items() if k != "seconds"},
        "seconds": seconds,
    }
    summary = report.build_report(tools, rejected, mcp_stats["servers"], stats)
    if (failures := report.source_failures_tag(summary)) and mlflow.active_run():
        mlflow.set_tag("tool_repo.source_failures", failures)
    sample = tool_repository.sample(n=min(config.sample_size, tool_repository.height), seed=0)
    return (
        summary,
        report.report_metrics(summary),
        sample,
        report.map_plot(tool_map.to_dicts()),
        report.counts_plot(summary),
    )


def _tools(tools: list[ToolSpec]) -> pl.DataFrame:
    return to_frame(tools, ToolSpec)


def _quarantine(records: list[QuarantineRecord]) -> pl.DataFrame:
    return to_frame(records, QuarantineRecord)


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)
