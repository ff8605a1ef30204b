"""Tool calls written as text by a local model, parsed back into ``ToolCall`` records.

A chat-completions endpoint returns tool calls as structured JSON; a local model writes them
inline in its text, each model family in its own format. Formats plug in through a small
registry (``@register_format``): each one finds the call blocks in the text, and one shared
reader turns a block's JSON into a ``ToolCall``.

- ``kimi``: our chat template (``training.chat``):
  ``<|tool_call|>{"name", "arguments"}<|/tool_call|>``.
- ``hermes``: Hermes / Qwen2.5 / Qwen3 templates:
  ``<tool_call>\\n{"name", "arguments"}\\n</tool_call>``.
- ``json``: the fallback for templates with no markers (Llama 3.1 style): the whole reply is
  one JSON object (or a list of them) with a ``name``; ``parameters`` is read as ``arguments``.
  A reply that is not such JSON is plain content, never an error, since the model may just talk.

``detect_format`` picks the format from a chat template's text (the markers it renders).

Model output is untrusted, so parsing never raises. A call that cannot be read is still
returned, shaped the way the ``openai`` backend shapes a call with bad arguments: ``name`` as
far as it could be read ('' when not at all) and the arguments text as written kept in
``raw_arguments`` (so the next turn's prompt renders the call as the model wrote it). The
environment then answers it with an ``unknown_tool`` / ``invalid_json`` error that the
episode records, exactly as for an endpoint's malformed call. Each such call adds one line to
``errors``; an unterminated block (no closing tag: the turn or the token budget ended inside
it) is an error too, because the model did not write a complete call.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from kimi_pipeline.records import ToolCall


@dataclass
class Block:
    """One call as written: the text between the markers, and whether it was closed."""

    text: str
    terminated: bool = True


@dataclass
class ParsedOutput:
    """A model reply split into its text and its tool calls (with one line per bad call)."""

    content: str | None
    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def valid_calls(self) -> list[ToolCall]:
        return [c for c in self.calls if c.name and c.raw_arguments is None]


Extractor = Callable[[str], tuple[str, list[Block]]]
_FORMATS: dict[str, Extractor] = {}
_MARKERS: dict[str, tuple[str, ...]] = {}  # format -> strings its chat templates contain


def register_format(name: str, markers: tuple[str, ...] = ()):
    """Add a format's block extractor; ``markers`` let ``detect_format`` recognise its templates."""

    def wrap(extractor: Extractor) -> Extractor:
        _FORMATS[name] = extractor
        _MARKERS[name] = markers
        return extractor

    return wrap


def formats() -> list[str]:
    return sorted(_FORMATS)


def detect_format(chat_template: Any) -> str:
    """The registered format whose markers the template renders; ``json`` when none does."""
    text = chat_template if isinstance(chat_template, str) else json.dumps(chat_template or "")
    for name, markers in _MARKERS.items():
        if markers and any(marker in text for marker in markers):
            return name
    return "json"


def tagged(open_tag: str, close_tag: str) -> Extractor:
    """Extractor for calls wrapped in an open/close tag pair; the text outside is content."""

    def extract(text: str) -> tuple[str, list[Block]]:
        content, blocks, at = [], [], 0
        while True:
            start = text.find(open_tag, at)
            if start < 0:
                content.append(text[at:])
                return "".join(content), blocks
            content.append(text[at:start])
            end = text.find(close_tag, start + len(open_tag))
            if end < 0:  # the turn ended inside the call
                blocks.append(Block(text[start + len(open_tag):].strip(), terminated=False))
                return "".join(content), blocks
            blocks.append(Block(text[start + len(open_tag):end].strip()))
            at = end + len(close_tag)

    return extract


# The open and close tags of each tagged format (``llm.enforcer`` builds its grammar from them)
CALL_TAGS: dict[str, tuple[str, str]] = {
    "kimi": ("<|tool_call|>", "<|/tool_call|>"),
    "hermes": ("<tool_call>", "</tool_call>"),
}
for _name, (_open, _close) in CALL_TAGS.items():
    register_format(_name, markers=(_open,))(tagged(_open, _close))

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


