"""Wiring of the critic stage (the logic lives in ``kimi_pipeline.critic``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.critic import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "critic",
        [
            Node(nodes.make_open_prompts, "params:critic", "open_prompts",
                 name="make_open_prompts"),
            Node(nodes.answer_open_prompts, ["sft_model", "open_prompts", "params:critic"],
                 "open_prompt_answers", name="answer_open_prompts"),
            Node(
                nodes.build_critic_pairs,
                ["open_prompt_answers", "gym_tasks", "gym_rollouts", "gym_base_rollouts",
                 "params:critic"],
                ["critic_pairs", "critic_pair_stats"], name="build_critic_pairs",
            ),
            Node(nodes.train_critic, ["sft_model", "critic_pairs", "params:critic"],
                 ["critic_model", "critic_training"], name="train_critic"),
            Node(nodes.rank_open_answers,
                 ["critic_model", "open_prompt_answers", "params:critic"], "critic_rewards",
                 name="rank_open_answers"),
            Node(
                nodes.report_critic,
                ["critic_training", "critic_pair_stats", "critic_rewards", "params:critic"],
                ["critic_report", "critic_metrics", "critic_agreement_plot",
                 "critic_judged_sample"],
                name="report_critic",
            ),
        ],
    )
