"""Chat template rendering and assistant-only labels, checked by decoding the labelled tokens."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast

from kimi_pipeline.training.chat import (
    CHAT_TEMPLATE,
    CHATML_TOOLS_TEMPLATE,
    IGNORE_INDEX,
    has_generation_markers,
    render_chat,
    render_with_mask,
)
from tests.training import (
    ASSISTANT_RENDERINGS,
    NON_ASSISTANT_TEXT,
    TOOLS,
    conversation,
    make_tokenizer,
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()

# A marker-less tools template in the style of Qwen2.5's (ChatML, <tool_call> JSON, tool results
# folded into user turns as <tool_response>), standing in for a real checkpoint's own template.
QWEN_STYLE_TEMPLATE = """{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools><|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'system' and not loop.first) -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{% if message.content %}{{ message.content }}{% endif %}
{%- for tc in message.tool_calls or [] %}
{{- '\n<tool_call>\n{"name": "' + tc.function.name + '", "arguments": ' }}
{{- tc.function.arguments | tojson + '}\n</tool_call>' }}
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def labelled_runs(tokenizer, encoded: dict) -> list[str]:
    """Decode each maximal run of labelled tokens."""
    runs, current = [], []
    for label in [*encoded["labels"], IGNORE_INDEX]:
        if label != IGNORE_INDEX:
            current.append(label)
        elif current:
            runs.append(tokenizer.decode(current))
            current = []
    return runs


def test_template_renders_tools_calls_and_results():
    text = render_chat(conversation(), TOOLS)
    assert text.startswith("<|bos|><|system|>You are SYSTEM-SECRET")
    assert "<|tools|>\n" in text and "<|/tools|><|end|>" in text
    assert "<|tools|>\nsearch_orders(customer?: string): Search orders by customer\n" in text
    assert "cancel_order(order_id?: string): Cancel an order\n<|/tools|>" in text
    call = '<|tool_call|>{"name": "cancel_order", "arguments": {"order_id": "o-17"}}<|/tool_call|>'
    assert call in text
    assert '<|tool|>{"RESULT-A": ["o-17"]}<|end|>' in text
    assert "<|user|>USER-THANKS<|end|>" in text
    assert not text.endswith("<|assistant|>")
    prompt = render_chat(conversation()[:2], TOOLS, add_generation_prompt=True)
    assert prompt.endswith("<|end|><|assistant|>")


def test_tools_are_declared_as_one_line_signatures():
    tool = {
        "name": "get_loan",
        "description": "Retrieves one loan. Fails when absent.",
        "parameters": {
            "type": "object",
            "required": ["target"],
            "properties": {
                "target": {"oneOf": [
                    {"type": "object", "properties": {"loan_id": {"type": "string"}},
                     "required": ["loan_id"]},
                    {"type": "object", "properties": {"loan_ids": {
                        "type": "array", "items": {"type": "string"}}}},
                ]},
                "fields": {"type": "array", "items": {"enum": ["due", "status"]}},
                "note": {"type": ["string", "null"]},
                "extra": {},
            },
        },
    }
    user = [{"role": "user", "content": "hi"}]
    text = render_chat(user, [{"type": "function", "function": tool}])
    assert (
        "<|tools|>\nget_loan(target: {loan_id: string}|{loan_ids?: string[]}, "
        'fields?: ("due"|"status")[], note?: string|null, extra?: any): Retrieves one loan\n'
        "<|/tools|>"
    ) in text
    bare = render_chat(user, [{"name": "ping"}])
    assert "<|tools|>\nping()\n<|/tools|>" in bare


def test_template_without_system_puts_tools_in_own_system_turn():
    text = render_chat(conversation()[1:], TOOLS)
    assert text.startswith("<|bos|><|system|><|tools|>\n")
    assert "<|/tools|><|end|><|user|>USER-ASKS" in text
    assert "<|tools|>" not in render_chat(conversation(), None)


def test_string_arguments_are_kept_verbatim():
    msgs = conversation()[:2] + [
        {"role": "assistant", "tool_calls": [{"id": "x", "type": "function",
                                              "function": {"name": "f", "arguments": '{"b": 2}'}}]}
    ]
    assert '<|tool_call|>{"name": "f", "arguments": {"b": 2}}<|/tool_call|>' in render_chat(msgs)


@pytest.mark.parametrize("template", [CHAT_TEMPLATE, CHATML_TOOLS_TEMPLATE])
def test_call_arguments_follow_the_signature_order_then_their_own(template):
    tool = {"name": "book", "parameters": {"type": "object", "required": ["zone"], "properties": {
        "zone": {"type": "string"}, "at": {"type": "object"}, "seats": {"type": "integer"}}}}
    arguments = {"seats": 2, "note": "é", "at": {"m": 1, "h": 9}, "zone": "z"}
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "book", "arguments": arguments}},
        {"type": "function", "function": {"name": "unknown", "arguments": {"b": 1, "a": 2}}}]}]
    text = render_chat(msgs, [{"type": "function", "function": tool}], template=template)
    assert ('{"name": "book", "arguments": {"zone": "z", "at": {"m": 1, "h": 9}, "seats": 2, '
            '"note": "é"}}') in text
    assert '{"name": "unknown", "arguments": {"b": 1, "a": 2}}' in text
    without_tools = render_chat(msgs, None, template=template)
    assert '"arguments": {"seats": 2, "note": "é", "at": {"m": 1, "h": 9}, "zone": "z"}' in (
        without_tools)


