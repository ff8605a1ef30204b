"""Find tool specs in raw files of any common dialect and turn them into ``ToolSpec`` records.

Tool definitions are published as MCP tools (``inputSchema``), MCP ``tools/list`` results
(bare or inside a JSON-RPC envelope), OpenAI function-calling entries, legacy OpenAI
``functions`` lists, Anthropic tools (``input_schema``), bare ``{name, description,
parameters}`` objects, and lists or JSON-lines of any of these.  ``iter_raw_tools`` maps
every tool it finds in one file to the common pre-shape ``normalise_tool`` expects and
reports everything else as ``Rejected`` with a reason.  ``ingest_files`` streams a Kedro
``PartitionedDataset`` (partition id -> loader), one file at a time, and yields a
``ToolSpec`` per repaired tool and a ``QuarantineRecord`` per refusal; nothing raises out
of it, whatever the files hold.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kimi_pipeline.records import QuarantineRecord, ToolSpec
from kimi_pipeline.tools.config import NormaliseConfig
from kimi_pipeline.tools.normalize import SpecRejected, normalise_tool

__all__ = ["RawTool", "Rejected", "ingest_files", "iter_raw_tools", "iter_tools_in"]

_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_MAX_ORIGINAL_CHARS = 65_536
_MAX_CONTAINER_DEPTH = 8  # lists / envelopes around tools
_STAGE = "tool_repo"
# Pre-shape keys besides name/description/parameters that normalise_tool knows how to use.
_PASS_THROUGH = ("summary", "desc", "doc", "help", "title", "properties", "required")
_BARE_HINTS = ("description", "parameters", "summary", "desc", "doc", "help", "properties")
_DIALECT_NAMES = (
    "MCP tool, MCP tools/list result, OpenAI function, "
    "OpenAI functions list, Anthropic tool, {name, description, parameters}"
)


@dataclass(frozen=True)
class RawTool:
    """A tool found in a file, mapped to the pre-shape; ``ref`` is 'file#index'."""

    ref: str
    raw: dict[str, Any]
    original: Any = field(default=None, compare=False, repr=False)  # the item as written


@dataclass(frozen=True)
class Rejected:
    """Something in a file (or the whole file) that is not a usable tool, and why."""

    ref: str
    reason: str
    original: Any


@dataclass(frozen=True)
class _NotTool:
    reason: str
    original: Any


# ---------------------------------------------------------------------------------- parsing


def _json_error(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def _parse_lines(body: str) -> list[Any]:
    """JSON-lines: one document per non-blank line; a bad line becomes a _NotTool."""
    documents: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            documents.append(json.loads(line))
        except ValueError as exc:
            documents.append(_NotTool(f"invalid JSON on line {number}: {_json_error(exc)}", line))
        except RecursionError:
            documents.append(_NotTool(f"line {number} is nested too deeply to parse", line))
    return documents


def _documents(text: str, ref: str) -> list[Any] | Rejected:
    """The JSON documents of a file (one, or one per line), or the file's rejection."""
    body = text.lstrip("\ufeff")
    if not body.strip():
        return Rejected(ref, "empty file", text)
    if ref.lower().endswith(_JSONL_SUFFIXES):
        return _parse_lines(body)
    try:
        return [json.loads(body)]
    except RecursionError:
        return Rejected(ref, "invalid JSON: nested too deeply to parse", text)
    except ValueError as exc:
        error = exc
    lines = _parse_lines(body)
    if len(lines) > 1 and not any(isinstance(doc, _NotTool) for doc in lines):
        return lines  # JSON-lines without the suffix
    return Rejected(ref, f"invalid JSON: {_json_error(error)}", text)


# -------------------------------------------------------------------------------- dialects


def _children(node: Any) -> list | None:
    """Tools held by a container (list, tools/list result, JSON-RPC envelope, functions)."""
    if isinstance(node, list):
        return node
    if not isinstance(node, dict):
        return None
    result = node.get("result")
    if isinstance(result, dict) and isinstance(result.get("tools"), list):
        return result["tools"]
    for key in ("tools", "functions"):
        if isinstance(node.get(key), list):
            return node[key]
    return None


def _pre_shape(node: dict, parameters_key: str, output_keys: tuple[str, ...]) -> dict:
    shape = {
        "name": node.get("name"),
        "description": node.get("description"),
        "parameters": node.get(parameters_key),
    }
    output = next((node[key] for key in output_keys if node.get(key) is not None), None)
    if output is not None:
        shape["output_schema"] = output
    shape.update({key: node[key] for key in _PASS_THROUGH if key in node})
    return shape


# (name, recogniser, mapper to the pre-shape), tried in order.
_DIALECTS: tuple[tuple[str, Callable[[dict], bool], Callable[[dict], dict]], ...] = (
    (
        "openai",
        lambda n: isinstance(n.get("function"), dict),
        lambda n: _pre_shape(n["function"], "parameters", ("output_schema", "outputSchema")),
    ),
    (
        "mcp",
        lambda n: "inputSchema" in n,
        lambda n: _pre_shape(n, "inputSchema", ("outputSchema",)),
    ),
    (
        "anthropic",
        lambda n: "input_schema" in n,
        lambda n: _pre_shape(n, "input_schema", ("output_schema",)),
    ),
    (
        "bare",
        lambda n: "name" in n and any(key in n for key in _BARE_HINTS),
        lambda n: _pre_shape(n, "parameters", ("output_schema", "outputSchema")),
    ),
)


