"""The ``tool_repo`` stage: real MCP tools + spec files + evolved synthetic tools."""

from kimi_pipeline.pipelines.tool_repo.pipeline import create_pipeline

__all__ = ["create_pipeline"]
