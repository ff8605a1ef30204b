"""Wiring of the rl stage (the logic lives in ``kimi_pipeline.rl``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.rl import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "rl",
        [
            Node(
                nodes.build_rl_pool,
                ["rl_prompts", "gym_tasks", "gym_scores", "open_prompts", "tasks", "agents",
                 "tool_repository", "sft_dataset", "params:rl"],
                ["rl_pool", "rl_heldout_tasks", "rl_pool_stats"], name="build_rl_pool",
            ),
            Node(
                nodes.train_rl,
                ["sft_model", "critic_model", "critic_pairs", "rl_pool", "sft_dataset",
                 "params:rl"],
                ["rl_model", "rl_training"], name="train_rl",
            ),
            Node(
                nodes.evaluate_rl, ["sft_model", "rl_model", "rl_heldout_tasks", "params:rl"],
                "rl_heldout_rollouts", name="evaluate_rl_on_heldout_tasks",
            ),
            Node(
                nodes.evaluate_rl_as_agent,
                ["sft_model", "rl_model", "sft_evaluation", "sft_dataset", "tasks", "agents",
                 "tool_repository", "params:sft_evaluation", "params:rl"],
                "rl_agent_evaluation", name="evaluate_rl_on_heldout_tool_tasks",
            ),
            Node(
                nodes.report_rl,
                ["rl_training", "rl_heldout_rollouts", "rl_heldout_tasks", "rl_pool_stats",
                 "rl_agent_evaluation"],
                ["rl_report", "rl_metrics", "rl_curves_plot", "rl_heldout_plot", "rl_samples"],
                name="report_rl",
            ),
        ],
    )
