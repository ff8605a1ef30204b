"""The ``critic`` stage: open prompts, preference pairs, a self-critic refined on verifiable
rollouts, and critic rewards of the policy's open answers."""

from kimi_pipeline.pipelines.critic.pipeline import create_pipeline

__all__ = ["create_pipeline"]
