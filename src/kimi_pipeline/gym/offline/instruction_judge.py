"""The offline ``instruction_judge``: the nuanced constraints' conservative code heuristics.

``gym.instructions`` asks this role about the constraints a code checker cannot settle alone
(formal tone, simple language). Offline, the verdict on each is the constraint's own checker
from ``gym.constraints``, answered in the judge's JSON format, so offline judging is
deterministic and agrees with the code checks.
"""

from __future__ import annotations

from typing import Any

from kimi_pipeline.gym.constraints import CONSTRAINTS, run_check
from kimi_pipeline.gym.instructions import JUDGE_ROLE
from kimi_pipeline.gym.prose import Text
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role(JUDGE_ROLE)
def offline_instruction_judge(request: ChatRequest) -> dict[str, Any]:
    """Offline judge: the conservative code heuristics of the nuanced constraints."""
    text = Text(str(request.context.get("response", "")))
    verdicts = []
    for c in request.context.get("constraints", []):
        ctype = CONSTRAINTS.get(c.get("name", ""))
        ok, reason = (run_check(ctype, text, c.get("params", {})) if ctype
                      else (False, "unknown constraint"))
        verdicts.append({"constraint": c.get("name", ""), "ok": ok, "reason": reason})
    return {"verdicts": verdicts}
