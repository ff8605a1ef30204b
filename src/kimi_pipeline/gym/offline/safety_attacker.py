"""The offline ``safety_attacker``: evolve a red-team prompt with a tactic's fixed template.

``gym.safety`` asks this role to rewrite a seed prompt with one attack tactic (role-play,
hypothetical, obfuscation, ...). Offline the rewrite is the tactic's deterministic template from
``gym.safety.STRATEGIES`` (the same template the domain falls back to when a model's reply is
empty or failed), so the same seed and tactic always give the same attack.
"""

from __future__ import annotations

from kimi_pipeline.gym.safety import STRATEGIES
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role("safety_attacker")
def offline_safety_attacker(request: ChatRequest) -> str:
    """The tactic's template applied to the prompt in the request's context."""
    return STRATEGIES[request.context["strategy"]][1](request.context["text"])