def _recognise(node: Any) -> RawTool | _NotTool:
    if not isinstance(node, dict):
        return _NotTool(
            f"not a tool: found {type(node).__name__} where a tool object belongs", node
        )
    for _, recognises, to_pre_shape in _DIALECTS:
        if recognises(node):
            return RawTool("", to_pre_shape(node), node)
    keys = ", ".join(sorted(map(str, node))[:12]) or "no keys"
    return _NotTool(
        f"not a tool: object with keys [{keys}] matches no known dialect ({_DIALECT_NAMES})", node
    )


def _found_in(document: Any) -> Iterator[RawTool | _NotTool]:
    """Depth-first, in file order, without recursion (documents may nest lists deeply)."""
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _NotTool):
            yield node
            continue
        children = _children(node)
        if children is None:
            yield _recognise(node)
        elif depth >= _MAX_CONTAINER_DEPTH:
            yield _NotTool(
                f"tool containers nested deeper than {_MAX_CONTAINER_DEPTH} levels", node
            )
        else:
            stack.extend((child, depth + 1) for child in reversed(children))


def iter_tools_in(documents: Iterable[Any], ref: str) -> Iterator[RawTool | Rejected]:
    """Tools in already-parsed JSON documents of the file ``ref``, numbered 'ref#0', 'ref#1' …"""
    documents = list(documents)
    counter = itertools.count()
    for document in documents:
        for found in _found_in(document):
            item_ref = f"{ref}#{next(counter)}"
            if isinstance(found, _NotTool):
                yield Rejected(item_ref, found.reason, found.original)
            else:
                yield RawTool(item_ref, found.raw, found.original)
    if next(counter) == 0:
        yield Rejected(ref, "no tools found in file", documents)


def iter_raw_tools(text: str, ref: str) -> Iterator[RawTool | Rejected]:
    """Parse one file (JSON or JSON-lines) and yield each tool found, or why not."""
    documents = _documents(text, ref)
    if isinstance(documents, Rejected):
        yield documents
    else:
        yield from iter_tools_in(documents, ref)


# ---------------------------------------------------------------------------------- records


def _printable(text: str) -> str:
    """Cut and make safe to serialise (lone surrogates become escapes)."""
    return text[:_MAX_ORIGINAL_CHARS].encode("utf-8", "backslashreplace").decode("utf-8")


def _as_text(original: Any) -> str:
    if isinstance(original, str):
        return original
    try:
        return json.dumps(original, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError) as exc:
        return f"<not serialisable: {type(exc).__name__}>"


def _quarantine(step: str, ref: str, reason: str, original: Any) -> QuarantineRecord:
    return QuarantineRecord(
        stage=_STAGE,
        step=step,
        source="file",
        source_ref=_printable(ref),
        reason=_printable(reason),
        original=_printable(_as_text(original)),
    )


def _load(file_ref: str, load: Callable[[], Any]) -> Any:
    """The file's text, its parsed documents (JSON datasets), or a QuarantineRecord."""
    try:
        content = load()
    except Exception as exc:  # noqa: BLE001 -- a failing loader quarantines its file only
        return _quarantine("ingest", file_ref, f"could not load: {type(exc).__name__}: {exc}", "")
    if isinstance(content, (bytes, bytearray)):
        try:
            return bytes(content).decode("utf-8")
        except UnicodeDecodeError as exc:
            return _quarantine(
                "ingest",
                file_ref,
                f"not UTF-8: {exc.reason} at byte {exc.start}",
                bytes(content[:_MAX_ORIGINAL_CHARS]).decode("utf-8", "replace"),
            )
    if isinstance(content, (str, dict, list)):
        return content
    return _quarantine(
        "ingest", file_ref, f"loader returned {type(content).__name__}, not text", repr(content)
    )


def _record(
    file_ref: str, item: RawTool, limits: NormaliseConfig, used: set[str]
) -> ToolSpec | QuarantineRecord:
    try:
        tool = normalise_tool(item.raw, limits)
    except SpecRejected as exc:
        return _quarantine("normalise", item.ref, exc.reason, _original(item))
    except Exception as exc:  # noqa: BLE001 -- a normaliser bug quarantines the spec only
        return _quarantine(
            "normalise", item.ref, f"normaliser error: {type(exc).__name__}: {exc}", _original(item)
        )
    try:
        return tool.to_spec(f"file:{file_ref}", used, "file", item.ref)
    except ValidationError as exc:
        return _quarantine("normalise", item.ref, f"not a valid ToolSpec: {exc}", _original(item))


def _original(item: RawTool) -> Any:
    return item.raw if item.original is None else item.original


def _ingest_file(
    file_ref: str, load: Callable[[], Any], limits: NormaliseConfig
) -> Iterator[ToolSpec | QuarantineRecord]:
    content = _load(file_ref, load)
    if isinstance(content, QuarantineRecord):
        yield content
        return
    items = (
        iter_raw_tools(content, file_ref)
        if isinstance(content, str)
        else iter_tools_in([content], file_ref)
    )
    used: set[str] = set()
    for item in items:
        if isinstance(item, Rejected):
            yield _quarantine("ingest", item.ref, item.reason, item.original)
        else:
            yield _record(file_ref, item, limits, used)


def ingest_files(
    files: Mapping[str, Callable[[], str | bytes]], limits: NormaliseConfig
) -> Iterator[ToolSpec | QuarantineRecord]:
    """Stream every partition (sorted by id, one loaded at a time) into tools and quarantine."""
    for file_ref in sorted(files):
        yield from _ingest_file(file_ref, files[file_ref], limits)