@register_format("json")
def bare_json(text: str) -> tuple[str, list[Block]]:
    """The whole reply as one call object or a list of them; anything else is content."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    body = fenced.group(1) if fenced else stripped
    try:
        value = json.loads(body)
    except ValueError:
        return text, []
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, dict) and "name" in i for i in items):
        return text, []
    return "", [Block(json.dumps(i, ensure_ascii=False)) for i in items]


# ------------------------------------------------------------------------- reading one block

_NAME = re.compile(r'"name"\s*:\s*"([^"\\]{1,64})"')
# how the chat templates open a call: {"name": "<tool>", "arguments":
_CALL_HEAD = re.compile(r'\s*\{\s*' + _NAME.pattern + r'\s*,\s*"arguments"\s*:\s*')


def read_block(block: Block, call_id: str) -> tuple[ToolCall, str | None]:
    """A block as a ``ToolCall`` and the error that spoilt it (None when it parsed cleanly)."""
    if not block.terminated:
        return _unreadable(block.text, call_id, "unterminated tool call (no closing tag)")
    try:
        value = json.loads(block.text)
    except ValueError as exc:
        return _unreadable(block.text, call_id, f"invalid JSON ({exc})")
    if not isinstance(value, dict):
        return ToolCall(id=call_id, name="", raw_arguments=block.text), (
            f"call is a JSON {type(value).__name__}, not an object"
        )
    name = value.get("name")
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):  # some models encode the arguments object as a string
        arguments = _loads(arguments, default=arguments)
    if not isinstance(name, str) or not name.strip():
        raw = json.dumps(arguments, ensure_ascii=False, default=str)
        return ToolCall(id=call_id, name="", raw_arguments=raw), "missing tool name"
    if not isinstance(arguments, dict):
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments, default=str)
        return ToolCall(id=call_id, name=name.strip(), raw_arguments=raw), (
            f"arguments of {name.strip()} are not a JSON object"
        )
    return ToolCall(id=call_id, name=name.strip(), arguments=arguments), None


def _unreadable(text: str, call_id: str, why: str) -> tuple[ToolCall, str]:
    """Salvage the name (so the environment can say which tool's JSON was bad) and keep the
    arguments text as written in ``raw_arguments``: when the block opens the way the chat
    templates write a call (``{"name": "…", "arguments": ``), the text after that opening,
    less the object's closing brace, so that the template, which wraps raw arguments in that
    opening again, shows the model its own call as it wrote it in the next turn's context
    (the whole block there nested one call inside another, and a small model copied the
    nesting into every later call); otherwise the whole block."""
    head = _CALL_HEAD.match(text)
    if head:
        rest = text[head.end():].rstrip()
        raw = rest[:-1] if rest.endswith("}") else rest
        return ToolCall(id=call_id, name=head.group(1), raw_arguments=raw), why
    name = _NAME.search(text)
    return ToolCall(id=call_id, name=name.group(1) if name else "", raw_arguments=text), why


def _loads(text: str, default: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return default


def extract_tool_calls(text: str, fmt: str = "kimi", first_index: int = 0) -> ParsedOutput:
    """Split a model's reply into content and tool calls (ids ``call_<first_index + i>``).

    Never raises on the text: unreadable calls come back with ``raw_arguments`` set and an
    error line each. An unknown ``fmt`` is a programming error and does raise."""
    if fmt not in _FORMATS:
        raise ValueError(f"unknown tool-call format {fmt!r}; known: {formats()}")
    content, blocks = _FORMATS[fmt](text or "")
    out = ParsedOutput(content=content.strip() or None)
    for i, block in enumerate(blocks):
        call, error = read_block(block, f"call_{first_index + i}")
        out.calls.append(call)
        if error:
            out.errors.append(f"tool call {i}: {error}")
    return out
