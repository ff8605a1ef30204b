"""The JSON Schema vocabulary of the tool-spec normaliser, and what every repair step shares.

``tools.normalize`` repairs loose real-world specs in several steps (type names in
``tools.schema_types``, the recursive repair walk in ``tools.schema_repair``, the meta-schema
check in ``tools.schema_meta``). They all speak the same vocabulary, kept here: which keywords
hold subschemas (and in which shape), which are prose; how a JSON value's type is named and
compared; and the *value rules* — for each keyword, the lossless coercion of a loose value
(``"10"`` → ``10`` for ``maxLength``) or ``DROP`` when there is no faithful one. It also holds
the two things every step passes around: ``SpecRejected``, the one exception that leaves
``normalise_tool``, and ``RepairContext``, the log of the fixes made so far.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from kimi_pipeline.tools.config import NormaliseConfig

# ------------------------------------------------------------------------------ shared state


class SpecRejected(Exception):
    """A spec that cannot be repaired faithfully; ``reason`` says what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RepairContext:
    """Limits, the fixes recorded so far and the $refs seen (resolved at the end)."""

    __slots__ = ("fixes", "limits", "refs")

    def __init__(self, limits: NormaliseConfig) -> None:
        self.limits = limits
        self.fixes: list[str] = []
        self.refs: list[tuple[str, str]] = []

    def fix(self, path: str, message: str) -> None:
        self.fixes.append(f"{path}: {message}")


# ------------------------------------------------------------------------------ keyword tables


def names_to(target: str, *names: str) -> dict[str, str]:
    """``{name: target}`` for every name: the building block of the keyword tables."""
    return dict.fromkeys(names, target)


SCHEMA, MAP, LIST = "schema", "map", "list"  # a keyword's value: one subschema, a map, a list
# Keywords whose values are subschemas, by shape of the value.
APPLICATORS: dict[str, str] = {
    **names_to(SCHEMA, "items", "additionalProperties", "not", "if", "then", "else", "contains"),
    **names_to(SCHEMA, "propertyNames", "unevaluatedItems", "unevaluatedProperties"),
    **names_to(SCHEMA, "contentSchema"),
    **names_to(MAP, "properties", "patternProperties", "$defs", "dependentSchemas"),
    **names_to(LIST, "allOf", "anyOf", "oneOf", "prefixItems"),
}
ANNOTATIONS = frozenset(
    ("description", "title", "default", "examples", "$comment", "deprecated", "readOnly")
) | {"writeOnly", "format", "contentEncoding", "contentMediaType"}
PROSE = ANNOTATIONS - {"format"}  # ignored by canonical_schema_key
DESCRIPTION_ALIASES = ("summary", "desc", "doc", "help", "title")

_INT_RE = re.compile(r"[-+]?\d+")
_NUMBER_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
DROP = object()  # coercer result meaning "no faithful value"


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


def kind_of(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def show(value: Any, limit: int = 160) -> str:
    """Short printable form of a value for fixes and reasons."""
    text = (
        repr(value)
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, default=str)
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def matches_types(value: Any, types: list[str]) -> bool:
    kind = json_type_of(value)
    if kind in types:
        return True
    if kind == "integer":
        return "number" in types
    return kind == "number" and "integer" in types and value.is_integer()


def types_of(schema: dict) -> list[str] | None:
    value = schema.get("type")
    return None if value is None else [value] if isinstance(value, str) else list(value)


def one_or_many(types: list[str]) -> str | list[str]:
    return types[0] if len(types) == 1 else types


def types_present(values: list) -> str | list[str]:
    types: list[str] = []
    for value in values:
        if (kind := json_type_of(value)) not in types:
            types.append(kind)
    if "integer" in types and "number" in types:  # integers are numbers
        types.remove("integer")
    return one_or_many(types)


def value_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1 and 1.0 are the same JSON value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def dedupe(values: list) -> list:
    seen: set[str] = set()
    unique = []
    for value in values:
        if (key := value_key(value)) not in seen:
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
    return DROP


# ------------------------------------------------------------------------------- coercers


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return DROP
    if isinstance(value, (int, float)):
        return value
    return _parse_number(value) if isinstance(value, str) else DROP


def _positive_number(value: Any) -> Any:
    number = _number(value)
    return number if number is not DROP and number > 0 else DROP


def _count(value: Any) -> Any:
    number = _number(value)
    if number is DROP or number < 0 or (isinstance(number, float) and not number.is_integer()):
        return DROP
    return int(number)


def coerce_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return DROP


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else DROP


@lru_cache(maxsize=4096)
def compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except Exception:  # noqa: BLE001 -- re.error, OverflowError, RecursionError all mean no
        return False
    return True


def _regex(value: Any) -> Any:
    return value if isinstance(value, str) and compiles(value) else DROP


def _examples(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _dependent_required(value: Any) -> Any:
    if not isinstance(value, dict):
        return DROP
    for names in value.values():
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return DROP
    return {key: list(dict.fromkeys(names)) for key, names in value.items()}


def _keep(value: Any) -> Any:
    return value


VALUE_RULES: dict[str, Callable[[Any], Any]] = {
    "multipleOf": _positive_number,
    **dict.fromkeys(("maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"), _number),
    **dict.fromkeys(("maxLength", "minLength", "maxItems", "minItems"), _count),
    **dict.fromkeys(("maxContains", "minContains", "maxProperties", "minProperties"), _count),
    **dict.fromkeys(("uniqueItems", "deprecated", "readOnly", "writeOnly"), coerce_boolean),
    **dict.fromkeys(
        ("format", "title", "$comment", "contentEncoding", "contentMediaType"), _string
    ),
    "pattern": _regex,
    "examples": _examples,
    "dependentRequired": _dependent_required,
    **dict.fromkeys(("const", "default", "enum", "required", "type", "description"), _keep),
}

# Lossless conversions of a default to a declared type.
DEFAULT_COERCERS: dict[str, Callable[[Any], Any]] = {
    "integer": lambda v: (
        _parse_number(v) if isinstance(v, str) and _INT_RE.fullmatch(v.strip()) else DROP
    ),
    "number": lambda v: _parse_number(v) if isinstance(v, str) else DROP,
    "boolean": lambda v: coerce_boolean(v) if isinstance(v, str) else DROP,
    "string": lambda v: (
        json.dumps(v) if json_type_of(v) in ("integer", "number", "boolean") else DROP
    ),
}
