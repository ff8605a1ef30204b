"""Normalise one raw tool spec into a strict JSON Schema Draft 2020-12 function spec.

Public function specs are written by hand in a dozen loose styles: Python type names
(``"float"``, ``"List[str]"``), OpenAPI leftovers (``nullable``, ``required: true`` on a
property, ``definitions``), bare property maps, descriptions under ``desc`` or ``summary``,
defaults that do not match their type.  ``normalise_tool`` repairs what can be repaired
faithfully, records every repair as a short string with the path it touched, and raises
``SpecRejected`` with a precise reason for anything it cannot repair (unknown type names,
unresolvable ``$ref``, absurd sizes, cycles).  The result is checked against the 2020-12
meta-schema before it is returned.

The input is the common pre-shape produced by ``ingest``:
``{"name", "description", "parameters", "output_schema"?}`` (plus description aliases and
stray ``properties`` / ``required``), but every field may hold any value.  The functions
here are pure and deterministic; the only exception that ever leaves ``normalise_tool`` is
``SpecRejected``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import NormaliseConfig

__all__ = [
    "NAME_PATTERN",
    "TYPE_ALIASES",
    "NormalisedTool",
    "SpecRejected",
    "canonical_schema_key",
    "normalise_tool",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


class SpecRejected(Exception):
    """A spec that cannot be repaired faithfully; ``reason`` says what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class NormalisedTool:
    """A repaired tool: strict parameters schema plus the list of repairs applied."""

    name: str
    description: str
    parameters: dict[str, Any]
    output_schema: dict[str, Any] | None
    fixes: tuple[str, ...]

    def to_spec(self, id_prefix: str, taken: set[str], source: str, source_ref: str,
                **extra: Any) -> ToolSpec:
        """The ToolSpec of this tool, id '<id_prefix>/<name>' made unique within ``taken``."""
        return ToolSpec(
            tool_id=unique_id(f"{id_prefix}/{self.name}", taken), name=self.name,
            description=self.description, parameters=self.parameters,
            output_schema=self.output_schema, source=source, source_ref=source_ref,
            fixes=list(self.fixes), **extra,
        )


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base~2``, ``base~3`` … when already taken; records the one returned."""
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}~{n}"
    taken.add(candidate)
    return candidate


# ------------------------------------------------------------------------------ registries

_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def _aliases(target: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, target)


# Loose type names (compared lower-cased) -> JSON Schema type.
TYPE_ALIASES: dict[str, str] = {
    **_aliases("object", "object", "dict", "map", "mapping", "hash", "hashmap", "struct", "record"),
    **_aliases("number", "number", "float", "double", "decimal", "numeric", "real", "float64"),
    **_aliases("integer", "integer", "int", "long", "int32", "int64", "short", "bigint", "uint"),
    **_aliases("string", "string", "str", "text", "char", "varchar", "unicode"),
    **_aliases("boolean", "boolean", "bool"),
    **_aliases("array", "array", "list", "tuple", "set", "sequence", "vector", "frozenset"),
    **_aliases("null", "null", "none", "nonetype", "nil"),
}
# Type names that mean "anything": the type constraint is dropped.
_ANY_TYPES = frozenset({"any", "object?", "unknown", "mixed", "json", "*"})

_SCHEMA, _MAP, _LIST = "schema", "map", "list"
# Keywords whose values are subschemas, by shape of the value.
_APPLICATORS: dict[str, str] = {
    **_aliases(_SCHEMA, "items", "additionalProperties", "not", "if", "then", "else", "contains"),
    **_aliases(_SCHEMA, "propertyNames", "unevaluatedItems", "unevaluatedProperties"),
    **_aliases(_SCHEMA, "contentSchema"),
    **_aliases(_MAP, "properties", "patternProperties", "$defs", "dependentSchemas"),
    **_aliases(_LIST, "allOf", "anyOf", "oneOf", "prefixItems"),
}
_ANNOTATIONS = frozenset(
    ("description", "title", "default", "examples", "$comment", "deprecated", "readOnly")
) | {"writeOnly", "format", "contentEncoding", "contentMediaType"}
_PROSE = _ANNOTATIONS - {"format"}  # ignored by canonical_schema_key
_COMPOSITION = ("$ref", "anyOf", "oneOf", "allOf", "not", "if", "const")
_DESCRIPTION_ALIASES = ("summary", "desc", "doc", "help", "title")
# Keywords of other drafts/vocabularies that make no sense inside a tool schema.
_UNSUPPORTED_CORE = frozenset(
    {"$schema", "$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary"}
)
# Missing type inferred from the first of these keywords present (after enum).
_TYPE_HINTS: dict[str, str] = {
    **_aliases("object", "properties", "additionalProperties", "patternProperties"),
    **_aliases("array", "items", "prefixItems", "minItems", "maxItems", "uniqueItems"),
    **_aliases("string", "minLength", "maxLength", "pattern"),
    **_aliases(
        "number", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"
    ),
}
_MAP_SIBLINGS = frozenset({"required", "description", "title", "additionalProperties"})

_INT_RE = re.compile(r"[-+]?\d+")
_NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")
_GENERIC_RE = re.compile(r"([A-Za-z_][\w.]*)\s*[\[<(](.*)[\]>)]", re.DOTALL)
_MAX_TYPE_EXPR_DEPTH = 16
_DROP = object()  # coercer result meaning "no faithful value"

_META_CACHE_SIZE = 50_000


class _Ctx:
    """Limits, the fixes recorded so far and the $refs seen (resolved at the end)."""

    __slots__ = ("fixes", "limits", "refs")

    def __init__(self, limits: NormaliseConfig) -> None:
        self.limits = limits
        self.fixes: list[str] = []
        self.refs: list[tuple[str, str]] = []

    def fix(self, path: str, message: str) -> None:
        self.fixes.append(f"{path}: {message}")


# ---------------------------------------------------------------------------------- helpers

_KINDS = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _show(value: Any, limit: int = 160) -> str:
    """Short printable form of a value for fixes and reasons."""
    text = (
        repr(value)
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, default=str)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _jtype(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _matches(value: Any, types: list[str]) -> bool:
    kind = _jtype(value)
    if kind in types:
        return True
    if kind == "integer":
        return "number" in types
    return kind == "number" and "integer" in types and value.is_integer()


def _types_of(schema: dict) -> list[str] | None:
    value = schema.get("type")
    return None if value is None else [value] if isinstance(value, str) else list(value)


def _one_or_many(types: list[str]) -> str | list[str]:
    return types[0] if len(types) == 1 else types


def _types_present(values: list) -> str | list[str]:
    types: list[str] = []
    for value in values:
        if (kind := _jtype(value)) not in types:
            types.append(kind)
    if "integer" in types and "number" in types:  # integers are numbers
        types.remove("integer")
    return _one_or_many(types)


def _value_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1 and 1.0 are the same JSON value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _dedupe(values: list) -> list:
    seen: set[str] = set()
    unique = []
    for value in values:
        if (key := _value_key(value)) not in seen:
            seen.add(key)
            unique.append(value)
    return unique


def _parse_number(text: str) -> Any:
    text = text.strip()
    try:
        if _INT_RE.fullmatch(text):
            return int(text)
        if _NUMBER_RE.fullmatch(text) and math.isfinite(number := float(text)):
            return number
    except ValueError:  # more digits than int() accepts
        pass
    return _DROP


# ------------------------------------------------------------------------------- coercers


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return _DROP
    if isinstance(value, (int, float)):
        return value
    return _parse_number(value) if isinstance(value, str) else _DROP


def _positive_number(value: Any) -> Any:
    number = _number(value)
    return number if number is not _DROP and number > 0 else _DROP


def _count(value: Any) -> Any:
    number = _number(value)
    if number is _DROP or number < 0 or (isinstance(number, float) and not number.is_integer()):
        return _DROP
    return int(number)


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return _DROP


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else _DROP


@lru_cache(maxsize=4096)
def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except Exception:  # noqa: BLE001 -- re.error, OverflowError, RecursionError all mean no
        return False
    return True


def _regex(value: Any) -> Any:
    return value if isinstance(value, str) and _compiles(value) else _DROP


def _examples(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _dependent_required(value: Any) -> Any:
    if not isinstance(value, dict):
        return _DROP
    for names in value.values():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return _DROP
    return {key: list(dict.fromkeys(names)) for key, names in value.items()}


def _keep(value: Any) -> Any:
    return value


_VALUE_RULES: dict[str, Callable[[Any], Any]] = {
    "multipleOf": _positive_number,
    **dict.fromkeys(("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"), _number),
    **dict.fromkeys(("maxLength", "minLength", "maxItems", "minItems"), _count),
    **dict.fromkeys(("maxContains", "minContains", "maxProperties", "minProperties"), _count),
    **dict.fromkeys(("uniqueItems", "deprecated", "readOnly", "writeOnly"), _boolean),
    **dict.fromkeys(
        ("format", "title", "$comment", "contentEncoding", "contentMediaType"), _string
    ),
    "pattern": _regex,
    "examples": _examples,
    "dependentRequired": _dependent_required,
    **dict.fromkeys(("const", "default", "enum", "required", "type", "description"), _keep),
}

# Lossless conversions of a default to a declared type.
_DEFAULT_COERCERS: dict[str, Callable[[Any], Any]] = {
    "integer": lambda v: (
        _parse_number(v) if isinstance(v, str) and _INT_RE.fullmatch(v.strip()) else _DROP
    ),
    "number": lambda v: _parse_number(v) if isinstance(v, str) else _DROP,
    "boolean": lambda v: _boolean(v) if isinstance(v, str) else _DROP,
    "string": lambda v: json.dumps(v) if _jtype(v) in ("integer", "number", "boolean") else _DROP,
}


# ------------------------------------------------------------------------- type expressions


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
        for kind in _types_of(fragment):
            if extras_by_type.setdefault(kind, extras) != extras:
                return {"anyOf": fragments}  # e.g. list[int] | list[str]
        for key, value in extras.items():
            if merged.setdefault(key, value) != value:
                return {"anyOf": fragments}
    return {"type": _one_or_many(list(extras_by_type)), **merged}


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
        raise SpecRejected(f"{path}: type expression {_show(expr)} is nested too deeply")
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
        raise SpecRejected(f"{path}: unknown type name {_show(expr)}")
    return fragment


def _canonical_type(value: Any, path: str) -> dict:
    """The ``type`` keyword's value -> fragment ({} when it means 'anything')."""
    if isinstance(value, str):
        return {"type": value} if value in _JSON_TYPES else _parse_type(value, path)
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise SpecRejected(f"{path}: type list holds {_show(value)}, not only type names")
        if all(item in _JSON_TYPES for item in value) and len(set(value)) == len(value) and value:
            return {"type": value}
        return _union([_parse_type(item, path) for item in value]) if value else {}
    raise SpecRejected(f"{path}: type is {_kind(value)} ({_show(value)}), not a type name")


