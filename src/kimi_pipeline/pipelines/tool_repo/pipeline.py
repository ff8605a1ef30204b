"""Wiring of the tool_repo stage (see nodes.py; the logic lives in ``kimi_pipeline.tools``)."""

from kedro.pipeline import Node, Pipeline

from kimi_pipeline.pipelines import stage_pipeline
from kimi_pipeline.pipelines.tool_repo import nodes

PARAMS = "params:tool_repo"


def create_pipeline(**kwargs) -> Pipeline:
    return stage_pipeline(
        "tool_repo",
        [
            Node(
                nodes.harvest_mcp_tools,
                PARAMS,
                ["mcp_tools", "mcp_quarantine", "mcp_stats"],
                name="harvest_mcp_tools",
            ),
            Node(
                nodes.ingest_tool_files,
                ["raw_tool_specs", PARAMS],
                ["file_tools", "file_quarantine", "file_stats"],
                name="ingest_tool_files",
            ),
            Node(
                nodes.evolve_tools,
                PARAMS,
                ["synthetic_tools", "synthetic_quarantine", "evolution_stats"],
                name="evolve_synthetic_tools",
            ),
            Node(
                nodes.build_tool_repository,
                ["mcp_tools", "file_tools", "synthetic_tools", PARAMS],
                ["tool_repository", "tool_map", "repository_stats"],
                name="build_tool_repository",
            ),
            Node(
                nodes.collect_quarantine,
                ["mcp_quarantine", "file_quarantine", "synthetic_quarantine"],
                "tool_quarantine",
                name="collect_tool_quarantine",
            ),
            Node(
                nodes.report_tool_repo,
                [
                    "tool_repository",
                    "tool_quarantine",
                    "tool_map",
                    "mcp_stats",
                    "file_stats",
                    "evolution_stats",
                    "repository_stats",
                    PARAMS,
                ],
                [
                    "tool_repo_report",
                    "tool_repo_metrics",
                    "tool_repo_sample",
                    "tool_repo_map_plot",
                    "tool_repo_counts_plot",
                ],
                name="report_tool_repo",
            ),
        ],
    )
