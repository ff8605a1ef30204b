"""Thin nodes of the sft stage: catalog data in, library call, catalog data out."""

from __future__ import annotations

from typing import Any

import mlflow
import polars as pl
from tqdm.auto import tqdm

from kimi_pipeline.agents.evaluate import EvaluationConfig, compare_models
from kimi_pipeline.gym.demos import DemoConfig, sample_demonstrations
from kimi_pipeline.gym.run import GymConfig, generate_tasks, make_policy
from kimi_pipeline.records import SftExample, to_frame
from kimi_pipeline.tracking import active_run_target
from kimi_pipeline.training import base_model, report, sft
from kimi_pipeline.model_folder import ModelFolder


def prepare_base_model(sft_dataset: pl.DataFrame, params: dict[str, Any]) -> dict[str, Any]:
    config = base_model.BaseModelConfig.model_validate(params)
    made = base_model.make_base_model(config, sft_dataset)
    if mlflow.active_run():
        mlflow.log_params({f"base_model.{k}": made["metadata"][k]
                           for k in ("name", "from", "parameters")})
    return made


def sample_sft_demos(base_model: ModelFolder, params: dict[str, Any],
                     gym_params: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Verified gym-style demonstrations from base_model, none on a task the gym evaluates."""
    config = DemoConfig.model_validate(params)
    if config.sampling is None:
        return to_frame([], SftExample), {"enabled": False}
    gym_tasks = generate_tasks(GymConfig.model_validate(gym_params))
    policy = make_policy(base_model.path, config.sampling)
    total = sum(n for _, _, n in config.sampling.plan())
    with tqdm(total=total, desc="sft demos generate", unit="task") as generated, \
            tqdm(total=total * config.sampling.samples, desc="sft demos verify",
                 unit="resp") as verified:
        demos, summary = sample_demonstrations(policy, config, gym_tasks, generated.update,
                                               verified.update)
    return to_frame(demos, SftExample), summary


def train_sft(base_model: ModelFolder, sft_dataset: pl.DataFrame, sft_demos: pl.DataFrame,
              params: dict[str, Any]) -> tuple[ModelFolder, dict]:
    config = sft.SftConfig.model_validate(params)
    prepared = sft.prepare_run(sft_dataset, base_model, config, mlflow_run=active_run_target(),
                               demos=sft_demos)
    result = sft.train(prepared, config)
    if mlflow.active_run():
        # optimizer name, kernel, learning rates, the Muon/AdamW parameter split
        mlflow.log_params(result.get("optimizer") or {})
    training = {"result": result, "packing": prepared.packing}
    return ModelFolder(prepared.run_dir / "final"), training


def evaluate_sft(base_model: ModelFolder, sft_model: ModelFolder, sft_dataset: pl.DataFrame,
                 tasks: pl.DataFrame, agents: pl.DataFrame, tool_repository: pl.DataFrame,
                 params: dict[str, Any]) -> tuple[dict[str, Any], pl.DataFrame]:
    config = EvaluationConfig.model_validate(params)
    models = {"initial": str(base_model.path), "sft": str(sft_model.path)}
    return compare_models(models, sft_dataset, tasks, agents, tool_repository, config)


def report_sft(training: dict[str, Any], evaluation: dict[str, Any],
               demonstrations: dict[str, Any]):
    result = training["result"]
    summary = report.training_summary(result)
    full = {"training": summary, "packing": training["packing"], "evaluation": evaluation,
            "demonstrations": demonstrations}
    metrics = report.report_metrics(summary, training["packing"], evaluation)
    return full, metrics, report.training_figure(result["metrics"])
