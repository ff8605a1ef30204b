"""The offline ``faithfulness_judge``: the domain's support scorer, per answer sentence.

``gym.faithfulness`` (on a ``with_judge`` copy) asks this role which answer sentences the
context does not support. Offline each sentence is cut into claims and checked by the lexical
support scorer of the registered (judge-less) domain, answered in the judge's JSON format, so
an offline judge agrees with the scorer.
"""

from __future__ import annotations

from typing import Any

from kimi_pipeline.gym.faithfulness import JUDGE_ROLE, claims_of, context_index
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role(JUDGE_ROLE)
def offline_faithfulness_judge(request: ChatRequest) -> dict[str, Any]:
    """The support scorer, answering in the judge's JSON format."""
    domain = get_domain("faithfulness")
    index = context_index(tuple(request.context["context_sentences"]))
    verdicts = []
    for i, sentence in enumerate(request.context["answer_sentences"]):
        claims = claims_of(sentence, index)
        bad = domain.unsupported(index, claims) if claims else []  # type: ignore[attr-defined]
        reason = "; ".join(b["reason"] for b in bad) or "supported by the context"
        verdicts.append({"index": i + 1, "supported": not bad, "reason": reason})
    return {"sentences": verdicts}
