"""The sft stage: tool-use supervised fine-tuning under DeepSpeed."""

from kimi_pipeline.pipelines.sft.pipeline import create_pipeline

__all__ = ["create_pipeline"]
