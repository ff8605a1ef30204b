"""Read each trajectory's ``messages`` JSON once into the text columns the curation steps use.

The curation steps compare texts (dedup, decontamination) and count lengths and tools
(balance); all of that lives inside the ``messages`` JSON string. ``ensure_parsed`` streams
that one column through ``orjson`` (no pydantic objects: ~15 µs a trajectory) and adds derived
columns, prefixed ``_cur_``, that every later step reuses instead of parsing again. A row whose
messages are not a JSON list of chat messages is split off with its reason, never raised.

Derived columns:
* ``_cur_request``: the first user message ("" when there is none);
* ``_cur_dialogue``: every turn but the system prompt — contents, tool-call names and
  arguments, tool results. The system prompt is the agent's, shared by all its tasks, so it
  would make an agent's different dialogues look alike;
* ``_cur_user_assistant``: what the user and the assistant wrote (decontamination);
* ``_cur_tools_called``: distinct tool names called, in call order;
* ``_cur_chars``: characters of all contents (system included), call names and arguments.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import orjson
import polars as pl

PREFIX = "_cur_"
REQUEST, DIALOGUE, USER_ASSISTANT = (
    f"{PREFIX}request",
    f"{PREFIX}dialogue",
    f"{PREFIX}user_assistant",
)
TOOLS_CALLED, CHARS, ERROR = f"{PREFIX}tools_called", f"{PREFIX}chars", f"{PREFIX}error"
DERIVED = (REQUEST, DIALOGUE, USER_ASSISTANT, TOOLS_CALLED, CHARS)
ROLES = frozenset({"system", "user", "assistant", "tool"})
_SEP = "\x1f"  # joins tool names into one string: a list-of-lists Series builds 20x slower


class MalformedMessages(ValueError):
    """The ``messages`` value is not a JSON list of chat messages."""


def require_columns(frame: pl.DataFrame, columns: Iterable[str], step: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{step}: input frame lacks column(s) {missing}; has {frame.columns}")


def parse_messages(text: Any) -> list[dict[str, Any]]:
    """Decode and check one ``messages`` value; raise ``MalformedMessages`` with the reason."""
    if not isinstance(text, (str, bytes)):
        raise MalformedMessages(f"messages is {type(text).__name__}, not a JSON string")
    try:
        messages = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessages(f"messages is not valid JSON ({exc})") from None
    if not isinstance(messages, list):
        raise MalformedMessages("messages is not a JSON list")
    for index, message in enumerate(messages):
        _check_message(index, message)
    return messages


def _check_message(index: int, message: Any) -> None:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise MalformedMessages(f"message {index} is not an object with a valid role")
    if not isinstance(message.get("content") or "", str):
        raise MalformedMessages(f"message {index} has non-text content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls
    ):
        raise MalformedMessages(f"message {index} has tool_calls without names")


def _texts(messages: list[dict[str, Any]]) -> tuple[str, str, str, str, int]:
    request, dialogue, spoken, tools, chars = None, [], [], [], 0
    for message in messages:
        role, content = message["role"], message.get("content") or ""
        chars += len(content)
        if role == "user" and request is None:
            request = content
        if role in ("user", "assistant"):
            spoken.append(content)
        if role != "system":
            dialogue.append(content)
        for call in message.get("tool_calls") or ():
            arguments = orjson.dumps(call.get("arguments") or {}).decode()
            chars += len(call["name"]) + len(arguments)
            dialogue += (call["name"], arguments)
            if call["name"] not in tools:
                tools.append(call["name"])
    return request or "", "\n".join(dialogue), "\n".join(spoken), _SEP.join(tools), chars


def _derive(text: Any) -> tuple[str, str, str, str, int, str | None]:
    """The derived values of one row and its error (None when the messages are well formed)."""
    try:
        return (*_texts(parse_messages(text)), None)
    except MalformedMessages as exc:
        return "", "", "", "", 0, str(exc)


_SCHEMA = {
    REQUEST: pl.String,
    DIALOGUE: pl.String,
    USER_ASSISTANT: pl.String,
    TOOLS_CALLED: pl.String,
    CHARS: pl.Int64,
    ERROR: pl.String,
}


def ensure_parsed(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows with the derived columns, malformed rows with an ``_cur_error`` column)."""
    if all(c in frame.columns for c in DERIVED):
        return frame, frame.clear().with_columns(pl.lit(None, pl.String).alias(ERROR))
    require_columns(frame, ["messages"], "curation")
    values = list(zip(*(_derive(text) for text in frame["messages"]))) or [()] * len(_SCHEMA)
    derived = pl.DataFrame(
        [
            pl.Series(name, column, dtype=dtype)
            for (name, dtype), column in zip(_SCHEMA.items(), values)
        ]
    ).with_columns(
        pl.when(pl.col(TOOLS_CALLED) == "")
        .then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.col(TOOLS_CALLED).str.split(_SEP))
        .alias(TOOLS_CALLED)
    )
    full = pl.concat([frame.drop(DERIVED, strict=False), derived], how="horizontal")
    bad = pl.col(ERROR).is_not_null()
    return full.filter(~bad).drop(ERROR), full.filter(bad).drop(DERIVED)


def drop_derived(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame without the ``_cur_`` columns (what leaves the curation steps as data)."""
    return frame.select(c for c in frame.columns if not c.startswith(PREFIX))


def removed(frame: pl.DataFrame, step: str, reason: pl.Expr | pl.Series) -> pl.DataFrame:
    """Rows taken out by ``step``: the input columns plus ``step`` and ``reason``."""
    reason = reason.alias("reason") if isinstance(reason, pl.Expr) else reason.rename("reason")
    return drop_derived(frame.with_columns(pl.lit(step).alias("step"), reason))


def malformed(rows: pl.DataFrame, step: str) -> pl.DataFrame:
    """Malformed rows from ``ensure_parsed`` as removed rows of ``step``."""
    return removed(rows, step, pl.lit("malformed_messages: ") + pl.col(ERROR))


def full_text(messages: str, tools: str | None) -> str:
    """What an example's length is measured on: every content, tool call and the tools JSON."""
    parts = []
    for message in parse_messages(messages):
        parts.append(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            parts += (call["name"], orjson.dumps(call.get("arguments") or {}).decode())
    return "\n".join([*parts, tools or ""])


def stable_hash(values: pl.Series) -> pl.Series:
    """CRC32 of each string: the same in every process and polars version (unlike ``hash``)."""
    return pl.Series(
        values.name, [zlib.crc32((v or "").encode()) for v in values.to_list()], dtype=pl.UInt32
    )
