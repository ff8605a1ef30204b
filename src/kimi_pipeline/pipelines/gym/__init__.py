"""The ``gym`` stage: verifiable tasks, the SFT model's rollouts, pass@k, moderate RL prompts."""

from kimi_pipeline.pipelines.gym.pipeline import create_pipeline

__all__ = ["create_pipeline"]
