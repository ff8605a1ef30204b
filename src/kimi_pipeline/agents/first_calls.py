"""First tool calls with the reference context: a one-minute read of a model's tool-call skill.

``evaluate.py`` plays whole episodes, where one wrong move compounds (a model that sends a bad
call tends to resend it until the step limit, and every resend counts), and 24 episodes take
minutes per model. Here each held-out SFT example (``split == "validation"``: agents never
trained on) whose dialogue makes a tool call is cut just before its first assistant message
with a call that SFT trains on (a refused call the agent then corrected, ``"train": false``,
stays in the context and is not a reference); the model writes that one move greedily from
the reference context (system prompt, tools, the user's turns so far) and the move is
compared with the reference call:

- **called**: the reply contains a tool call at all;
- **parsed**: its first call has a name and a JSON object of arguments;
- **schema-valid**: it names a tool offered in the example and its arguments validate against
  that tool's JSON schema (Draft 2020-12, formats checked, as the environments do);
- **right tool**: it names the reference call's tool;
- **exact**: right tool and arguments equal to the reference's (JSON equality).

Every rate is over all cases. Cases are a deterministic spread of the validation examples
(every ``len / n``-th in ``example_id`` order), so two models are scored on the same calls.
Used by ``scripts/first_calls.py`` to compare SFT settings quickly; the episode evaluation
remains the measure of the sft stage.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import polars as pl
from jsonschema import Draft202012Validator

from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse


@dataclass(frozen=True)
class FirstCallCase:
    """The context before an example's first call, the tools offered, and the reference call."""

    example_id: str
    context: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    name: str
    arguments: dict[str, Any]


def _function(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("function") or entry


def _arguments(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _case(example_id: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
          ) -> FirstCallCase | None:
    for at, message in enumerate(messages):
        trained = message.get("train") is not False
        if message.get("role") == "assistant" and message.get("tool_calls") and trained:
            call = _function(message["tool_calls"][0])
            return FirstCallCase(example_id, messages[:at], tools, call["name"],
                                 _arguments(call.get("arguments")))
    return None


def first_call_cases(sft_dataset: pl.DataFrame, n: int) -> list[FirstCallCase]:
    """Up to ``n`` cases from the validation examples that make a tool call, evenly spread."""
    rows = sft_dataset.filter(pl.col("split") == "validation").sort("example_id")
    cases = []
    for example_id, messages, tools in zip(rows["example_id"], rows["messages"], rows["tools"]):
        messages = json.loads(messages) if isinstance(messages, str) else messages
        tools = json.loads(tools) if isinstance(tools, str) else tools
        case = _case(example_id, messages, tools or [])
        if case is not None:
            cases.append(case)
    return cases[::max(1, len(cases) // n)][:n] if n > 0 else []


def score_reply(case: FirstCallCase, reply: ChatResponse) -> dict[str, Any]:
    """One case's outcome: the flags above and what the model called."""
    call = reply.tool_calls[0] if reply.tool_calls else None
    parsed = bool(call and call.name and call.raw_arguments is None)
    offered = {_function(t)["name"]: _function(t) for t in case.tools}
    spec = offered.get(call.name) if parsed else None
    valid = bool(spec) and Draft202012Validator(
        spec.get("parameters") or {}, format_checker=Draft202012Validator.FORMAT_CHECKER
    ).is_valid(call.arguments)
    right = parsed and call.name == case.name
    return {
        "example_id": case.example_id, "reference": case.name,
        "called_tool": call.name if call else None, "called": call is not None,
        "parsed": parsed, "schema_valid": valid, "right_tool": right,
        "exact": right and call.arguments == case.arguments,
    }


async def _replies(backend: ChatBackend, cases: list[FirstCallCase], max_new_tokens: int
                   ) -> list[ChatResponse]:
    return list(await asyncio.gather(*(backend.acomplete(ChatRequest(
        role="agent", messages=case.context, tools=case.tools, temperature=0.0,
        max_tokens=max_new_tokens)) for case in cases)))


def score_first_calls(backend: ChatBackend, cases: list[FirstCallCase],
                      max_new_tokens: int = 128) -> tuple[dict[str, Any], pl.DataFrame]:
    """The rates over ``cases`` (and the count and seconds taken), and one row per case."""
    start = time.perf_counter()
    replies = asyncio.run(_replies(backend, cases, max_new_tokens))
    rows = pl.DataFrame([score_reply(c, r) for c, r in zip(cases, replies)])
    n = len(cases)
    summary: dict[str, Any] = {"cases": n}
    for flag in ("called", "parsed", "schema_valid", "right_tool", "exact"):
        summary[f"{flag}_rate"] = round(float(rows[flag].sum()) / n, 6) if n else 0.0
    summary["wall_s"] = round(time.perf_counter() - start, 3)
    return summary, rows
