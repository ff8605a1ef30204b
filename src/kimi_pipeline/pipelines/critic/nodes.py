"""Thin nodes of the critic stage: catalog data in, ``kimi_pipeline.critic`` call, data out."""

from __future__ import annotations

from typing import Any

import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.critic import report, run
from kimi_pipeline.critic.model import load_critic
from kimi_pipeline.critic.open_prompts import make_open_prompts as generate
from kimi_pipeline.critic.rubrics import load_rubrics
from kimi_pipeline.records import GymResult, GymTask, OpenPrompt, PreferencePair, from_frame, \
    to_frame
from kimi_pipeline.model_folder import ModelFolder

def _config(params: dict[str, Any]) -> run.CriticConfig:
    return run.CriticConfig.model_validate(params)


def make_open_prompts(params: dict[str, Any]) -> pl.DataFrame:
    return to_frame(generate(_config(params).open_prompts), OpenPrompt)


def answer_open_prompts(sft_model: ModelFolder, open_prompts: pl.DataFrame,
                        params: dict[str, Any]) -> pl.DataFrame:
    config = _config(params)
    prompts, _ = from_frame(open_prompts, OpenPrompt, stage="critic")
    with tqdm(total=len(prompts), desc="critic: open answers", unit="prompt") as bar:
        rows = run.answer_open_prompts(str(sft_model.path), prompts, config, bar.update)
    return pl.DataFrame(rows)


def build_critic_pairs(open_prompt_answers: pl.DataFrame, gym_tasks: pl.DataFrame,
                       gym_rollouts: pl.DataFrame, gym_base_rollouts: pl.DataFrame,
                       params: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    config = _config(params)
    rubrics = load_rubrics(config.rubrics_file)
    tasks, _ = from_frame(gym_tasks, GymTask, stage="critic")
    frames = [gym_rollouts, gym_base_rollouts] if config.include_base_rollouts else [gym_rollouts]
    rollouts = [r for frame in frames if frame.height
                for r in from_frame(frame, GymResult, stage="critic")[0]]
    pairs, skipped = run.build_pairs(open_prompt_answers.to_dicts(), rollouts,
                                     {t.task_id: t.prompt for t in tasks}, rubrics, config)
    return to_frame(pairs, PreferencePair), {"skipped_bootstrap": skipped,
                                             "rollouts": len(rollouts)}


def train_critic(sft_model: ModelFolder, critic_pairs: pl.DataFrame, params: dict[str, Any]
                 ) -> tuple[ModelFolder, dict[str, Any]]:
    config = _config(params)
    pairs, _ = from_frame(critic_pairs, PreferencePair, stage="critic")
    critic, training = run.train(sft_model, pairs, load_rubrics(config.rubrics_file), config)
    return run.save_fitted(critic, pairs, config), training


def rank_open_answers(critic_model: ModelFolder, open_prompt_answers: pl.DataFrame,
                      params: dict[str, Any]) -> pl.DataFrame:
    config = _config(params)
    rubrics = load_rubrics(config.rubrics_file)
    critic = load_critic(critic_model, rubrics)
    return pl.DataFrame(run.rank_candidates(critic, open_prompt_answers.to_dicts(), rubrics,
                                            config))


def report_critic(critic_training: dict[str, Any], critic_pair_stats: dict[str, Any],
                  critic_rewards: pl.DataFrame, params: dict[str, Any]):
    summary = report.summarise(critic_training, critic_pair_stats, critic_rewards)
    return (summary, report.metrics(summary), report.agreement_plot(summary),
            pl.DataFrame(critic_training["sample"]) if critic_training["sample"]
            else pl.DataFrame({"pair_id": []}))