def _apply_type(node: dict, path: str, ctx: _Ctx) -> dict:
    """Replace ``type`` by its canonical form; extra keywords (items …) fill gaps in node."""
    raw = node["type"]
    fragment = _canonical_type(raw, f"{path}.type")
    if fragment == {"type": raw}:
        return node
    if not fragment:
        ctx.fix(f"{path}.type", f"{_show(raw)} -> no type constraint")
    elif list(fragment) == ["type"]:
        ctx.fix(f"{path}.type", f"{_show(raw)} -> {_show(fragment['type'])}")
    else:
        ctx.fix(f"{path}.type", f"{_show(raw)} -> {_show(fragment)}")
    rebuilt: dict[str, Any] = {}
    for key, value in node.items():
        if key != "type":
            rebuilt[key] = value
            continue
        for extra, extra_value in fragment.items():  # at the type's place; spec keywords win
            if extra == "type" or extra not in node:
                rebuilt[extra] = extra_value
    return rebuilt


# -------------------------------------------------------------------------- legacy rewrites


def _description(node: dict, where: str, ctx: _Ctx, aliases: tuple[str, ...]) -> str | None:
    """Clean description from ``description`` or the first usable alias (the alias is consumed)."""
    source = next(
        (key for key in ("description", *aliases) if _has_text(node.get(key))), "description"
    )
    value = node.get(source)
    if source != "description":
        ctx.fix(where, f"taken from {source!r}")
        if source != "title":  # title is a real keyword and stays
            del node[source]
    return _clean_text(value, where, ctx)


