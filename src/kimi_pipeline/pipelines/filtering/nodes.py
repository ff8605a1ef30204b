"""Thin nodes of the filtering stage: catalog data in, library call, catalog data out."""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from kimi_pipeline.curation import report
from kimi_pipeline.curation.filtering import FilteringConfig, filter_trajectories


def filter_trajectories_node(
    trajectories: pl.LazyFrame, agents: pl.DataFrame, gym_tasks: pl.DataFrame | None,
    params: dict[str, Any],
):
    config = FilteringConfig.model_validate(params)
    start = time.perf_counter()
    result = filter_trajectories(trajectories, agents, gym_tasks, config)
    summary = {
        "funnel": result.funnel,
        "judge_quality": result.judge_quality,
        "rejections_by_step": dict(result.rejections.group_by("step").len().iter_rows()),
        "seconds": round(time.perf_counter() - start, 3),
    }
    sample = result.examples.head(config.sample_size)
    return (result.examples, result.rejections, summary, report.metrics(summary), sample,
            report.funnel_plot(result.funnel))
