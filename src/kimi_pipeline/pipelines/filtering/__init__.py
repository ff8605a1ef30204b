"""The ``filtering`` stage: judged, well-formed, unique, uncontaminated trajectories → SFT set."""

from kimi_pipeline.pipelines.filtering.pipeline import create_pipeline

__all__ = ["create_pipeline"]