def _has_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list):
        return bool(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _clean_text(value: Any, path: str, ctx: _Ctx) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(v if isinstance(v, str) else _show(v, 10_000) for v in value)
        ctx.fix(path, "list -> joined string")
    elif not isinstance(value, str):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            ctx.fix(path, f"{_kind(value)} is not text; dropped")
            return None
        value = json.dumps(value)
        ctx.fix(path, f"number -> {value!r}")
    text = value.strip()
    if text != value:
        ctx.fix(path, "trimmed whitespace")
    limit = ctx.limits.max_description_chars
    if len(text) > limit:
        ctx.fix(path, f"cut from {len(text)} to {limit} chars")
        text = text[:limit]
    if not text:
        if value:
            ctx.fix(path, "blank; dropped")
        return None
    return text


def _rewrite_description(node: dict, path: str, ctx: _Ctx) -> None:
    aliases = tuple(a for a in _DESCRIPTION_ALIASES if a in node)
    if "description" not in node and not aliases:
        return
    text = _description(node, f"{path}.description", ctx, aliases)
    if text is None:
        node.pop("description", None)
    else:
        node["description"] = text


def _rewrite_definitions(node: dict, path: str, ctx: _Ctx) -> None:
    if "definitions" not in node:
        return
    legacy = node.pop("definitions")
    ctx.fix(path, "definitions -> $defs")
    current = node.get("$defs")
    if current is None:
        node["$defs"] = legacy
    elif isinstance(legacy, dict) and isinstance(current, dict):
        node["$defs"] = {**legacy, **current}  # $defs entries win over legacy ones


def _rewrite_tuple_items(node: dict, path: str, ctx: _Ctx) -> None:
    if isinstance(node.get("items"), list) and "prefixItems" not in node:
        node["prefixItems"] = node.pop("items")
        ctx.fix(f"{path}.items", "list (tuple form) -> prefixItems")
        if "additionalItems" in node:
            node["items"] = node.pop("additionalItems")
            ctx.fix(path, "additionalItems -> items")
    if "additionalItems" in node:
        node.pop("additionalItems")
        ctx.fix(f"{path}.additionalItems", "dropped (no tuple items)")


def _rewrite_example(node: dict, path: str, ctx: _Ctx) -> None:
    if "example" in node:
        value = node.pop("example")
        if "examples" in node:
            ctx.fix(f"{path}.example", "dropped (examples given)")
        else:
            node["examples"] = [value]
            ctx.fix(path, "example -> examples")


def _rewrite_exclusive_bounds(node: dict, path: str, ctx: _Ctx) -> None:
    """Draft-4 boolean exclusiveMinimum/Maximum -> the 2020-12 numeric form."""
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = node.get(exclusive)
        if not isinstance(flag, bool):
            continue
        del node[exclusive]
        if flag and bound in node:
            node[exclusive] = node.pop(bound)
            ctx.fix(f"{path}.{exclusive}", f"true -> {bound} value made exclusive")
        else:
            ctx.fix(f"{path}.{exclusive}", f"{str(flag).lower()} (draft-4 form) dropped")


def _rewrite_property_list(node: dict, path: str, ctx: _Ctx) -> None:
    if isinstance(node.get("properties"), list):
        node["properties"] = _parameter_list(node["properties"], f"{path}.properties")
        ctx.fix(f"{path}.properties", "list of parameter objects -> property map")


_REWRITES = (
    _rewrite_description,
    _rewrite_definitions,
    _rewrite_tuple_items,
    _rewrite_example,
    _rewrite_exclusive_bounds,
    _rewrite_property_list,
)


def _parameter_list(items: list, path: str) -> dict:
    """[{'name': 'city', 'type': 'string', …}, 'date'] -> {'city': {...}, 'date': {}}."""
    properties: dict[str, Any] = {}
    for index, item in enumerate(items):
        if isinstance(item, str):
            name, schema = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, schema = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise SpecRejected(f"{path}.{index}: parameter entry has no string 'name'")
        if name in properties:
            raise SpecRejected(f"{path}.{index}: parameter {_show(name)} declared twice")
        properties[name] = schema
    return properties


def _lift_property_required(node: dict, path: str, ctx: _Ctx) -> list[str]:
    """OpenAPI-2 style ``required: true`` on a property -> name listed in the parent."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return []
    lifted = []
    for name, schema in properties.items():
        flag = _boolean(schema.get("required")) if isinstance(schema, dict) else _DROP
        if flag is _DROP:
            continue
        del schema["required"]
        if flag:
            lifted.append(name)
            ctx.fix(f"{path}.properties.{name}.required", f"true -> listed in {path}.required")
        else:
            ctx.fix(f"{path}.properties.{name}.required", "false -> dropped")
    return lifted


# ---------------------------------------------------------------------------- schema walk


def _schema(node: Any, path: str, depth: int, ctx: _Ctx) -> dict | bool:
    if depth > ctx.limits.max_depth:
        raise SpecRejected(
            f"{path}: schema nesting depth {depth} exceeds max_depth={ctx.limits.max_depth}"
        )
    if isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        node = _schema_from_shorthand(node, path, ctx)
        if isinstance(node, bool):
            return node
    return _schema_object(node, path, depth, ctx)


def _schema_from_shorthand(node: Any, path: str, ctx: _Ctx) -> dict | bool:
    """A schema written as null, 'string', 'false' or ['string', 'null'] -> a real schema."""
    if node is None:
        ctx.fix(path, "null -> {} (unconstrained)")
        return {}
    if isinstance(node, str) and node.strip().lower() in ("true", "false"):
        ctx.fix(path, f"{_show(node)} -> {node.strip().lower()}")
        return node.strip().lower() == "true"
    if isinstance(node, (str, list)):
        fragment = _canonical_type(node, path)
        ctx.fix(path, f"type name {_show(node)} given as schema -> {_show(fragment)}")
        return fragment
    raise SpecRejected(f"{path}: schema is {_kind(node)} ({_show(node)}), not an object")


def _schema_object(node: dict, path: str, depth: int, ctx: _Ctx) -> dict:
    had_type = "type" in node
    if had_type:
        node = _apply_type(node, path, ctx)
    for rewrite in _REWRITES:
        rewrite(node, path, ctx)
    nullable = _pop_nullable(node, path, ctx)
    lifted = _lift_property_required(node, path, ctx)
    out: dict[str, Any] = {}
    for key, value in node.items():
        _HANDLERS.get(key, _drop_unknown)(out, key, value, path, depth, ctx)
    _finish_required(out, lifted, path, ctx)
    if nullable and "type" in out:  # before enum, so that a null enum value fits
        nullable = _add_null(out, path, ctx)
    _finish_enum(out, path, ctx)
    _infer_type(out, path, ctx)
    if nullable and "type" in out:
        _add_null(out, path, ctx)
    elif nullable:
        ctx.fix(f"{path}.nullable", "true dropped (no type, null already allowed)")
    _finish_default(out, path, ctx)
    if not had_type and "type" not in out and all(key in _ANNOTATIONS for key in out):
        ctx.fix(path, "no type; left unconstrained")
    return out


def _on_subschema(out, key, value, path, depth, ctx) -> None:
    out[key] = _schema(value, f"{path}.{key}", depth + 1, ctx)


def _on_schema_map(out, key, value, path, depth, ctx) -> None:
    where = f"{path}.{key}"
    if not isinstance(value, dict):
        ctx.fix(where, f"{_kind(value)} is not a map of schemas; dropped")
        return
    if key == "properties" and len(value) > ctx.limits.max_properties:
        raise SpecRejected(
            f"{where}: {len(value)} properties exceed max_properties={ctx.limits.max_properties}"
        )
    if key == "patternProperties":
        value = _valid_patterns(value, where, ctx)
    out[key] = {
        name: _schema(sub, f"{where}.{name}", depth + 1, ctx) for name, sub in value.items()
    }


def _valid_patterns(value: dict, path: str, ctx: _Ctx) -> dict:
    kept = {pattern: schema for pattern, schema in value.items() if _compiles(pattern)}
    for pattern in value:
        if pattern not in kept:
            ctx.fix(path, f"invalid regex {_show(pattern)} dropped")
    return kept


def _on_schema_list(out, key, value, path, depth, ctx) -> None:
    where = f"{path}.{key}"
    if isinstance(value, dict):
        value = [value]
        ctx.fix(where, "single schema -> one-item list")
    if not isinstance(value, list) or not value:
        ctx.fix(where, f"{_show(value)} is not a non-empty list of schemas; dropped")
        return
    out[key] = [_schema(sub, f"{where}.{i}", depth + 1, ctx) for i, sub in enumerate(value)]


def _on_ref(out, key, value, path, depth, ctx) -> None:
    if not isinstance(value, str):
        raise SpecRejected(f"{path}.$ref: {_kind(value)} is not a reference")
    rewritten = _rewrite_ref(value)
    if rewritten != value:
        ctx.fix(f"{path}.$ref", f"{_show(value)} -> {_show(rewritten)}")
    ctx.refs.append((f"{path}.$ref", rewritten))
    out[key] = rewritten


def _on_unsupported_core(out, key, value, path, depth, ctx) -> None:
    ctx.fix(f"{path}.{key}", f"{_show(value)} dropped (output is a self-contained 2020-12 schema)")


def _drop_unknown(out, key, value, path, depth, ctx) -> None:
    ctx.fix(path, f"dropped unknown keyword {_show(key)}")


def _value_rule(coerce: Callable[[Any], Any]) -> Callable[..., None]:
    def handle(out, key, value, path, depth, ctx) -> None:
        new = coerce(value)
        if new is _DROP:
            ctx.fix(f"{path}.{key}", f"invalid value {_show(value)} dropped")
            return
        if type(new) is not type(value) or new != value:
            ctx.fix(f"{path}.{key}", f"{_show(value)} -> {_show(new)}")
        out[key] = new

    return handle


_HANDLERS: dict[str, Callable[..., None]] = {
    **{key: _value_rule(rule) for key, rule in _VALUE_RULES.items()},
    **dict.fromkeys([k for k, kind in _APPLICATORS.items() if kind == _SCHEMA], _on_subschema),
    **dict.fromkeys([k for k, kind in _APPLICATORS.items() if kind == _MAP], _on_schema_map),
    **dict.fromkeys([k for k, kind in _APPLICATORS.items() if kind == _LIST], _on_schema_list),
    **dict.fromkeys(_UNSUPPORTED_CORE, _on_unsupported_core),
    "$ref": _on_ref,
}


# ------------------------------------------------------------------------- finishing steps


def _required_names(value: Any, path: str, ctx: _Ctx) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        ctx.fix(path, f"{_show(value)} -> [{_show(value)}]")
        return [value]
    if not isinstance(value, list):
        ctx.fix(path, f"{_show(value)} is not a list of names; dropped")
        return []
    names = [name for name in value if isinstance(name, str)]
    if len(names) < len(value):
        ctx.fix(path, "dropped entries that are not strings")
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        ctx.fix(path, "removed duplicate names")
    return unique


def _finish_required(out: dict, lifted: list[str], path: str, ctx: _Ctx) -> None:
    given = out.pop("required", None)
    names = _required_names(given, f"{path}.required", ctx)
    names += [name for name in lifted if name not in names]
    properties = out.get("properties")
    if isinstance(properties, dict):
        absent = [name for name in names if name not in properties]
        if absent:
            ctx.fix(f"{path}.required", f"dropped {_show(absent)} (not in properties)")
            names = [name for name in names if name in properties]
    if names or isinstance(given, list):
        out["required"] = names


def _pop_nullable(node: dict, path: str, ctx: _Ctx) -> bool:
    """OpenAPI 3.0 ``nullable``: True when 'null' must join the type, else dropped here."""
    if "nullable" not in node:
        return False
    value = node.pop("nullable")
    if _boolean(value) is True:
        return True
    ctx.fix(f"{path}.nullable", f"{_show(value)} dropped (not a 2020-12 keyword)")
    return False


def _add_null(out: dict, path: str, ctx: _Ctx) -> bool:
    types = _types_of(out)
    if "null" not in types:
        out["type"] = types + ["null"]
    ctx.fix(f"{path}.nullable", f"true -> type {_show(out['type'])}")
    return False


def _finish_enum(out: dict, path: str, ctx: _Ctx) -> None:
    if "enum" not in out:
        return
    values = out["enum"]
    if not isinstance(values, list):
        del out["enum"]
        ctx.fix(f"{path}.enum", f"{_kind(values)} is not a list; dropped")
        return
    unique = _dedupe(values)
    if len(unique) < len(values):
        ctx.fix(f"{path}.enum", "removed duplicate values")
    if not unique:
        del out["enum"]
        ctx.fix(f"{path}.enum", "empty; dropped")
        return
    declared = _types_of(out)
    if declared and not all(_matches(value, declared) for value in unique):
        if declared == ["string"]:
            unique = _dedupe([v if isinstance(v, str) else _value_key(v) for v in unique])
            ctx.fix(f"{path}.enum", "non-string values stringified")
        else:
            present = _types_present(unique)
            ctx.fix(
                f"{path}.type", f"{_show(out['type'])} -> {_show(present)} (types of enum values)"
            )
            out["type"] = present
    out["enum"] = unique


def _infer_type(out: dict, path: str, ctx: _Ctx) -> None:
    if "type" in out or any(key in out for key in _COMPOSITION):
        return
    inferred, source = None, None
    if "enum" in out:
        inferred, source = _types_present(out["enum"]), "enum"
    else:
        source = next((key for key in _TYPE_HINTS if key in out), None)
        inferred = _TYPE_HINTS.get(source)
    if inferred is None and out.get("default") is not None:
        inferred, source = _jtype(out["default"]), "default"
    if inferred is not None:
        out["type"] = inferred
        ctx.fix(f"{path}.type", f"missing -> {_show(inferred)} (from {source})")


def _finish_default(out: dict, path: str, ctx: _Ctx) -> None:
    types = _types_of(out)
    if "default" not in out or types is None or _matches(out["default"], types):
        return
    value = out["default"]
    for kind in types:
        coerced = _DEFAULT_COERCERS.get(kind, lambda v: _DROP)(value)
        if coerced is not _DROP and _matches(coerced, types):
            out["default"] = coerced
            ctx.fix(f"{path}.default", f"{_show(value)} -> {_show(coerced)}")
            return
    del out["default"]
    ctx.fix(f"{path}.default", f"{_show(value)} does not match type {_show(out['type'])}; dropped")


# ------------------------------------------------------------------------------- $ref


def _rewrite_ref(ref: str) -> str:
    """'#/definitions/X' -> '#/$defs/X', '#/items/0' -> '#/prefixItems/0' at keyword places."""
    if not ref.startswith("#/"):
        return ref
    segments = ref[2:].split("/")
    state = _SCHEMA  # what this segment is: a keyword, a map key / list index, or data
    for i, segment in enumerate(segments):
        if state in (_MAP, _LIST):
            state = _SCHEMA  # a property name or index; the next segment is a keyword again
            continue
        if state != _SCHEMA:
            continue  # inside keyword data (enum, default …): nothing to rewrite
        if segment == "definitions":
            segment = "$defs"
        elif segment == "items" and i + 1 < len(segments) and _INDEX_RE.fullmatch(segments[i + 1]):
            segment = "prefixItems"
        segments[i] = segment
        state = _APPLICATORS.get(segment, "data")
    return "#/" + "/".join(segments)


def _resolves(root: Any, ref: str) -> bool:
    if ref == "#":
        return True
    if not ref.startswith("#/"):
        return False
    node = root
    for raw in ref[2:].split("/"):
        segment = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and _INDEX_RE.fullmatch(segment) and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return False
    return isinstance(node, (dict, bool))


def _check_refs(root: dict, ctx: _Ctx) -> None:
    for path, ref in ctx.refs:
        if not _resolves(root, ref):
            raise SpecRejected(
                f"{path}: unresolvable reference {_show(ref)} "
                "(only local '#/...' pointers into the schema are supported)"
            )


# ------------------------------------------------------------------------ meta-validation
#
# Validating a whole schema against the 2020-12 meta-schema costs ~2.4 ms in jsonschema
# (dynamic refs across seven vocabularies), which alone would take minutes for 100k specs.
# The meta-schema is compositional: a schema is valid iff each of its subschema nodes is
# valid with its subschemas replaced by ``true``.  So every node is checked shallowly, with
# prose and data values blanked, against a flattened copy of the meta-schema, and the
# verdict is cached by that shallow form, which repeats across specs.


def _flat_meta_schema() -> dict:
    """The 2020-12 meta-schema with its vocabularies merged and $dynamicRef -> $ref '#'."""
    from jsonschema_specifications import REGISTRY

    base = "https://json-schema.org/draft/2020-12/"
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for vocabulary in (
        "core",
        "applicator",
        "unevaluated",
        "validation",
        "meta-data",
        "format-annotation",
        "content",
    ):
        contents = REGISTRY.contents(f"{base}meta/{vocabulary}")
        properties.update(contents["properties"])
        defs.update(contents.get("$defs", {}))
    properties.update(REGISTRY.contents(f"{base}schema")["properties"])
    return _static_refs({"type": ["object", "boolean"], "properties": properties, "$defs": defs})


def _static_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_static_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _static_refs(value) for key, value in node.items() if key != "$dynamicRef"}
    if node.get("$dynamicRef") == "#meta":
        out["$ref"] = "#"
    return out


_FLAT_META = Draft202012Validator(
    _flat_meta_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER
)
_META_VERDICTS: dict[str, str | None] = {}
# keyword -> (kind of value the meta-schema accepts, blank of that kind)
_BLANKS: dict[str, tuple[type, Any]] = {
    "description": (str, ""),
    "title": (str, ""),
    "$comment": (str, ""),
    "examples": (list, []),
    "enum": (list, []),
    "default": (object, None),
    "const": (object, None),
}


def _shallow(node: dict) -> dict:
    """Node with subschemas replaced by true and prose/data blanked (same meta verdict)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        kind = _APPLICATORS.get(key)
        if kind == _SCHEMA:
            out[key] = True
        elif kind == _MAP and isinstance(value, dict):
            out[key] = (
                dict.fromkeys(value, True)
                if key == "patternProperties"
                else ({"": True} if value else {})
            )
        elif kind == _LIST and isinstance(value, list):
            out[key] = [True] * len(value)
        elif key in _BLANKS and isinstance(value, _BLANKS[key][0]):
            out[key] = _BLANKS[key][1]
        else:
            out[key] = value
    return out


def _subschemas(schema: Any, path: str):
    """Every schema node under ``schema`` with its path (iterative, no recursion)."""
    stack = [(path, schema)]
    while stack:
        path, node = stack.pop()
        yield path, node
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            kind = _APPLICATORS.get(key)
            if kind == _SCHEMA:
                stack.append((f"{path}.{key}", value))
            elif kind == _MAP and isinstance(value, dict):
                stack.extend((f"{path}.{key}.{name}", sub) for name, sub in value.items())
            elif kind == _LIST and isinstance(value, list):
                stack.extend((f"{path}.{key}.{i}", sub) for i, sub in enumerate(value))


def _meta_verdict(node: Any) -> str | None:
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return f"{_kind(node)} is not a schema"
    shallow = _shallow(node)
    key = json.dumps(shallow, sort_keys=True, ensure_ascii=False, default=str)
    if key not in _META_VERDICTS:
        if len(_META_VERDICTS) >= _META_CACHE_SIZE:
            _META_VERDICTS.clear()
        error = next(_FLAT_META.iter_errors(shallow), None)
        _META_VERDICTS[key] = (
            None
            if error is None
            else (
                " ".join(str(part) for part in error.absolute_path) + f" {error.message[:200]}"
            ).strip()
        )
    return _META_VERDICTS[key]


def _check_meta(schema: dict, path: str) -> None:
    for where, node in _subschemas(schema, path):
        if (verdict := _meta_verdict(node)) is not None:
            raise SpecRejected(f"{where}: not valid JSON Schema 2020-12: {verdict}")


# ---------------------------------------------------------------------------- tool level


def _json_copy(raw: Any, limits: NormaliseConfig) -> Any:
    """A private JSON round-trip copy of ``raw``: enforces size, rejects cycles and non-JSON."""
    try:
        text = json.dumps(raw, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except RecursionError:
        raise SpecRejected(
            f"spec is nested too deeply to serialise (max_depth={limits.max_depth})"
        ) from None
    except (ValueError, TypeError) as exc:
        if "Circular reference" in str(exc):
            raise SpecRejected("cyclic structure: the spec contains itself") from None
        raise SpecRejected(f"not representable as JSON: {exc}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise SpecRejected("contains invalid Unicode (a lone surrogate)") from None
    if size > limits.max_spec_bytes:
        raise SpecRejected(
            f"spec is {size} bytes of JSON, over max_spec_bytes={limits.max_spec_bytes}"
        )
    try:
        return json.loads(text)
    except RecursionError:
        raise SpecRejected("spec is nested too deeply to parse") from None


def _fix_name(value: Any, ctx: _Ctx) -> str:
    if value is None:
        raise SpecRejected("name missing")
    if not isinstance(value, str):
        raise SpecRejected(f"name is {_kind(value)} ({_show(value)}), not a string")
    name = _NAME_BAD_CHARS.sub("_", value.strip())
    if not name.strip("_.-"):
        raise SpecRejected(f"name {_show(value)} has no usable characters")
    if len(name) > 64:
        raise SpecRejected(f"name {_show(name)} is {len(name)} characters, over the 64 allowed")
    if name != value:
        ctx.fix("name", f"{_show(value)} -> {_show(name)}")
    return name


def _tool_description(data: dict, ctx: _Ctx) -> str:
    text = _description(dict(data), "description", ctx, _DESCRIPTION_ALIASES)
    if text is None:
        ctx.fix("description", "missing; left empty")
    return text or ""


def _is_property_map(value: dict) -> bool:
    """{'city': {...}, 'units': 'string'} written where an object schema belongs."""
    names = [key for key in value if key not in _MAP_SIBLINGS]
    if not names or "properties" in value:
        return False
    for key in names:
        if key in _APPLICATORS or not isinstance(value[key], (dict, str)):
            return False
        if key in _HANDLERS and not isinstance(value[key], dict):
            return False  # a real keyword such as type: 'object'
    return True


def _parameters_container(data: dict, ctx: _Ctx) -> Any:
    """Whatever stands for the parameters -> a dict schema candidate."""
    value = data.get("parameters")
    if value is None and isinstance(data.get("properties"), (dict, list)):
        ctx.fix("parameters", "properties found next to 'parameters'; moved inside")
        value = {k: data[k] for k in ("properties", "required") if k in data}
    if isinstance(value, str):
        value = _parse_json_text(value)
        ctx.fix("parameters", "JSON text -> parsed")
    if value is None:
        ctx.fix("parameters", "missing -> empty object schema")
        return {"type": "object", "properties": {}}
    if isinstance(value, list):
        ctx.fix("parameters", "list of parameter objects -> object schema")
        return {"type": "object", "properties": _parameter_list(value, "parameters")}
    if value is True:
        ctx.fix("parameters", "true -> empty object schema")
        return {"type": "object", "properties": {}}
    if not isinstance(value, dict):
        raise SpecRejected(f"parameters is {_kind(value)} ({_show(value)}), not an object schema")
    if _is_property_map(value):
        ctx.fix("parameters", "bare property map -> wrapped in an object schema")
        names = {k: v for k, v in value.items() if k not in _MAP_SIBLINGS}
        siblings = {k: v for k, v in value.items() if k in _MAP_SIBLINGS}
        return {"type": "object", "properties": names, **siblings}
    return value


def _parse_json_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise SpecRejected(f"parameters is a string that is not JSON: {_show(text)}") from None


def _parameters(data: dict, ctx: _Ctx) -> dict:
    value = _parameters_container(data, ctx)
    if "type" not in value:
        ctx.fix("parameters.type", "missing -> 'object'")
        value = {"type": "object", **value}
    schema = _schema(value, "parameters", 0, ctx)
    kind = schema.get("type")
    if kind is None:  # the spec said 'any'
        ctx.fix("parameters.type", "none -> 'object' (arguments are always an object)")
        schema = {"type": "object", **schema}
    elif kind != "object":
        if not (isinstance(kind, list) and "object" in kind):
            raise SpecRejected(f"parameters must be an object schema, not type {_show(kind)}")
        ctx.fix("parameters.type", f"{_show(kind)} -> 'object' (arguments are always an object)")
        schema["type"] = "object"
    if "properties" not in schema:
        ctx.fix("parameters.properties", "missing -> {}")
        schema["properties"] = {}
    _check_refs(schema, ctx)
    _check_meta(schema, "parameters")
    return schema


def _output_schema(value: Any, ctx: _Ctx) -> dict | None:
    """The optional result schema; one that cannot be repaired is dropped, not fatal."""
    if value is None:
        return None
    sub = _Ctx(ctx.limits)
    try:
        schema = _schema(value, "output_schema", 0, sub)
        if not isinstance(schema, dict):
            raise SpecRejected(f"boolean schema {_show(schema)}")
        _check_refs(schema, sub)
        _check_meta(schema, "output_schema")
    except SpecRejected as exc:
        ctx.fix("output_schema", f"dropped ({exc.reason})")
        return None
    ctx.fixes.extend(sub.fixes)
    return schema


def normalise_tool(raw: Any, limits: NormaliseConfig) -> NormalisedTool:
    """Repair one pre-shaped raw spec; raise ``SpecRejected`` when it cannot be repaired."""
    data = _json_copy(raw, limits)
    if not isinstance(data, dict):
        raise SpecRejected(f"spec is {_kind(data)}, not a JSON object")
    ctx = _Ctx(limits)
    try:
        name = _fix_name(data.get("name"), ctx)
        description = _tool_description(data, ctx)
        parameters = _parameters(data, ctx)
        output_schema = _output_schema(data.get("output_schema"), ctx)
    except RecursionError:
        raise SpecRejected("spec is nested too deeply to process") from None
    return NormalisedTool(name, description, parameters, output_schema, tuple(ctx.fixes))


# ------------------------------------------------------------------------ schema identity


def _shape(node: Any) -> Any:
    """The schema without annotations, with order-free keywords in a fixed order."""
    if not isinstance(node, dict):
        return node
    shape: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PROSE:
            continue
        kind = _APPLICATORS.get(key)
        if kind == _SCHEMA:
            shape[key] = _shape(value)
        elif kind == _MAP and isinstance(value, dict):
            shape[key] = {name: _shape(sub) for name, sub in value.items()}
        elif kind == _LIST and isinstance(value, list):
            shape[key] = [_shape(sub) for sub in value]
        elif key in ("type", "required", "enum") and isinstance(value, (str, list)):
            items = [value] if isinstance(value, str) else value
            shape[key] = sorted(items, key=_value_key)
        else:
            shape[key] = value
    return shape


def canonical_schema_key(parameters: dict) -> str:
    """Stable hash of a schema's shape: names, types, nesting, required, enums — not prose."""
    text = json.dumps(
        _shape(parameters), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
