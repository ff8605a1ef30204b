"""Thin nodes of the gym stage: catalog data in, ``kimi_pipeline.gym`` call, catalog data out."""

from __future__ import annotations

from typing import Any

import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.gym import report
from kimi_pipeline.gym.run import GymConfig, generate_tasks, make_policy, roll_out, score
from kimi_pipeline.records import GymResult, GymTask, QuarantineRecord, from_frame, to_frame
from kimi_pipeline.model_folder import ModelFolder


def generate_gym_tasks(params: dict[str, Any]) -> pl.DataFrame:
    return to_frame(generate_tasks(GymConfig.model_validate(params)), GymTask)


def _roll_out(model: ModelFolder, tasks: list[GymTask], config: GymConfig, name: str):
    policy = make_policy(model.path, config)
    with tqdm(total=len(tasks), desc=f"gym generate ({name})", unit="task") as generated, \
            tqdm(total=len(tasks) * config.samples, desc=f"gym verify ({name})",
                 unit="resp") as verified:
        return roll_out(tasks, policy, config, generated.update, verified.update)


def roll_out_policy(sft_model: ModelFolder, gym_tasks: pl.DataFrame, params: dict[str, Any]):
    config = GymConfig.model_validate(params)
    tasks, quarantined = from_frame(gym_tasks, GymTask, stage="gym")
    run = _roll_out(sft_model, tasks, config, "sft_model")
    return (to_frame(run.results, GymResult), to_frame(quarantined, QuarantineRecord),
            {**run.stats, "quarantined_tasks": len(quarantined), "model": str(sft_model.path)})


def roll_out_base_model(base_model: ModelFolder, gym_tasks: pl.DataFrame,
                        params: dict[str, Any]) -> pl.DataFrame:
    """The same tasks through the checkpoint SFT started from (empty when not compared)."""
    config = GymConfig.model_validate(params)
    if not config.compare_base_model:
        return to_frame([], GymResult)
    tasks, _ = from_frame(gym_tasks, GymTask, stage="gym")
    return to_frame(_roll_out(base_model, tasks, config, "base_model").results, GymResult)


def score_rollouts(gym_tasks: pl.DataFrame, gym_rollouts: pl.DataFrame, params: dict[str, Any]):
    return score(gym_tasks, gym_rollouts, GymConfig.model_validate(params))


def report_gym(gym_tasks: pl.DataFrame, gym_rollouts: pl.DataFrame, gym_scores: pl.DataFrame,
               rl_prompts: pl.DataFrame, gym_rollout_stats: dict[str, Any],
               gym_base_rollouts: pl.DataFrame, params: dict[str, Any]):
    config = GymConfig.model_validate(params)
    summary = report.summarise(gym_tasks, gym_rollouts, gym_scores, rl_prompts, gym_rollout_stats,
                               config)
    if gym_base_rollouts.height:
        base_scores, _ = score(gym_tasks, gym_base_rollouts, config)
        summary["base_vs_policy"] = report.compare(base_scores, gym_scores, config)
    return (summary, report.metrics(summary), report.passk_plot(summary),
            report.rollout_sample(gym_tasks, gym_rollouts, config.sample_size))
