"""Wiring of the filtering stage (the logic lives in ``kimi_pipeline.curation`` / ``judge``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.filtering import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "filtering",
        [
            Node(
                nodes.filter_trajectories_node,
                ["trajectories", "agents", "gym_tasks_for_decontamination", "params:filtering"],
                ["sft_dataset", "filter_rejections", "filter_report", "filter_metrics",
                 "sft_dataset_sample", "filter_funnel_plot"],
                name="filter_trajectories",
            ),
        ],
    )
