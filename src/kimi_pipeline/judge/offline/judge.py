"""The offline program of the ``judge`` role: the rule criteria over the request's context.

Without a model, the LLM rubric judge (``judge.rubric_llm``) still runs end to end: this program
reads the trajectory and the criteria order from the request's ``context`` and answers the JSON
verdict a judge model would, computed by the rule criteria (``judge.criteria``). So
``kind: llm`` offline equals ``kind: rule``, which the tests use to check the LLM path (prompt,
repeats, vote) against the rule judge.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from kimi_pipeline.judge.criteria import evaluate
from kimi_pipeline.judge.episode import episode
from kimi_pipeline.judge.rubric_llm import ROLE
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role(ROLE)
def offline_judge(request: ChatRequest) -> dict[str, Any]:
    """The offline judge model: the rule criteria over the context, in the requested order."""
    ctx = request.context
    criteria = evaluate(episode(ctx["trajectory"]), ctx["criteria"])
    critical = set(ctx.get("critical") or ctx["criteria"])
    return {
        "criteria": [asdict(c) for c in criteria],
        "passed": all(c.passed for c in criteria if c.name in critical),
    }
