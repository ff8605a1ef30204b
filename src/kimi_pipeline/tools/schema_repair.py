"""The repair walk of the tool-spec normaliser: one schema node at a time, recursively.

``repair_schema`` visits every node of a loose schema and returns its strict Draft 2020-12
form, recording each change in the ``RepairContext``: first the node's ``type`` is made
canonical (``tools.schema_types``) and legacy spellings are rewritten (``definitions`` →
``$defs``, tuple ``items`` → ``prefixItems``, ``example`` → ``examples``, draft-4 boolean
exclusive bounds, property lists, description aliases); then every keyword goes to its handler
in ``KEYWORD_HANDLERS`` (subschemas recurse, values go through the keyword's value rule,
unknown keywords are dropped); finally ``required``, ``nullable``, ``enum``, a missing ``type``
and ``default`` are made consistent with each other. ``$ref`` pointers are rewritten to the
2020-12 locations here and checked to resolve once the whole schema is built (``check_refs``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from kimi_pipeline.tools.schema_types import apply_type, canonical_type
from kimi_pipeline.tools.schema_vocabulary import (
    ANNOTATIONS,
    APPLICATORS,
    DEFAULT_COERCERS,
    DESCRIPTION_ALIASES,
    DROP,
    LIST,
    MAP,
    SCHEMA,
    VALUE_RULES,
    RepairContext,
    SpecRejected,
    coerce_boolean,
    compiles,
    dedupe,
    json_type_of,
    kind_of,
    matches_types,
    names_to,
    show,
    types_of,
    types_present,
    value_key,
)

_COMPOSITION = ("$ref", "anyOf", "oneOf", "allOf", "not", "if", "const")
# Keywords of other drafts/vocabularies that make no sense inside a tool schema.
_UNSUPPORTED_CORE = frozenset(
    {"$schema", "$id", "$anchor", "$dynamicRef", "$dynamicAnchor", "$vocabulary"}
)
# Missing type inferred from the first of these keywords present (after enum).
_TYPE_HINTS: dict[str, str] = {
    **names_to("object", "properties", "additionalProperties", "patternProperties"),
    **names_to("array", "items", "prefixItems", "minItems", "maxItems", "uniqueItems"),
    **names_to("string", "minLength", "maxLength", "pattern"),
    **names_to(
        "number", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"
    ),
}
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


# -------------------------------------------------------------------------- legacy rewrites


def take_description(
    node: dict, where: str, ctx: RepairContext, aliases: tuple[str, ...]
) -> str | None:
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


def _clean_text(value: Any, path: str, ctx: RepairContext) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(v if isinstance(v, str) else show(v, 10_000) for v in value)
        ctx.fix(path, "list -> joined string")
    elif not isinstance(value, str):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            ctx.fix(path, f"{kind_of(value)} is not text; dropped")
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


def _rewrite_description(node: dict, path: str, ctx: RepairContext) -> None:
    aliases = tuple(a for a in DESCRIPTION_ALIASES if a in node)
    if "description" not in node and not aliases:
        return
    text = take_description(node, f"{path}.description", ctx, aliases)
    if text is None:
        node.pop("description", None)
    else:
        node["description"] = text


def _rewrite_definitions(node: dict, path: str, ctx: RepairContext) -> None:
    if "definitions" not in node:
        return
    legacy = node.pop("definitions")
    ctx.fix(path, "definitions -> $defs")
    current = node.get("$defs")
    if current is None:
        node["$defs"] = legacy
    elif isinstance(legacy, dict) and isinstance(current, dict):
        node["$defs"] = {**legacy, **current}  # $defs entries win over legacy ones


def _rewrite_tuple_items(node: dict, path: str, ctx: RepairContext) -> None:
    if isinstance(node.get("items"), list) and "prefixItems" not in node:
        node["prefixItems"] = node.pop("items")
        ctx.fix(f"{path}.items", "list (tuple form) -> prefixItems")
        if "additionalItems" in node:
            node["items"] = node.pop("additionalItems")
            ctx.fix(path, "additionalItems -> items")
    if "additionalItems" in node:
        node.pop("additionalItems")
        ctx.fix(f"{path}.additionalItems", "dropped (no tuple items)")


def _rewrite_example(node: dict, path: str, ctx: RepairContext) -> None:
    if "example" in node:
        value = node.pop("example")
        if "examples" in node:
            ctx.fix(f"{path}.example", "dropped (examples given)")
        else:
            node["examples"] = [value]
            ctx.fix(path, "example -> examples")


def _rewrite_exclusive_bounds(node: dict, path: str, ctx: RepairContext) -> None:
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


def _rewrite_property_list(node: dict, path: str, ctx: RepairContext) -> None:
    if isinstance(node.get("properties"), list):
        node["properties"] = parameter_list(node["properties"], f"{path}.properties")
        ctx.fix(f"{path}.properties", "list of parameter objects -> property map")


_REWRITES = (
    _rewrite_description,
    _rewrite_definitions,
    _rewrite_tuple_items,
    _rewrite_example,
    _rewrite_exclusive_bounds,
    _rewrite_property_list,
)


def parameter_list(items: list, path: str) -> dict:
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
            raise SpecRejected(f"{path}.{index}: parameter {show(name)} declared twice")
        properties[name] = schema
    return properties


def _lift_property_required(node: dict, path: str, ctx: RepairContext) -> list[str]:
    """OpenAPI-2 style ``required: true`` on a property -> name listed in the parent."""
    properties = node.get("properties")
    if not isinstance(properties, dict):
        return []
    lifted = []
    for name, schema in properties.items():
        flag = coerce_boolean(schema.get("required")) if isinstance(schema, dict) else DROP
        if flag is DROP:
            continue
        del schema["required"]
        if flag:
            lifted.append(name)
            ctx.fix(f"{path}.properties.{name}.required", f"true -> listed in {path}.required")
        else:
            ctx.fix(f"{path}.properties.{name}.required", "false -> dropped")
    return lifted


# ---------------------------------------------------------------------------- schema walk


def repair_schema(node: Any, path: str, depth: int, ctx: RepairContext) -> dict | bool:
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


def _schema_from_shorthand(node: Any, path: str, ctx: RepairContext) -> dict | bool:
    """A schema written as null, 'string', 'false' or ['string', 'null'] -> a real schema."""
    if node is None:
        ctx.fix(path, "null -> {} (unconstrained)")
        return {}
    if isinstance(node, str) and node.strip().lower() in ("true", "false"):
        ctx.fix(path, f"{show(node)} -> {node.strip().lower()}")
        return node.strip().lower() == "true"
    if isinstance(node, (str, list)):
        fragment = canonical_type(node, path)
        ctx.fix(path, f"type name {show(node)} given as schema -> {show(fragment)}")
        return fragment
    raise SpecRejected(f"{path}: schema is {kind_of(node)} ({show(node)}), not an object")


def _schema_object(node: dict, path: str, depth: int, ctx: RepairContext) -> dict:
    had_type = "type" in node
    if had_type:
        node = apply_type(node, path, ctx)
    for rewrite in _REWRITES:
        rewrite(node, path, ctx)
    nullable = _pop_nullable(node, path, ctx)
    lifted = _lift_property_required(node, path, ctx)
    out: dict[str, Any] = {}
    for key, value in node.items():
        KEYWORD_HANDLERS.get(key, _drop_unknown)(out, key, value, path, depth, ctx)
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
    if not had_type and "type" not in out and all(key in ANNOTATIONS for key in out):
        ctx.fix(path, "no type; left unconstrained")
    return out


def _on_subschema(out, key, value, path, depth, ctx) -> None:
    out[key] = repair_schema(value, f"{path}.{key}", depth + 1, ctx)


def _on_schema_map(out, key, value, path, depth, ctx) -> None:
    where = f"{path}.{key}"
    if not isinstance(value, dict):
        ctx.fix(where, f"{kind_of(value)} is not a map of schemas; dropped")
        return
    if key == "properties" and len(value) > ctx.limits.max_properties:
        raise SpecRejected(
            f"{where}: {len(value)} properties exceed max_properties={ctx.limits.max_properties}"
        )
    if key == "patternProperties":
        value = _valid_patterns(value, where, ctx)
    out[key] = {
        name: repair_schema(sub, f"{where}.{name}", depth + 1, ctx) for name, sub in value.items()
    }


def _valid_patterns(value: dict, path: str, ctx: RepairContext) -> dict:
    kept = {pattern: schema for pattern, schema in value.items() if compiles(pattern)}
    for pattern in value:
        if pattern not in kept:
            ctx.fix(path, f"invalid regex {show(pattern)} dropped")
    return kept


def _on_schema_list(out, key, value, path, depth, ctx) -> None:
    where = f"{path}.{key}"
    if isinstance(value, dict):
        value = [value]
        ctx.fix(where, "single schema -> one-item list")
    if not isinstance(value, list) or not value:
        ctx.fix(where, f"{show(value)} is not a non-empty list of schemas; dropped")
        return
    out[key] = [repair_schema(sub, f"{where}.{i}", depth + 1, ctx) for i, sub in enumerate(value)]


def _on_ref(out, key, value, path, depth, ctx) -> None:
    if not isinstance(value, str):
        raise SpecRejected(f"{path}.$ref: {kind_of(value)} is not a reference")
    rewritten = _rewrite_ref(value)
    if rewritten != value:
        ctx.fix(f"{path}.$ref", f"{show(value)} -> {show(rewritten)}")
    ctx.refs.append((f"{path}.$ref", rewritten))
    out[key] = rewritten


def _on_unsupported_core(out, key, value, path, depth, ctx) -> None:
    ctx.fix(f"{path}.{key}", f"{show(value)} dropped (output is a self-contained 2020-12 schema)")


def _drop_unknown(out, key, value, path, depth, ctx) -> None:
    ctx.fix(path, f"dropped unknown keyword {show(key)}")


def _value_rule(coerce: Callable[[Any], Any]) -> Callable[..., None]:
    def handle(out, key, value, path, depth, ctx) -> None:
        new = coerce(value)
        if new is DROP:
            ctx.fix(f"{path}.{key}", f"invalid value {show(value)} dropped")
            return
        if type(new) is not type(value) or new != value:
            ctx.fix(f"{path}.{key}", f"{show(value)} -> {show(new)}")
        out[key] = new

    return handle


KEYWORD_HANDLERS: dict[str, Callable[..., None]] = {
    **{key: _value_rule(rule) for key, rule in VALUE_RULES.items()},
    **dict.fromkeys([k for k, kind in APPLICATORS.items() if kind == SCHEMA], _on_subschema),
    **dict.fromkeys([k for k, kind in APPLICATORS.items() if kind == MAP], _on_schema_map),
    **dict.fromkeys([k for k, kind in APPLICATORS.items() if kind == LIST], _on_schema_list),
    **dict.fromkeys(_UNSUPPORTED_CORE, _on_unsupported_core),
    "$ref": _on_ref,
}


# ------------------------------------------------------------------------- finishing steps


def _required_names(value: Any, path: str, ctx: RepairContext) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        ctx.fix(path, f"{show(value)} -> [{show(value)}]")
        return [value]
    if not isinstance(value, list):
        ctx.fix(path, f"{show(value)} is not a list of names; dropped")
        return []
    names = [name for name in value if isinstance(name, str)]
    if len(names) < len(value):
        ctx.fix(path, "dropped entries that are not strings")
    unique = list(dict.fromkeys(names))
    if len(unique) < len(names):
        ctx.fix(path, "removed duplicate names")
    return unique


def _finish_required(out: dict, lifted: list[str], path: str, ctx: RepairContext) -> None:
    given = out.pop("required", None)
    names = _required_names(given, f"{path}.required", ctx)
    names += [name for name in lifted if name not in names]
    properties = out.get("properties")
    if isinstance(properties, dict):
        absent = [name for name in names if name not in properties]
        if absent:
            ctx.fix(f"{path}.required", f"dropped {show(absent)} (not in properties)")
            names = [name for name in names if name in properties]
    if names or isinstance(given, list):
        out["required"] = names


def _pop_nullable(node: dict, path: str, ctx: RepairContext) -> bool:
    """OpenAPI 3.0 ``nullable``: True when 'null' must join the type, else dropped here."""
    if "nullable" not in node:
        return False
    value = node.pop("nullable")
    if coerce_boolean(value) is True:
        return True
    ctx.fix(f"{path}.nullable", f"{show(value)} dropped (not a 2020-12 keyword)")
    return False


def _add_null(out: dict, path: str, ctx: RepairContext) -> bool:
    types = types_of(out)
    if "null" not in types:
        out["type"] = types + ["null"]
    ctx.fix(f"{path}.nullable", f"true -> type {show(out['type'])}")
    return False


def _finish_enum(out: dict, path: str, ctx: RepairContext) -> None:
    if "enum" not in out:
        return
    values = out["enum"]
    if not isinstance(values, list):
        del out["enum"]
        ctx.fix(f"{path}.enum", f"{kind_of(values)} is not a list; dropped")
        return
    unique = dedupe(values)
    if len(unique) < len(values):
        ctx.fix(f"{path}.enum", "removed duplicate values")
    if not unique:
        del out["enum"]
        ctx.fix(f"{path}.enum", "empty; dropped")
        return
    declared = types_of(out)
    if declared and not all(matches_types(value, declared) for value in unique):
        if declared == ["string"]:
            unique = dedupe([v if isinstance(v, str) else value_key(v) for v in unique])
            ctx.fix(f"{path}.enum", "non-string values stringified")
        else:
            present = types_present(unique)
            ctx.fix(
                f"{path}.type", f"{show(out['type'])} -> {show(present)} (types of enum values)"
            )
            out["type"] = present
    out["enum"] = unique


def _infer_type(out: dict, path: str, ctx: RepairContext) -> None:
    if "type" in out or any(key in out for key in _COMPOSITION):
        return
    inferred, source = None, None
    if "enum" in out:
        inferred, source = types_present(out["enum"]), "enum"
    else:
        source = next((key for key in _TYPE_HINTS if key in out), None)
        inferred = _TYPE_HINTS.get(source)
    if inferred is None and out.get("default") is not None:
        inferred, source = json_type_of(out["default"]), "default"
    if inferred is not None:
        out["type"] = inferred
        ctx.fix(f"{path}.type", f"missing -> {show(inferred)} (from {source})")


def _finish_default(out: dict, path: str, ctx: RepairContext) -> None:
    types = types_of(out)
    if "default" not in out or types is None or matches_types(out["default"], types):
        return
    value = out["default"]
    for kind in types:
        coerced = DEFAULT_COERCERS.get(kind, lambda v: DROP)(value)
        if coerced is not DROP and matches_types(coerced, types):
            out["default"] = coerced
            ctx.fix(f"{path}.default", f"{show(value)} -> {show(coerced)}")
            return
    del out["default"]
    ctx.fix(f"{path}.default", f"{show(value)} does not match type {show(out['type'])}; dropped")


# ------------------------------------------------------------------------------- $ref


def _rewrite_ref(ref: str) -> str:
    """'#/definitions/X' -> '#/$defs/X', '#/items/0' -> '#/prefixItems/0' at keyword places."""
    if not ref.startswith("#/"):
        return ref
    segments = ref[2:].split("/")
    state = SCHEMA  # what this segment is: a keyword, a map key / list index, or data
    for i, segment in enumerate(segments):
        if state in (MAP, LIST):
            state = SCHEMA  # a property name or index; the next segment is a keyword again
            continue
        if state != SCHEMA:
            continue  # inside keyword data (enum, default …): nothing to rewrite
        if segment == "definitions":
            segment = "$defs"
        elif segment == "items" and i + 1 < len(segments) and _INDEX_RE.fullmatch(segments[i + 1]):
            segment = "prefixItems"
        segments[i] = segment
        state = APPLICATORS.get(segment, "data")
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


def check_refs(root: dict, ctx: RepairContext) -> None:
    for path, ref in ctx.refs:
        if not _resolves(root, ref):
            raise SpecRejected(
                f"{path}: unresolvable reference {show(ref)} "
                "(only local '#/...' pointers into the schema are supported)"
            )
