"""Format and execution checks of a trajectory (APIGen's first two verification stages).

Before a trajectory's content is judged, its form must be trainable: every tool call names a
tool offered to the agent, its arguments validate against that tool's schema, every call has
exactly one result, roles come in a valid order, no assistant turn is empty, and the dialogue
ends with the assistant's answer. The execution check adds the environment's verdict: a tool
result that is an ``invalid_arguments`` / ``invalid_json`` / ``unknown_tool`` error means the
agent produced a call the API refused — unless the agent corrected it on its very next move
(``judge.episode.corrected_calls``): recovering from a refused call is behaviour worth
training on, and SFT keeps the refused call itself out of its labels (``curation.sft_format``).

``check_format`` returns problem codes with details (``"unknown_tool: call_2 launch_rocket"``),
empty when the trajectory is fine. Each check is a small registered function; JSON Schema
validators are compiled once per distinct schema and reused across trajectories.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from kimi_pipeline.judge.episode import (
    corrected_calls,
    decoded,
    plain_messages,
    result_error,
)
from kimi_pipeline.records import Trajectory
from kimi_pipeline.registry import registrar

REFUSED_CALLS = ("invalid_arguments", "invalid_json", "unknown_tool")  # execution errors


@dataclass
class Dialogue:
    """What the checks read: the messages (record-shaped dicts) and the offered tools."""

    messages: list[dict[str, Any]]
    validators: dict[str, Draft202012Validator]  # offered tool name -> its arguments' validator
    calls: dict[str, tuple[int, str]] = field(default_factory=dict)  # call id -> (message, tool)
    corrected: set[str] = field(default_factory=set)  # ids of refused calls the agent corrected


def dialogue(trajectory: Trajectory | Mapping[str, Any]) -> Dialogue:
    """Only the messages and tools are read (and decoded, for frame rows)."""
    if isinstance(trajectory, Trajectory):
        messages, tools = plain_messages(trajectory.messages), trajectory.tools
    else:
        messages, tools = decoded(trajectory["messages"]), trajectory.get("tools") or []
    d = Dialogue(messages, tool_validators(tools), corrected=corrected_calls(messages))
    for index, message in enumerate(d.messages):
        for call in _calls(message):
            d.calls[call.get("id")] = (index, call.get("name", ""))
    return d


def _calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    return (message.get("tool_calls") or []) if message.get("role") == "assistant" else []


FormatCheck = Callable[[Dialogue], Iterator[str]]
FORMAT_CHECKS: dict[str, FormatCheck] = {}


register_format_check = registrar(FORMAT_CHECKS)  # a check: a generator of problem strings


def check_format(trajectory: Trajectory | Mapping[str, Any]) -> list[str]:
    """Every format and execution problem of one trajectory (record, frame row or dict)."""
    d = dialogue(trajectory)
    return [problem for check in FORMAT_CHECKS.values() for problem in check(d)]


# ------------------------------------------------------------------------------- validators

_VALIDATORS: dict[str, Draft202012Validator] = {}
_TOOL_LISTS: dict[str, dict[str, Draft202012Validator]] = {}  # tools JSON text -> validators
_CACHE_LIMIT = 16384


def _bounded(cache: dict) -> dict:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    return cache


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The compiled validator of ``schema``, cached by the schema's canonical JSON."""
    key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
    found = _VALIDATORS.get(key)
    if found is None:
        found = _bounded(_VALIDATORS)[key] = Draft202012Validator(schema)
    return found


def tool_validators(tools: str | list[dict[str, Any]]) -> dict[str, Draft202012Validator]:
    """Tool name -> validator of its arguments; a stored tools text (an agent's trajectories
    share one) is decoded and compiled once."""
    if isinstance(tools, str):
        found = _TOOL_LISTS.get(tools)
        if found is None:
            found = _bounded(_TOOL_LISTS)[tools] = tool_validators(json.loads(tools))
        return found
    out = {}
    for tool in tools or ():
        fn = tool.get("function") or tool
        out[fn["name"]] = validator(fn.get("parameters") or {})
    return out


def _where(error) -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f" at /{path}" if path else ""


# ----------------------------------------------------------------------------------- checks


@register_format_check("tool_names")
def _tool_names(d: Dialogue) -> Iterator[str]:
    for call_id, (_, name) in d.calls.items():
        if name not in d.validators and call_id not in d.corrected:
            yield f"unknown_tool: {call_id} {name}"


@register_format_check("arguments")
def _arguments(d: Dialogue) -> Iterator[str]:
    for message in d.messages:
        for call in _calls(message):
            name = call.get("name", "")
            if call.get("id") in d.corrected:
                continue
            if call.get("raw_arguments") is not None:
                yield f"invalid_json: {call.get('id')} {name}"
            elif name in d.validators:
                error = best_match(d.validators[name].iter_errors(call.get("arguments") or {}))
                if error is not None:
                    where = f"{error.message}{_where(error)}"
                    yield f"invalid_arguments: {call.get('id')} {name}: {where}"


@register_format_check("tool_results")
def _tool_results(d: Dialogue) -> Iterator[str]:
    answered: dict[str, int] = {}
    for index, message in enumerate(d.messages):
        if message.get("role") != "tool":
            continue
        call_id = message.get("tool_call_id")
        if call_id not in d.calls:
            yield f"orphan_result: message {index} answers unknown call {call_id}"
        elif d.calls[call_id][0] > index:
            yield f"orphan_result: message {index} answers {call_id} before it is made"
        elif call_id in answered:
            first = answered[call_id]
            yield f"duplicate_result: {call_id} answered by messages {first} and {index}"
        else:
            answered[call_id] = index
    for call_id, (_, name) in d.calls.items():
        if call_id not in answered:
            yield f"missing_result: {call_id} {name}"


# role of the previous message -> roles allowed next (tool results follow tool-call turns)
_NEXT = {
    None: {"system", "user"},
    "system": {"user"},
    "user": {"assistant"},
    "assistant": {"user"},
    "assistant+calls": {"tool"},
    "tool": {"tool", "assistant"},
}


@register_format_check("role_order")
def _role_order(d: Dialogue) -> Iterator[str]:
    previous = None
    for index, message in enumerate(d.messages):
        role = message.get("role")
        if role not in _NEXT[previous]:
            yield f"role_order: {role} at message {index} after {previous or 'the start'}"
        previous = "assistant+calls" if _calls(message) else role


@register_format_check("empty_assistant")
def _empty_assistant(d: Dialogue) -> Iterator[str]:
    for index, message in enumerate(d.messages):
        blank = not (message.get("content") or "").strip()
        if message.get("role") == "assistant" and not _calls(message) and blank:
            yield f"empty_assistant: message {index}"


@register_format_check("final_turn")
def _final_turn(d: Dialogue) -> Iterator[str]:
    last = d.messages[-1] if d.messages else {}
    if last.get("role") != "assistant":
        role = last.get("role") or "nothing"
        yield f"final_turn: the dialogue ends with {role}, not the assistant"
    elif _calls(last):
        yield "final_turn: the last assistant turn is a tool call, not an answer"


@register_format_check("execution")
def _execution(d: Dialogue) -> Iterator[str]:
    for index, message in enumerate(d.messages):
        if message.get("role") != "tool" or message.get("tool_call_id") in d.corrected:
            continue
        kind = result_error(message.get("content"))
        if kind in REFUSED_CALLS:
            yield f"tool_error: {kind} from {message.get('name')} (message {index})"
