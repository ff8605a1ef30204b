"""The ``open_prompt_writer`` role's offline program: the planned prompt's template text.

A model asked by ``critic.open_prompts.writer_request`` rewrites a planned (category, persona,
topic) in the persona's words; offline, the plan's own template rendering is the answer.
"""

from __future__ import annotations

from kimi_pipeline.critic.open_prompts import PromptPlan, WRITER_ROLE, render_prompt
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role(WRITER_ROLE)
def template_writer(request: ChatRequest) -> str:
    """The plan's template text."""
    return render_prompt(PromptPlan(**request.context))