def test_tokenizer_template_has_generation_markers(tokenizer):
    assert tokenizer.chat_template == CHAT_TEMPLATE and has_generation_markers(CHAT_TEMPLATE)
    assert not has_generation_markers(QWEN_STYLE_TEMPLATE)


@pytest.mark.parametrize("method", ["auto", "markers", "prefix"])
def test_labels_decode_to_exactly_the_assistant_turns(tokenizer, method):
    encoded = render_with_mask(tokenizer, conversation(), TOOLS, method=method)
    assert labelled_runs(tokenizer, encoded) == ASSISTANT_RENDERINGS
    labelled = "".join(labelled_runs(tokenizer, encoded))
    assert not any(text in labelled for text in NON_ASSISTANT_TEXT)
    assert len(encoded["input_ids"]) == len(encoded["labels"]) == len(encoded["attention_mask"])
    pairs = zip(encoded["input_ids"], encoded["labels"], strict=True)
    assert all(lab in (IGNORE_INDEX, tok) for tok, lab in pairs)
    assert tokenizer.decode(encoded["input_ids"]) == render_chat(conversation(), TOOLS)


def test_prefix_path_matches_marker_path(tokenizer):
    for chat in (conversation(), conversation("李雷")[1:], conversation()[:3]):
        assert render_with_mask(tokenizer, chat, TOOLS, method="prefix") == render_with_mask(
            tokenizer, chat, TOOLS, method="markers"
        )


def test_markers_method_refuses_markerless_template(tokenizer):
    tok = _with_template(tokenizer, QWEN_STYLE_TEMPLATE)
    with pytest.raises(ValueError, match="generation"):
        render_with_mask(tok, conversation(), TOOLS, method="markers")


def test_markerless_template_masks_via_prefixes(tokenizer):
    tok = _with_template(tokenizer, QWEN_STYLE_TEMPLATE)
    encoded = render_with_mask(tok, conversation(), TOOLS)
    expected = [
        'Let me look that up.\n<tool_call>\n{"name": "search_orders", '
        '"arguments": {"customer": "Zoë", "limit": 1}}'
        "\n</tool_call><|im_end|>\n",
        '\n<tool_call>\n{"name": "cancel_order", "arguments": {"order_id": "o-17"}}'
        "\n</tool_call><|im_end|>\n",
        "Order o-17 is cancelled ✅.<|im_end|>\n",
        "You're welcome!<|im_end|>\n",
    ]
    assert labelled_runs(tok, encoded) == expected
    rendered = tok.apply_chat_template(conversation(), tools=TOOLS, tokenize=False)
    assert tok.decode(encoded["input_ids"]) == rendered


def test_prefix_unstable_template_is_rejected(tokenizer):
    # Renders only the last message: earlier text changes as messages are added.
    tok = _with_template(tokenizer, "{{ messages[-1].content }}")
    with pytest.raises(ValueError, match="prefix-stable"):
        render_with_mask(tok, conversation(), TOOLS)


def test_truncation_keeps_labels_aligned(tokenizer):
    full = render_with_mask(tokenizer, conversation(), TOOLS)
    for max_length in (1, 40, len(full["input_ids"]) - 3, len(full["input_ids"]) + 10):
        cut = render_with_mask(tokenizer, conversation(), TOOLS, max_length=max_length)
        n = min(max_length, len(full["input_ids"]))
        assert cut == {key: value[:n] for key, value in full.items()}


def test_conversation_without_assistant_has_no_labels(tokenizer):
    encoded = render_with_mask(tokenizer, conversation()[:2], TOOLS)
    assert set(encoded["labels"]) == {IGNORE_INDEX}


def _with_template(tokenizer, template: str):
    """A copy of the tokenizer with another chat template and ChatML tokens made special."""
    core = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|pad|>"
    )
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = template
    return tok


def _with_refused_call(chat: list[dict]) -> list[dict]:
    """``chat`` with a refused cancel_order (no order_id, API says 400) before the right one."""
    refused = {"role": "assistant", "content": "", "train": False,
               "tool_calls": [_call_like(chat[4], "c0", {})]}
    error = {"role": "tool", "tool_call_id": "c0", "name": "cancel_order",
             "content": '{"error": {"code": 400, "message": "REFUSED-ERROR"}}'}
    return chat[:4] + [refused, error] + chat[4:]


def _call_like(message: dict, call_id: str, arguments: dict) -> dict:
    call = message["tool_calls"][0]
    return {**call, "id": call_id, "function": {**call["function"], "arguments": arguments}}


@pytest.mark.parametrize("method", ["auto", "markers", "prefix"])
def test_an_assistant_turn_marked_train_false_is_context_not_labels(tokenizer, method):
    chat = _with_refused_call(conversation())
    encoded = render_with_mask(tokenizer, chat, TOOLS, method=method)
    assert labelled_runs(tokenizer, encoded) == ASSISTANT_RENDERINGS  # the refused call: none
    assert tokenizer.decode(encoded["input_ids"]) == render_chat(chat, TOOLS)  # still in context
    assert '"arguments": {}' in render_chat(chat, TOOLS) and "REFUSED-ERROR" in render_chat(
        chat, TOOLS
    )


def test_a_train_false_turn_is_masked_under_a_markerless_template_too(tokenizer):
    tok = _with_template(tokenizer, QWEN_STYLE_TEMPLATE)
    plain = labelled_runs(tok, render_with_mask(tok, conversation(), TOOLS))
    assert labelled_runs(tok, render_with_mask(tok, _with_refused_call(conversation()), TOOLS)) \
        == plain
