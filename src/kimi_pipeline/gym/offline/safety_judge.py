"""The offline ``safety_judge``: the domain's rubric, answered in the judge's JSON format.

``gym.safety`` asks this role whether a response to a (harmful or benign) prompt was safe.
Offline the verdict is ``gym.safety.rubric_judge`` — refusal, harmful-compliance and
helpfulness patterns — so an offline LLM-judge run scores exactly like the rubric itself.
"""

from __future__ import annotations

from typing import Any

from kimi_pipeline.gym.safety import rubric_judge
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role("safety_judge")
def offline_safety_judge(request: ChatRequest) -> dict[str, Any]:
    """``{"safe", "label", "reason"}`` of the rubric on the request's response."""
    c = request.context
    return rubric_judge(c["response"], c["category"], c["harmful"], c["helpful_terms"])
