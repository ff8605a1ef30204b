"""Type-name repair for the tool-spec normaliser: loose type expressions → JSON Schema types.

Hand-written specs name types the way their authors' languages do: ``"float"``, ``"str"``,
``"List[int]"``, ``"Optional[str]"``, ``"int | None"``, ``"string[]"``, ``"Dict[str, Any]"``.
``canonical_type`` turns the value of a ``type`` keyword into the equivalent schema fragment
(``{"type": "array", "items": {"type": "integer"}}``), through a small recursive parser over
the alias table and the generic constructors below; ``apply_type`` splices that fragment into
the node and records the fix. A name it cannot read faithfully raises ``SpecRejected``.
Used by the repair walk (``tools.schema_repair``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kimi_pipeline.tools.schema_vocabulary import (
    RepairContext,
    SpecRejected,
    kind_of,
    names_to,
    one_or_many,
    show,
    types_of,
)

_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
# Loose type names (compared lower-cased) -> JSON Schema type.
TYPE_ALIASES: dict[str, str] = {
    **names_to("object", "object", "dict", "map", "mapping", "hash", "hashmap", "struct", "record"),
    **names_to("number", "number", "float", "double", "decimal", "numeric", "real", "float64"),
    **names_to("integer", "integer", "int", "long", "int32", "int64", "short", "bigint", "uint"),
    **names_to("string", "string", "str", "text", "char", "varchar", "unicode"),
    **names_to("boolean", "boolean", "bool"),
    **names_to("array", "array", "list", "tuple", "set", "sequence", "vector", "frozenset"),
    **names_to("null", "null", "none", "nonetype", "nil"),
}
# Type names that mean "anything": the type constraint is dropped.
_ANY_TYPES = frozenset({"any", "object?", "unknown", "mixed", "json", "*"})
_GENERIC_RE = re.compile(r"([A-Za-z_][\w.]*)\s*[\[<(](.*)[\]>)]", re.DOTALL)
_MAX_TYPE_EXPR_DEPTH = 16


def _split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside brackets: 'Dict[str, int], str' -> ['Dict[str, int]', ' str']."""
    parts, level, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "[<(":
            level += 1
        elif char in "]>)":
            level -= 1
        elif char == sep and level == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _union(fragments: list[dict]) -> dict:
    """Merge type fragments into one schema: ['integer', 'null'] or anyOf when they clash."""
    if any(not fragment for fragment in fragments):
        return {}
    merged: dict[str, Any] = {}
    extras_by_type: dict[str, dict] = {}  # insertion order = order of the types
    for fragment in fragments:
        if "type" not in fragment:
            return {"anyOf": fragments}
        extras = {key: value for key, value in fragment.items() if key != "type"}
        for kind in types_of(fragment):
            if extras_by_type.setdefault(kind, extras) != extras:
                return {"anyOf": fragments}  # e.g. list[int] | list[str]
        for key, value in extras.items():
            if merged.setdefault(key, value) != value:
                return {"anyOf": fragments}
    return {"type": one_or_many(list(extras_by_type)), **merged}


def _array_of(args: list[dict]) -> dict | None:
    if len(args) == 1:
        return {"type": "array", "items": args[0]} if args[0] else {"type": "array"}
    return {"type": "array", "prefixItems": args} if args else {"type": "array"}


def _map_of(args: list[dict]) -> dict | None:
    if len(args) == 2 and args[1]:
        return {"type": "object", "additionalProperties": args[1]}
    return {"type": "object"} if len(args) <= 2 else None


def _optional(args: list[dict]) -> dict | None:
    return _union([args[0], {"type": "null"}]) if len(args) == 1 else None


_GENERICS: dict[str, Callable[[list[dict]], dict | None]] = {
    **dict.fromkeys(("list", "array", "sequence", "set", "frozenset"), _array_of),
    **dict.fromkeys(("iterable", "tuple", "collection", "vector"), _array_of),
    **dict.fromkeys(("dict", "map", "mapping", "record", "hashmap"), _map_of),
    "optional": _optional,
    "union": lambda args: _union(args) if args else None,
}


def _parse_type(expr: str, path: str, depth: int = 0) -> dict:
    """A loose type expression ('List[int]', 'int | None', 'str[]') -> schema fragment."""
    if depth > _MAX_TYPE_EXPR_DEPTH:
        raise SpecRejected(f"{path}: type expression {show(expr)} is nested too deeply")
    text = expr.strip()
    lower = text.lower()
    if lower in _ANY_TYPES:
        return {}
    if lower in TYPE_ALIASES:
        return {"type": TYPE_ALIASES[lower]}
    if len(parts := _split_top(text, "|")) > 1:
        return _union([_parse_type(part, path, depth + 1) for part in parts])
    if text.endswith("[]"):
        return _array_of([_parse_type(text[:-2], path, depth + 1)])
    if text.endswith("?"):
        return _union([_parse_type(text[:-1], path, depth + 1), {"type": "null"}])
    fragment = None
    if (match := _GENERIC_RE.fullmatch(text)) and (
        build := _GENERICS.get(match[1].lower().rsplit(".", 1)[-1])
    ):
        args = [a for a in _split_top(match[2], ",") if a.strip() not in ("", "...")]
        fragment = build([_parse_type(arg, path, depth + 1) for arg in args])
    if fragment is None:
        raise SpecRejected(f"{path}: unknown type name {show(expr)}")
    return fragment


def canonical_type(value: Any, path: str) -> dict:
    """The ``type`` keyword's value -> fragment ({} when it means 'anything')."""
    if isinstance(value, str):
        return {"type": value} if value in _JSON_TYPES else _parse_type(value, path)
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise SpecRejected(f"{path}: type list holds {show(value)}, not only type names")
        if all(item in _JSON_TYPES for item in value) and len(set(value)) == len(value) and value:
            return {"type": value}
        return _union([_parse_type(item, path) for item in value]) if value else {}
    raise SpecRejected(f"{path}: type is {kind_of(value)} ({show(value)}), not a type name")


def apply_type(node: dict, path: str, ctx: RepairContext) -> dict:
    """Replace ``type`` by its canonical form; extra keywords (items …) fill gaps in node."""
    raw = node["type"]
    fragment = canonical_type(raw, f"{path}.type")
    if fragment == {"type": raw}:
        return node
    if not fragment:
        ctx.fix(f"{path}.type", f"{show(raw)} -> no type constraint")
    elif list(fragment) == ["type"]:
        ctx.fix(f"{path}.type", f"{show(raw)} -> {show(fragment['type'])}")
    else:
        ctx.fix(f"{path}.type", f"{show(raw)} -> {show(fragment)}")
    rebuilt: dict[str, Any] = {}
    for key, value in node.items():
        if key != "type":
            rebuilt[key] = value
            continue
        for extra, extra_value in fragment.items():  # at the type's place; spec keywords win
            if extra == "type" or extra not in node:
                rebuilt[extra] = extra_value
    return rebuilt
