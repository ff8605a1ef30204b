"""The ``rl`` stage: K1.5/K2 policy optimisation of the SFT model on verifiable and critic
rewards, with budget control, PTX loss and temperature decay; held-out before/after table."""

from kimi_pipeline.pipelines.rl.pipeline import create_pipeline

__all__ = ["create_pipeline"]
