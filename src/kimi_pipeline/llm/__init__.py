"""Chat backends behind one protocol (see ``base``): offline (default) and OpenAI-compatible."""

from kimi_pipeline.llm.base import (
    BackendConfig,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    complete_many,
    make_backend,
)
from kimi_pipeline.llm.offline import offline_role

__all__ = [
    "BackendConfig",
    "ChatBackend",
    "ChatRequest",
    "ChatResponse",
    "complete_many",
    "make_backend",
    "offline_role",
]
