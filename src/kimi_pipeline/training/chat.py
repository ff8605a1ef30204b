"""Chat template of the base model and rendering of SFT examples with assistant-only labels.

``CHAT_TEMPLATE`` renders OpenAI-format conversations (``tools``, assistant ``tool_calls``,
``tool`` results) with the base tokenizer's role and tool-call special tokens. A call's
arguments are written in its tool's signature order (see ``_ARGUMENTS``). Assistant content,
tool calls and the closing ``<|end|>`` sit inside ``{% generation %}`` markers, so Hugging Face's
``apply_chat_template(..., return_assistant_tokens_mask=True)`` knows which characters the model
must learn to produce.

``render_with_mask`` turns one conversation into ``input_ids`` / ``labels`` / ``attention_mask``
with labels only on assistant tokens. Two ways to find the assistant spans, same output:

* ``markers``: the template has ``{% generation %}`` blocks; transformers records their
  character spans while rendering and masks every token whose offsets overlap one.
* ``prefix``: a real checkpoint's own template without markers. Each assistant turn ``i`` is
  located by rendering ``messages[:i]`` with the generation prompt and ``messages[:i+1]``
  without it: the characters the second adds beyond their common prefix are the assistant's.
  The spans are then mapped to tokens through the fast tokenizer's offsets, exactly as above.

``auto`` (default) picks ``markers`` when the template has them. An assistant message with
``"train": false`` (a refused call the agent then corrected, ``curation.sft_format``) stays in
the context but gets no labels: its span is found prefix by prefix, whatever the method, and
its tokens are masked. Truncation is applied after masking, to ``input_ids``, ``labels`` and
``attention_mask`` together, so they stay aligned.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from transformers import PreTrainedTokenizerBase
from transformers.utils.chat_template_utils import render_jinja_template

IGNORE_INDEX = -100

# Tools are declared as compact signatures, one line each: name, parameters (``?`` = optional,
# enums and anyOf/oneOf as unions, ``T[]`` arrays, nested objects in braces) and the first
# sentence of the description. A JSON schema costs a small model 2-3x the tokens for the same
# names and types, and the names and argument keys are what its calls must copy.
_SIGNATURE_MACROS = (
    "{%- macro ts_type(p) -%}"
    "{%- if p.enum is defined -%}{{ p.enum | map('tojson') | join('|') }}"
    "{%- elif p.type == 'array' -%}{% set item = p['items'] if 'items' in p else {} %}"
    "{%- if item.enum is defined or item.type is sequence and item.type is not string -%}"
    "({{ ts_type(item) }})[]{%- else -%}{{ ts_type(item) }}[]{%- endif -%}"
    "{%- elif p.type == 'object' and p.properties is defined -%}{ {{- ts_fields(p) -}} }"
    "{%- elif p.anyOf is defined or p.oneOf is defined -%}"
    "{%- for option in p.anyOf or p.oneOf -%}{{ ts_type(option) }}{{ '|' if not loop.last }}"
    "{%- endfor -%}"
    "{%- elif p.type is string -%}{{ p.type }}"
    "{%- elif p.type is defined -%}{{ p.type | join('|') }}"
    "{%- else -%}any{%- endif -%}"
    "{%- endmacro -%}"
    "{%- macro ts_fields(s) -%}"
    "{%- for name, p in (s.properties or {}).items() -%}"
    "{{ name }}{% if name not in (s.required or []) %}?{% endif %}: {{ ts_type(p) }}"
    "{%- if not loop.last %}, {% endif %}{%- endfor -%}"
    "{%- endmacro -%}"
)
_TOOL_SIGNATURE = (
    "{% set f = tool.function if tool.function is defined else tool %}"
    "{% set summary = (f.description or '').split('. ')[0].strip().rstrip('.') %}"
    "{{ f.name }}({{ ts_fields(f.parameters or {}) }}){{ ': ' + summary if summary }}\n"
)
_TOOLS_BLOCK = (
    "{%- if tools %}<|tools|>\n{% for tool in tools %}"
    + _TOOL_SIGNATURE
    + "{% endfor %}<|/tools|>{% endif %}"
)
# A call's arguments in the order its tool's signature declares them (required ones first, as
# the tools list them), then any key the tool does not declare, in the call's own order. A small
# model writes a call by walking the signature it was shown; alphabetical keys made it reorder
# them, and dropped required ones more often (docs/stages/sft.md). A string is kept verbatim.
_ARGUMENTS = (
    "{% if call.arguments is string %}{{ call.arguments }}"
    "{%- else %}{% set order = namespace(keys=[]) %}"
    "{%- for tool in tools or [] %}"
    "{% set f = tool.function if tool.function is defined else tool %}"
    "{%- if f.name == call.name %}{% for key in (f.parameters or {}).properties or {} %}"
    "{%- if key in call.arguments and key not in order.keys %}"
    "{% set order.keys = order.keys + [key] %}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{%- for key in call.arguments %}{% if key not in order.keys %}"
    "{% set order.keys = order.keys + [key] %}{% endif %}{% endfor %}"
    "{{- '{' }}{% for key in order.keys %}{{ key | tojson }}: {{ call.arguments[key] | tojson }}"
    "{{- ', ' if not loop.last }}{% endfor %}{{ '}' }}{% endif %}"
)
_TOOL_CALL = (
    "{%- for tc in message.tool_calls %}"
    "{% set call = tc.function if tc.function is defined else tc %}"
    '<|tool_call|>{"name": {{ call.name | tojson }}, "arguments": ' + _ARGUMENTS + "}<|/tool_call|>"
    "{%- endfor %}"
)
CHAT_TEMPLATE = (
    _SIGNATURE_MACROS
    + "{{- bos_token }}"
    "{%- if tools and messages[0].role != 'system' %}<|system|>"
    + _TOOLS_BLOCK
    + "<|end|>{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}<|system|>{{ message.content or '' }}"
    + _TOOLS_BLOCK
    + "<|end|>"
    "{%- elif message.role == 'assistant' %}<|assistant|>"
    "{% generation %}{{ message.content or '' }}"
    + _TOOL_CALL
    + "<|end|>{% endgeneration %}"
    "{%- elif message.role == 'tool' %}<|tool|>{{ message.content or '' }}<|end|>"
    "{%- else %}<|{{ message.role }}|>{{ message.content or '' }}<|end|>"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|assistant|>{% endif %}"
)

# ChatML (``<|im_start|>role ... <|im_end|>``) with tools, for pretrained ChatML checkpoints whose
# own template knows no tools (SmolLM2-Instruct): the tools block lists the same one-line
# signatures inside ``<tools>``, calls are Hermes/Qwen ``<tool_call>{json}</tool_call>`` blocks
# (``llm.tool_parsing`` reads them as ``hermes``), tool results come back in a ``tool`` turn.
# Assistant text, calls and ``<|im_end|>`` sit in generation markers, so labels come from the
# template; without tools, a conversation renders exactly as the checkpoint's own template.
CHATML_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
_CHATML_TOOLS = (
    "{%- if tools %}{{ '\\n\\nYou can call these tools:\\n<tools>\\n' }}{% for tool in tools %}"
    + _TOOL_SIGNATURE
    + "{% endfor %}{{ '</tools>\\nTo call a tool, write ' }}"
    '<tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>.{% endif %}'
)
_CHATML_CALLS = (
    "{%- for tc in message.tool_calls %}"
    "{% set call = tc.function if tc.function is defined else tc %}"
    '<tool_call>{"name": {{ call.name | tojson }}, "arguments": ' + _ARGUMENTS + "}</tool_call>"
    "{%- endfor %}"
)
CHATML_TOOLS_TEMPLATE = (
    _SIGNATURE_MACROS
    + "{%- if messages and messages[0].role == 'system' %}"
    "{% set system = messages[0].content or '' %}{% set rest = messages[1:] %}"
    "{%- else %}{% set system = default_system | default('" + CHATML_DEFAULT_SYSTEM + "') %}"
    "{% set rest = messages %}{%- endif %}"
    "{{- '<|im_start|>system\n' + system }}" + _CHATML_TOOLS + "{{ '<|im_end|>\n' }}"
    "{%- for message in rest %}"
    "{%- if message.role == 'assistant' %}{{ '<|im_start|>assistant\n' }}"
    "{% generation %}{{ message.content or '' }}" + _CHATML_CALLS
    + "{{ '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{%- else %}{{ '<|im_start|>' + message.role + '\n' + (message.content or '') "
    "+ '<|im_end|>\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# chat templates a base-model source can attach, by name ("own" keeps the checkpoint's)
TEMPLATES = {"tools_chatml": CHATML_TOOLS_TEMPLATE, "kimi": CHAT_TEMPLATE}

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")
Method = Literal["auto", "markers", "prefix"]


def has_generation_markers(template: str) -> bool:
    """Whether a chat template marks assistant output with ``{% generation %}`` blocks."""
    return bool(_GENERATION_TAG.search(template))


def render_chat(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    template: str = CHAT_TEMPLATE,
    add_generation_prompt: bool = False,
    **special_tokens: str,
) -> str:
    """Render a conversation to text without a tokenizer (used to build the tokenizer corpus)."""
    special_tokens.setdefault("bos_token", "<|bos|>")
    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools or None,
        chat_template=template,
        add_generation_prompt=add_generation_prompt,
        **special_tokens,
    )
    return rendered[0]


def render_with_mask(
    tokenizer: PreTrainedTokenizerBase,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    max_length: int | None = None,
    method: Method = "auto",
) -> dict[str, list[int]]:
    """Tokenise one conversation; ``labels`` = input ids on assistant tokens, -100 elsewhere."""
    messages = [_drop_none(m) for m in messages]
    tools = tools or None
    if method == "auto":
        method = "markers" if has_generation_markers(_template(tokenizer, tools)) else "prefix"
    if method == "markers":
        input_ids, mask = _marker_mask(tokenizer, messages, tools)
    elif method == "prefix":
        input_ids, mask = _prefix_mask(tokenizer, messages, tools)
    else:
        raise ValueError(f"unknown masking method {method!r}")
    untrained = [i for i, m in enumerate(messages)
                 if m.get("role") == "assistant" and m.get("train") is False]
    if untrained:
        mask = _without_turns(tokenizer, messages, tools, untrained, input_ids, mask)
    labels = [t if m else IGNORE_INDEX for t, m in zip(input_ids, mask, strict=True)]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [1] * len(input_ids)}


def _drop_none(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if v is not None}


def _template(tokenizer: PreTrainedTokenizerBase, tools: list[dict[str, Any]] | None) -> str:
    return tokenizer.get_chat_template(None, tools)


def _marker_mask(tokenizer, messages, tools) -> tuple[list[int], list[int]]:
    if not has_generation_markers(_template(tokenizer, tools)):
        raise ValueError(
            "the tokenizer's chat template has no {% generation %} markers; use method='prefix'"
        )
    out = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    return list(out["input_ids"]), list(out["assistant_masks"])


def _render(tokenizer, messages, tools, add_generation_prompt: bool) -> str:
    rendered, _ = render_jinja_template(
        conversations=[messages],
        tools=tools,
        chat_template=_template(tokenizer, tools),
        add_generation_prompt=add_generation_prompt,
        **tokenizer.special_tokens_map,
    )
    return rendered[0]


def assistant_spans(tokenizer, messages, tools=None) -> tuple[str, list[tuple[int, int]]]:
    """Rendered text and the character spans of its assistant turns, found prefix by prefix."""
    full = _render(tokenizer, messages, tools, add_generation_prompt=False)
    spans = [
        _turn_span(tokenizer, messages, tools, i, full)
        for i, message in enumerate(messages)
        if message.get("role") == "assistant"
    ]
    return full, [span for span in spans if span]


def _turn_span(tokenizer, messages, tools, i: int, full: str) -> tuple[int, int] | None:
    """Characters of ``full`` that assistant message ``i`` adds (None: it adds none)."""
    before = _render(tokenizer, messages[:i], tools, add_generation_prompt=True)
    upto = _render(tokenizer, messages[: i + 1], tools, add_generation_prompt=False)
    if not full.startswith(upto):
        raise ValueError(
            f"chat template is not prefix-stable at message {i}: rendering more messages "
            "changes earlier text, so assistant spans cannot be located without "
            "{% generation %} markers"
        )
    start = len(os.path.commonprefix([before, upto]))
    return (start, len(upto)) if start < len(upto) else None


def _without_turns(tokenizer, messages, tools, turns, input_ids, mask) -> list[int]:
    """``mask`` with the tokens of assistant messages ``turns`` cleared."""
    full = _render(tokenizer, messages, tools, add_generation_prompt=False)
    spans = [span for i in turns for span in [_turn_span(tokenizer, messages, tools, i, full)]
             if span]
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    if list(enc["input_ids"]) != list(input_ids):
        raise ValueError("the rendered text does not tokenise to the template's input ids, so "
                         "turns marked train=false cannot be located")
    drop = _overlap_mask(enc["offset_mapping"], spans)
    return [int(m and not d) for m, d in zip(mask, drop, strict=True)]


def _prefix_mask(tokenizer, messages, tools) -> tuple[list[int], list[int]]:
    text, spans = assistant_spans(tokenizer, messages, tools)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), _overlap_mask(enc["offset_mapping"], spans)


def _overlap_mask(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """1 for every token whose character range overlaps a span (same rule transformers uses)."""
    mask, k = [0] * len(offsets), 0
    for i, (start, end) in enumerate(offsets):
        while k < len(spans) and start >= spans[k][1]:
            k += 1
        if k == len(spans):
            break
        mask[i] = int(end > spans[k][0])
    return mask
