"""First-call scoring: which cases are cut where, and what each flag means."""

from __future__ import annotations

import json

import polars as pl

from kimi_pipeline.agents.first_calls import first_call_cases, score_first_calls
from kimi_pipeline.llm.base import ChatRequest, ChatResponse
from kimi_pipeline.records import ToolCall

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Get an order.",
          "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                         "required": ["order_id"], "additionalProperties": False}}},
         {"type": "function", "function": {"name": "list_orders", "description": "List.",
          "parameters": {"type": "object", "properties": {}}}}]


def _example(example_id: str, split: str, call: bool) -> dict:
    messages = [{"role": "system", "content": "You help."},
                {"role": "user", "content": f"where is order {example_id}?"}]
    if call:
        messages += [
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c0", "type": "function",
             "function": {"name": "get_order", "arguments": {"order_id": example_id}}}]},
            {"role": "tool", "tool_call_id": "c0", "content": "{}"}]
    messages.append({"role": "assistant", "content": "It is on its way."})
    return {"example_id": example_id, "split": split, "messages": json.dumps(messages),
            "tools": json.dumps(TOOLS)}


class Scripted:
    """A test double of the chat-backend protocol: answers each example with a scripted call."""

    name = "scripted"

    def __init__(self, calls: dict[str, ToolCall | None]):
        self.calls, self.seen = calls, []

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        self.seen.append(request)
        call = self.calls[request.messages[-1]["content"].split()[-1].rstrip("?")]
        return ChatResponse(content="", tool_calls=[call] if call else [])


def test_cases_are_validation_examples_cut_before_their_first_call():
    frame = pl.DataFrame([_example("A1", "validation", True), _example("A2", "train", True),
                          _example("A3", "validation", False)])
    cases = first_call_cases(frame, 10)
    assert [c.example_id for c in cases] == ["A1"]  # train split and call-less dialogues skipped
    assert [m["role"] for m in cases[0].context] == ["system", "user"]
    assert (cases[0].name, cases[0].arguments) == ("get_order", {"order_id": "A1"})


def test_each_flag_counts_what_it_names():
    frame = pl.DataFrame([_example(f"O{i}", "validation", True) for i in range(5)])
    cases = first_call_cases(frame, 5)
    backend = Scripted({
        "O0": ToolCall(id="c", name="get_order", arguments={"order_id": "O0"}),   # exact
        "O1": ToolCall(id="c", name="get_order", arguments={"order_id": "O9"}),   # right, valid
        "O2": ToolCall(id="c", name="list_orders", arguments={}),                 # wrong tool
        "O3": ToolCall(id="c", name="get_order", arguments={}, raw_arguments='{"order_id'),
        "O4": None,                                                               # prose
    })
    summary, rows = score_first_calls(backend, cases)
    assert summary["cases"] == 5
    assert summary["called_rate"] == 0.8 and summary["parsed_rate"] == 0.6
    assert summary["schema_valid_rate"] == 0.6 and summary["right_tool_rate"] == 0.4
    assert summary["exact_rate"] == 0.2
    assert rows.filter(pl.col("example_id") == "O3")["schema_valid"].item() is False
    assert all(r.temperature == 0.0 and r.tools == TOOLS for r in backend.seen)


def test_an_unoffered_tool_is_not_schema_valid():
    cases = first_call_cases(pl.DataFrame([_example("B1", "validation", True)]), 1)
    backend = Scripted({"B1": ToolCall(id="c", name="delete_order", arguments={})})
    summary, _ = score_first_calls(backend, cases)
    assert summary["parsed_rate"] == 1.0 and summary["schema_valid_rate"] == 0.0


def test_a_corrected_call_is_context_and_the_call_after_it_the_reference():
    example = _example("A1", "validation", True)
    messages = json.loads(example["messages"])
    refused = {"role": "assistant", "content": "", "train": False, "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "get_order", "arguments": {}}}]}
    error = {"role": "tool", "tool_call_id": "c9", "content": '{"error": {"code": 400}}'}
    messages[2:2] = [refused, error]
    cases = first_call_cases(pl.DataFrame([{**example, "messages": json.dumps(messages)}]), 1)
    assert cases[0].context == messages[:4] and cases[0].arguments == {"order_id": "A1"}
