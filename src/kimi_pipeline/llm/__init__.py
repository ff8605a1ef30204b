"""Chat backends behind one protocol (see ``base``): offline (default), OpenAI-compatible and a
local Hugging Face model."""

from kimi_pipeline.llm.base import (
    BackendConfig,
    BackendSettings,
    HFBackendConfig,
    OfflineBackendConfig,
    OpenAIBackendConfig,
    backend_config,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    complete_many,
    make_backend,
)
from kimi_pipeline.llm.offline import offline_role

__all__ = [
    "BackendConfig",
    "BackendSettings",
    "HFBackendConfig",
    "OfflineBackendConfig",
    "OpenAIBackendConfig",
    "backend_config",
    "ChatBackend",
    "ChatRequest",
    "ChatResponse",
    "complete_many",
    "make_backend",
    "offline_role",
]
