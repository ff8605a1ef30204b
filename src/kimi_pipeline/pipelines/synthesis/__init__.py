"""The ``synthesis`` stage: agents, tasks with rubrics, and multi-turn trajectories."""

from kimi_pipeline.pipelines.synthesis.pipeline import create_pipeline

__all__ = ["create_pipeline"]
