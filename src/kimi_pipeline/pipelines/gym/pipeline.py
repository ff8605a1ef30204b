"""Wiring of the gym stage (the logic lives in ``kimi_pipeline.gym``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.gym import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "gym",
        [
            Node(nodes.generate_gym_tasks, "params:gym", "gym_tasks", name="generate_gym_tasks"),
            Node(
                nodes.roll_out_policy, ["sft_model", "gym_tasks", "params:gym"],
                ["gym_rollouts", "gym_quarantine", "gym_rollout_stats"], name="roll_out_gym_tasks",
            ),
            Node(
                nodes.roll_out_base_model, ["base_model", "gym_tasks", "params:gym"],
                "gym_base_rollouts", name="roll_out_gym_tasks_on_base_model",
            ),
            Node(
                nodes.score_rollouts, ["gym_tasks", "gym_rollouts", "params:gym"],
                ["gym_scores", "rl_prompts"], name="score_gym_rollouts",
            ),
            Node(
                nodes.report_gym,
                ["gym_tasks", "gym_rollouts", "gym_scores", "rl_prompts", "gym_rollout_stats",
                 "gym_base_rollouts", "params:gym"],
                ["gym_report", "gym_metrics", "gym_passk_plot", "gym_rollouts_sample"],
                name="report_gym",
            ),
        ],
    )
