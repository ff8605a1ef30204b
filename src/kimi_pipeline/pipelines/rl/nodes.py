"""Thin nodes of the rl stage: catalog data in, ``kimi_pipeline.rl`` call, catalog data out."""

from __future__ import annotations

import json
import logging
from typing import Any

import mlflow
import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.agents.evaluate import EvaluationConfig, compare_models
from kimi_pipeline.records import GymTask, OpenPrompt, PreferencePair, from_frame, to_frame
from kimi_pipeline.rl import report, run
from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.prompts import PromptPool, build_pool, prompts_frame, prompts_from_frame
from kimi_pipeline.tracking import active_run_target
from kimi_pipeline.model_folder import ModelFolder

log = logging.getLogger(__name__)


def _config(params: dict[str, Any]) -> RLConfig:
    return RLConfig.model_validate(params)


def build_rl_pool(rl_prompts: pl.DataFrame, gym_tasks: pl.DataFrame, gym_scores: pl.DataFrame,
                  open_prompts: pl.DataFrame, tasks: pl.DataFrame, agents: pl.DataFrame,
                  tool_repository: pl.DataFrame, sft_dataset: pl.DataFrame,
                  params: dict[str, Any]):
    config = _config(params)
    items = run.tool_work_items(tasks, agents, tool_repository, sft_dataset,
                                config.pool.tool_tasks, config.pool.seed)
    rates = dict(zip(rl_prompts["task_id"], rl_prompts["pass_rate"], strict=True)) \
        if "pass_rate" in rl_prompts.columns else {}
    band, bad_band = from_frame(rl_prompts.drop("pass_rate", strict=False), GymTask, stage="rl")
    known, bad_known = from_frame(gym_tasks, GymTask, stage="rl")
    opens, bad_open = from_frame(open_prompts, OpenPrompt, stage="rl")
    pool = build_pool(band, rates, known, gym_scores, opens, config.pool, items)
    refused = [*bad_band, *bad_known, *bad_open]
    if refused:  # upstream rows that are not valid records: counted and named, never silent
        log.warning("rl: %d input rows left out of the pool (e.g. %s: %s)", len(refused),
                    refused[0].source_ref, refused[0].reason)
    stats = {**pool.stats, "refused_rows": [{"ref": r.source_ref, "reason": r.reason}
                                            for r in refused]}
    return prompts_frame(pool.train), to_frame(pool.heldout, GymTask), stats


def train_rl(sft_model: ModelFolder, critic_model: ModelFolder, critic_pairs: pl.DataFrame,
             rl_pool: pl.DataFrame, sft_dataset: pl.DataFrame, params: dict[str, Any]
             ) -> tuple[ModelFolder, dict]:
    config = _config(params)
    pool = PromptPool(prompts_from_frame(rl_pool), [])
    pairs, _ = from_frame(critic_pairs, PreferencePair, stage="rl")
    spec = run.prepare_run(sft_model, pool, sft_dataset, critic_model, config,
                           mlflow_run=active_run_target(), critic_pairs=pairs)
    result = run.train(spec)
    if mlflow.active_run() and not result["reused"]:
        # `rl/optim/…`: a whole-DAG run shares one MLflow run with sft, which logs `optim/…`
        # (MLflow refuses a second value under a logged param name)
        mlflow.log_params({f"rl/{k}": v for k, v in (result.get("optimizer") or {}).items()})
    training = {"result": {k: v for k, v in result.items() if k != "metrics"},
                "metrics": result["metrics"], "samples": run.read_samples(spec.run_dir)}
    return ModelFolder(result["final_model"]), training


def evaluate_rl(sft_model: ModelFolder, rl_model: ModelFolder, rl_heldout_tasks: pl.DataFrame,
                params: dict[str, Any]) -> pl.DataFrame:
    config = _config(params)
    tasks, _ = from_frame(rl_heldout_tasks, GymTask, stage="rl")
    with tqdm(total=2 * len(tasks), desc="rl: held-out tasks", unit="task") as bar:
        return run.evaluate({"sft_model": str(sft_model.path), "rl_model": str(rl_model.path)},
                            tasks, config, bar.update)


def evaluate_rl_as_agent(sft_model: ModelFolder, rl_model: ModelFolder,
                         sft_evaluation: dict[str, Any] | None, sft_dataset: pl.DataFrame,
                         tasks: pl.DataFrame, agents: pl.DataFrame,
                         tool_repository: pl.DataFrame, evaluation_params: dict[str, Any],
                         params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Both models on the SFT stage's held-out tool tasks ({} when switched off); sft_model's
    figures come from the SFT stage's evaluation when it measured these very weights."""
    if not _config(params).evaluation.tool_tasks:
        return {}
    config = EvaluationConfig.model_validate(evaluation_params)
    models = {"sft_model": str(sft_model.path), "rl_model": str(rl_model.path)}
    summaries, _ = compare_models(models, sft_dataset, tasks, agents, tool_repository, config,
                                  known=sft_evaluation or {})
    return summaries


def report_rl(rl_training: dict[str, Any], rl_heldout_rollouts: pl.DataFrame,
              rl_heldout_tasks: pl.DataFrame, rl_pool_stats: dict[str, Any],
              rl_agent_evaluation: dict[str, dict[str, Any]]):
    tasks, _ = from_frame(rl_heldout_tasks, GymTask, stage="rl")
    table = run.before_after(rl_heldout_rollouts, tasks)
    summary = report.summarise(rl_training, table, rl_pool_stats, rl_agent_evaluation)
    samples = pl.DataFrame([{**s, "shaped": json.dumps(s.get("shaped"))}
                            for s in rl_training["samples"]]) \
        if rl_training["samples"] else pl.DataFrame({"prompt_id": []}, schema={"prompt_id": str})
    return (summary, report.metrics(summary), report.curves_plot(rl_training["metrics"]),
            report.heldout_plot(table), samples)
