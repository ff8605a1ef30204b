"""Wiring of the synthesis stage (see nodes.py; the logic lives in ``kimi_pipeline.agents`` and
``kimi_pipeline.envs``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.synthesis import nodes

PARAMS = "params:synthesis"


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "synthesis",
        [
            Node(nodes.synthesize_agents, ["tool_repository", PARAMS],
                 ["agents", "agent_quarantine"], name="synthesize_agents"),
            Node(nodes.write_tasks, ["agents", "tool_repository", PARAMS],
                 ["tasks", "task_quarantine"], name="write_tasks"),
            Node(nodes.run_episodes, ["agents", "tasks", "tool_repository", PARAMS],
                 ["trajectories", "episode_quarantine", "episode_stats"], name="run_episodes"),
            Node(nodes.collect_quarantine,
                 ["agent_quarantine", "task_quarantine", "episode_quarantine"],
                 "synthesis_quarantine", name="collect_synthesis_quarantine"),
            Node(nodes.report_synthesis,
                 ["trajectories", "agents", "tasks", "synthesis_quarantine", "episode_stats",
                  PARAMS],
                 ["synthesis_report", "synthesis_metrics", "synthesis_sample", "synthesis_plot"],
                 name="report_synthesis"),
        ],
    )
