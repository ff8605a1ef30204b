"""The offline backend: deterministic programs standing in for a model, one per role.

It is a real program, not a mock: each role's program (registered next to the role's prompt
code with ``@offline_role``) reads the structured ``context`` of the request and writes the
reply a competent model would write, in the same format. Same request → same reply.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from kimi_pipeline.llm.base import (
    BackendConfig,
    ChatRequest,
    ChatResponse,
    OfflineBackendConfig,
    register_backend,
    Usage,
)
from kimi_pipeline.registry import Registry, UnknownName

OfflineProgram = Callable[[ChatRequest], "str | dict[str, Any] | list[Any] | ChatResponse"]
# where each role's program lives: imported on first use, so any process (a worker, the
# OpenAI-compatible server) can answer every role without knowing the modules itself
ROLE_MODULES = {
    "tool_evolver": "kimi_pipeline.tools.offline.tool_evolver",
    "agent_writer": "kimi_pipeline.agents.offline.agent_writer",
    "task_writer": "kimi_pipeline.agents.offline.task_writer",
    "agent": "kimi_pipeline.agents.offline.agent",
    "user_simulator": "kimi_pipeline.envs.offline.user_simulator",
    "judge": "kimi_pipeline.judge.offline.judge",
    "safety_attacker": "kimi_pipeline.gym.offline.safety_attacker",
    "safety_judge": "kimi_pipeline.gym.offline.safety_judge",
    "instruction_judge": "kimi_pipeline.gym.offline.instruction_judge",
    "faithfulness_judge": "kimi_pipeline.gym.offline.faithfulness_judge",
    "open_prompt_writer": "kimi_pipeline.critic.offline.open_prompt_writer",
}


_PROGRAMS: Registry[OfflineProgram] = Registry("offline role", lazy=ROLE_MODULES)
offline_role = _PROGRAMS.register  # the deterministic program answering a role's requests


def _words(text: str) -> int:
    return len(text.split())


@register_backend("offline")
class OfflineBackend:
    name = "offline"

    def __init__(self, config: BackendConfig | None = None):
        self.config = config or OfflineBackendConfig()

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        return self.complete(request)

    def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        try:
            program = _PROGRAMS.lookup(request.role)
        except UnknownName:
            return ChatResponse(content=None, backend=self.name,
                                error=f"offline backend has no program for role {request.role!r}; "
                                f"known roles: {_PROGRAMS.names()}")
        reply = program(request)
        if isinstance(reply, ChatResponse):
            reply.backend = self.name
            return reply
        content = reply if isinstance(reply, str) else json.dumps(reply, ensure_ascii=False)
        prompt_words = sum(_words(str(m.get("content") or "")) for m in request.messages)
        return ChatResponse(
            content=content,
            usage=Usage(prompt_tokens=prompt_words, completion_tokens=_words(content)),
            latency_s=time.perf_counter() - start,
            backend=self.name,
        )
