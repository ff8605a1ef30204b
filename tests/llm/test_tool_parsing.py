"""Tool calls written as text: our format, Hermes/Qwen, bare JSON; bad calls kept, never raised."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kimi_pipeline.agents.policy import to_openai
from kimi_pipeline.envs.base import make_environment
from kimi_pipeline.llm.tool_parsing import detect_format, extract_tool_calls, formats
from kimi_pipeline.records import Message, ToolSpec
from kimi_pipeline.training.chat import CHAT_TEMPLATE, render_chat

CALL = '{"name": "search_orders", "arguments": {"customer": "Zoë", "limit": 1}}'


def test_our_format_splits_content_and_calls():
    text = f"Let me look.<|tool_call|>{CALL}<|/tool_call|><|tool_call|>" \
           '{"name": "cancel_order", "arguments": {"order_id": "o-1"}}<|/tool_call|>'
    out = extract_tool_calls(text, "kimi", first_index=3)
    assert out.content == "Let me look."
    assert [(c.id, c.name, c.arguments) for c in out.calls] == [
        ("call_3", "search_orders", {"customer": "Zoë", "limit": 1}),
        ("call_4", "cancel_order", {"order_id": "o-1"}),
    ]
    assert out.errors == [] and len(out.valid_calls) == 2


def test_hermes_format_as_qwen_writes_it():
    text = f"<tool_call>\n{CALL}\n</tool_call>\n<tool_call>\n" \
           '{"name": "noop", "arguments": {}}\n</tool_call>'
    out = extract_tool_calls(text, "hermes")
    assert out.content is None
    assert [c.name for c in out.calls] == ["search_orders", "noop"]
    assert out.calls[1].arguments == {} and out.errors == []


def test_bare_json_calls_and_plain_text():
    assert extract_tool_calls(CALL, "json").calls[0].name == "search_orders"
    fenced = "```json\n" + json.dumps([{"name": "a", "parameters": {"x": 1}}]) + "\n```"
    call = extract_tool_calls(fenced, "json").calls[0]
    assert (call.name, call.arguments) == ("a", {"x": 1})  # Llama 3.1 writes 'parameters'
    for text in ("Just talking.", '{"answer": 42}', "{not json"):
        out = extract_tool_calls(text, "json")
        assert out.calls == [] and out.errors == [] and out.content == text


def test_plain_text_has_no_calls():
    out = extract_tool_calls("  Order o-17 is cancelled.  ", "kimi")
    assert out.content == "Order o-17 is cancelled." and out.calls == []


@pytest.mark.parametrize(
    ("body", "name", "error"),
    [
        ('{"name": "search_orders", "arguments": {"customer": oops}}', "search_orders",
         "invalid JSON"),
        ('["search_orders"]', "", "not an object"),
        ('{"arguments": {"customer": "Ana"}}', "", "missing tool name"),
        ('{"name": "", "arguments": {}}', "", "missing tool name"),
        ('{"name": "search_orders", "arguments": [1, 2]}', "search_orders", "not a JSON object"),
        ('{"name": "search_orders", "arguments": "{broken"}', "search_orders", "not a JSON object"),
    ],
)
def test_bad_calls_are_kept_with_raw_text_and_an_error(body, name, error):
    out = extract_tool_calls(f"<|tool_call|>{body}<|/tool_call|>", "kimi")
    [call] = out.calls
    assert call.name == name and call.raw_arguments is not None and call.arguments == {}
    assert len(out.errors) == 1 and error in out.errors[0]
    assert out.valid_calls == []


def test_arguments_as_json_text_are_read():
    body = '{"name": "search_orders", "arguments": "{\\"customer\\": \\"Ana\\"}"}'
    [call] = extract_tool_calls(f"<|tool_call|>{body}<|/tool_call|>", "kimi").calls
    assert call.arguments == {"customer": "Ana"} and call.raw_arguments is None


def test_unterminated_call_is_an_error():
    out = extract_tool_calls('Sure.<|tool_call|>{"name": "search_orders", "argu', "kimi")
    assert out.content == "Sure."
    assert out.calls[0].name == "search_orders" and out.calls[0].raw_arguments
    assert "unterminated" in out.errors[0]


@pytest.mark.parametrize("body", [
    '{"name": "create_table", "arguments": {"name": "audit", "columns": {"who": "A"}',
    '{"name": "update_station", "arguments": {"status": "up", "bad": "status": "x"}}',
    '{"name": "f", "arguments": {"a": "b}}',
])
def test_a_bad_call_returns_to_the_context_as_the_model_wrote_it(body):
    """The next turn's prompt shows the unreadable call as written, not wrapped in a second
    call (which a small model then copied into every later call)."""
    [call] = extract_tool_calls(f"<|tool_call|>{body}<|/tool_call|>", "kimi").calls
    assert call.raw_arguments is not None and call.name and call.name in body
    turn = to_openai(Message(role="assistant", content="", tool_calls=[call]))
    text = render_chat([{"role": "user", "content": "hi"}, turn], template=CHAT_TEMPLATE)
    assert f"<|assistant|><|tool_call|>{body}<|/tool_call|><|end|>" in text


def test_environment_records_a_bad_call_like_an_endpoints():
    """A salvaged name + raw text reaches the world as invalid_json, as for the openai backend."""
    tool = ToolSpec(tool_id="synthetic:shop/search_orders", name="search_orders",
                    description="Search orders.", source="synthetic", source_ref="t",
                    parameters={"type": "object", "properties": {"customer": {"type": "string"}}})
    world = make_environment("simulated")
    world.reset([tool], {}, seed=0)
    out = extract_tool_calls('<|tool_call|>{"name": "search_orders", "arguments": {x}}'
                             "<|/tool_call|><|tool_call|>{oops<|/tool_call|>", "kimi")
    errors = [world.step(call).error for call in out.calls]
    assert errors == ["invalid_json", "unknown_tool"]


def test_format_detection_from_templates():
    assert detect_format(CHAT_TEMPLATE) == "kimi"
    qwen = "{%- if tools %}<tools></tools> ... <tool_call>\\n{{ tool_call }}</tool_call>"
    assert detect_format(qwen) == "hermes"
    assert detect_format("{{ messages }}") == "json"
    assert detect_format(None) == "json"
    assert {"kimi", "hermes", "json"} <= set(formats())


def test_unknown_format_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown tool-call format"):
        extract_tool_calls("x", "nope")


PIECES = list('{}[]":,<|>/ \n') + ["<|tool_call|>", "<|/tool_call|>", "<tool_call>", "</tool_call>",
                                    '"name"', '"arguments"', "null", "1", "a"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
       st.sampled_from(["kimi", "hermes", "json"]))
def test_model_output_never_raises(text, fmt):
    out = extract_tool_calls(text, fmt)
    assert len(out.errors) == sum(c.raw_arguments is not None or not c.name for c in out.calls)
