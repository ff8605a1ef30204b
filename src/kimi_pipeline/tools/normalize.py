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

This module is the public entry and the tool level: size and cycle limits, the name, the
description, where the parameters are hiding, the optional output schema, and the schema
identity used for dedup (``canonical_schema_key``). The schema itself is repaired by the walk
in ``tools.schema_repair`` (type names: ``tools.schema_types``), checked by
``tools.schema_meta``; the keyword tables and value rules they share are in
``tools.schema_vocabulary``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import NormaliseConfig
from kimi_pipeline.tools.schema_meta import check_meta
from kimi_pipeline.tools.schema_repair import (
    KEYWORD_HANDLERS,
    check_refs,
    parameter_list,
    repair_schema,
    take_description,
)
from kimi_pipeline.tools.schema_vocabulary import (
    APPLICATORS,
    DESCRIPTION_ALIASES,
    LIST,
    MAP,
    PROSE,
    SCHEMA,
    RepairContext,
    SpecRejected,
    kind_of,
    show,
    value_key,
)

__all__ = [
    "NAME_PATTERN",
    "NormalisedTool",
    "SpecRejected",
    "canonical_schema_key",
    "normalise_tool",
]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.-]")
# Keys that may sit next to the names of a bare property map written as the parameters.
_MAP_SIBLINGS = frozenset({"required", "description", "title", "additionalProperties"})


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


def _fix_name(value: Any, ctx: RepairContext) -> str:
    if value is None:
        raise SpecRejected("name missing")
    if not isinstance(value, str):
        raise SpecRejected(f"name is {kind_of(value)} ({show(value)}), not a string")
    name = _NAME_BAD_CHARS.sub("_", value.strip())
    if not name.strip("_.-"):
        raise SpecRejected(f"name {show(value)} has no usable characters")
    if len(name) > 64:
        raise SpecRejected(f"name {show(name)} is {len(name)} characters, over the 64 allowed")
    if name != value:
        ctx.fix("name", f"{show(value)} -> {show(name)}")
    return name


def _tool_description(data: dict, ctx: RepairContext) -> str:
    text = take_description(dict(data), "description", ctx, DESCRIPTION_ALIASES)
    if text is None:
        ctx.fix("description", "missing; left empty")
    return text or ""


def _is_property_map(value: dict) -> bool:
    """{'city': {...}, 'units': 'string'} written where an object schema belongs."""
    names = [key for key in value if key not in _MAP_SIBLINGS]
    if not names or "properties" in value:
        return False
    for key in names:
        if key in APPLICATORS or not isinstance(value[key], (dict, str)):
            return False
        if key in KEYWORD_HANDLERS and not isinstance(value[key], dict):
            return False  # a real keyword such as type: 'object'
    return True


def _parameters_container(data: dict, ctx: RepairContext) -> Any:
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
        return {"type": "object", "properties": parameter_list(value, "parameters")}
    if value is True:
        ctx.fix("parameters", "true -> empty object schema")
        return {"type": "object", "properties": {}}
    if not isinstance(value, dict):
        raise SpecRejected(f"parameters is {kind_of(value)} ({show(value)}), not an object schema")
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
        raise SpecRejected(f"parameters is a string that is not JSON: {show(text)}") from None


def _parameters(data: dict, ctx: RepairContext) -> dict:
    value = _parameters_container(data, ctx)
    if "type" not in value:
        ctx.fix("parameters.type", "missing -> 'object'")
        value = {"type": "object", **value}
    schema = repair_schema(value, "parameters", 0, ctx)
    kind = schema.get("type")
    if kind is None:  # the spec said 'any'
        ctx.fix("parameters.type", "none -> 'object' (arguments are always an object)")
        schema = {"type": "object", **schema}
    elif kind != "object":
        if not (isinstance(kind, list) and "object" in kind):
            raise SpecRejected(f"parameters must be an object schema, not type {show(kind)}")
        ctx.fix("parameters.type", f"{show(kind)} -> 'object' (arguments are always an object)")
        schema["type"] = "object"
    if "properties" not in schema:
        ctx.fix("parameters.properties", "missing -> {}")
        schema["properties"] = {}
    check_refs(schema, ctx)
    check_meta(schema, "parameters")
    return schema


def _output_schema(value: Any, ctx: RepairContext) -> dict | None:
    """The optional result schema; one that cannot be repaired is dropped, not fatal."""
    if value is None:
        return None
    sub = RepairContext(ctx.limits)
    try:
        schema = repair_schema(value, "output_schema", 0, sub)
        if not isinstance(schema, dict):
            raise SpecRejected(f"boolean schema {show(schema)}")
        check_refs(schema, sub)
        check_meta(schema, "output_schema")
    except SpecRejected as exc:
        ctx.fix("output_schema", f"dropped ({exc.reason})")
        return None
    ctx.fixes.extend(sub.fixes)
    return schema


def normalise_tool(raw: Any, limits: NormaliseConfig) -> NormalisedTool:
    """Repair one pre-shaped raw spec; raise ``SpecRejected`` when it cannot be repaired."""
    data = _json_copy(raw, limits)
    if not isinstance(data, dict):
        raise SpecRejected(f"spec is {kind_of(data)}, not a JSON object")
    ctx = RepairContext(limits)
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
        if key in PROSE:
            continue
        kind = APPLICATORS.get(key)
        if kind == SCHEMA:
            shape[key] = _shape(value)
        elif kind == MAP and isinstance(value, dict):
            shape[key] = {name: _shape(sub) for name, sub in value.items()}
        elif kind == LIST and isinstance(value, list):
            shape[key] = [_shape(sub) for sub in value]
        elif key in ("type", "required", "enum") and isinstance(value, (str, list)):
            items = [value] if isinstance(value, str) else value
            shape[key] = sorted(items, key=value_key)
        else:
            shape[key] = value
    return shape


def canonical_schema_key(parameters: dict) -> str:
    """Stable hash of a schema's shape: names, types, nesting, required, enums — not prose."""
    text = json.dumps(
        _shape(parameters), sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
