"""Meta-validation for the tool-spec normaliser: is a repaired schema valid Draft 2020-12?

``normalise_tool`` checks every schema it returns against the 2020-12 meta-schema
(``check_meta``), so a repair never hands on an invalid schema. Validating a whole schema
against the meta-schema costs ~2.4 ms in jsonschema (dynamic refs across seven vocabularies),
which alone would take minutes for 100k specs. The meta-schema is compositional: a schema is
valid iff each of its subschema nodes is valid with its subschemas replaced by ``true``. So
every node is checked shallowly, with prose and data values blanked, against a flattened copy
of the meta-schema, and the verdict is cached by that shallow form, which repeats across specs.
"""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator

from kimi_pipeline.tools.schema_vocabulary import (
    APPLICATORS,
    LIST,
    MAP,
    SCHEMA,
    SpecRejected,
    kind_of,
)

_META_CACHE_SIZE = 50_000


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
        kind = APPLICATORS.get(key)
        if kind == SCHEMA:
            out[key] = True
        elif kind == MAP and isinstance(value, dict):
            out[key] = (
                dict.fromkeys(value, True)
                if key == "patternProperties"
                else ({"": True} if value else {})
            )
        elif kind == LIST and isinstance(value, list):
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
            kind = APPLICATORS.get(key)
            if kind == SCHEMA:
                stack.append((f"{path}.{key}", value))
            elif kind == MAP and isinstance(value, dict):
                stack.extend((f"{path}.{key}.{name}", sub) for name, sub in value.items())
            elif kind == LIST and isinstance(value, list):
                stack.extend((f"{path}.{key}.{i}", sub) for i, sub in enumerate(value))


def _meta_verdict(node: Any) -> str | None:
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return f"{kind_of(node)} is not a schema"
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


def check_meta(schema: dict, path: str) -> None:
    for where, node in _subschemas(schema, path):
        if (verdict := _meta_verdict(node)) is not None:
            raise SpecRejected(f"{where}: not valid JSON Schema 2020-12: {verdict}")
