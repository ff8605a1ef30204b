"""Thin nodes of the gym stage: catalog data in, ``kimi_pipeline.gym`` call, catalog data out."""

from __future__ import annotations

from typing import Any

import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.gym import report
from kimi_pipeline.gym.run import GymConfig, generate_tasks, make_policy, roll_out, score
from kimi_pipeline.records import GymResult, GymTask, QuarantineRecord, from_frame, to_frame
from kimi_pipeline.training.model_folder import ModelFolder


def generate_gym_tasks(params: dict[str, Any]) -> pl.DataFrame:
    return to_frame(generate_tasks(GymConfig.model_validate(params)), GymTask)


def roll_out_policy(sft_model: ModelFolder, gym_tasks: pl.DataFrame, params: dict[str, Any]):
    config = GymConfig.model_validate(params)
    tasks, quarantined = from_frame(gym_tasks, GymTask, stage="gym")
    policy = make_policy(sft_model.path, config)
    total = len(tasks) * config.samples
    with tqdm(total=len(tasks), desc="gym generate", unit="task") as generated, \
            tqdm(total=total, desc="gym verify", unit="resp") as verified:
        run = roll_out(tasks, policy, config, generated.update, verified.update)
    return (to_frame(run.results, GymResult), to_frame(quarantined, QuarantineRecord),
            {**run.stats, "quarantined_tasks": len(quarantined), "model": str(sft_model.path)})


def score_rollouts(gym_tasks: pl.DataFrame, gym_rollouts: pl.DataFrame, params: dict[str, Any]):
    return score(gym_tasks, gym_rollouts, GymConfig.model_validate(params))


def report_gym(gym_tasks: pl.DataFrame, gym_rollouts: pl.DataFrame, gym_scores: pl.DataFrame,
               rl_prompts: pl.DataFrame, gym_rollout_stats: dict[str, Any], params: dict[str, Any]):
    config = GymConfig.model_validate(params)
    summary = report.summarise(gym_tasks, gym_rollouts, gym_scores, rl_prompts, gym_rollout_stats,
                               config)
    return (summary, report.metrics(summary), report.passk_plot(summary),
            report.rollout_sample(gym_tasks, gym_rollouts, config.sample_size))
