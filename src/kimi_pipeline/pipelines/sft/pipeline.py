"""Wiring of the sft stage (the logic lives in ``kimi_pipeline.training`` and ``agents``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.sft import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "sft",
        [
            Node(nodes.prepare_base_model, ["sft_dataset", "params:base_model"], "base_model",
                 name="prepare_base_model"),
            Node(nodes.sample_sft_demos, ["base_model", "params:sft_demos", "params:gym"],
                 ["sft_demos", "sft_demos_report"], name="sample_sft_demos"),
            Node(nodes.train_sft, ["base_model", "sft_dataset", "sft_demos", "params:sft"],
                 ["sft_model", "sft_training"], name="train_sft"),
            Node(
                nodes.evaluate_sft,
                ["base_model", "sft_model", "sft_dataset", "tasks", "agents", "tool_repository",
                 "params:sft_evaluation"],
                ["sft_evaluation", "sft_evaluation_sample"],
                name="evaluate_sft",
            ),
            Node(nodes.report_sft, ["sft_training", "sft_evaluation", "sft_demos_report"],
                 ["sft_report", "sft_metrics", "sft_loss_plot"], name="report_sft"),
        ],
    )
