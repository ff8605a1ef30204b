"""normalise_tool: exact repairs of real-world spec mistakes, rejections, limits, robustness."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kimi_pipeline.tools.config import NormaliseConfig
from kimi_pipeline.tools.normalize import (
    NAME_PATTERN,
    NormalisedTool,
    SpecRejected,
    canonical_schema_key,
    normalise_tool,
)

LIMITS = NormaliseConfig()
P = "parameters.properties"


def obj(properties: dict, **extra) -> dict:
    return {"type": "object", "properties": properties, **extra}


def run(parameters, limits: NormaliseConfig = LIMITS, **extra) -> NormalisedTool:
    return normalise_tool(
        {"name": "t", "description": "d", "parameters": parameters, **extra}, limits
    )


def rejected(raw, limits: NormaliseConfig = LIMITS) -> str:
    with pytest.raises(SpecRejected) as info:
        normalise_tool(raw, limits)
    assert info.value.reason
    return info.value.reason


# --------------------------------------------------------------------------- dialect table

CASES = [
    # id, raw parameters, expected parameters, expected fixes
    (
        "float",
        obj({"limit": {"type": "float"}}),
        obj({"limit": {"type": "number"}}),
        [f"{P}.limit.type: 'float' -> 'number'"],
    ),
    (
        "double",
        obj({"x": {"type": "double"}}),
        obj({"x": {"type": "number"}}),
        [f"{P}.x.type: 'double' -> 'number'"],
    ),
    (
        "dict",
        obj({"x": {"type": "dict"}}),
        obj({"x": {"type": "object"}}),
        [f"{P}.x.type: 'dict' -> 'object'"],
    ),
    (
        "Object",
        obj({"x": {"type": "Object"}}),
        obj({"x": {"type": "object"}}),
        [f"{P}.x.type: 'Object' -> 'object'"],
    ),
    (
        "long",
        obj({"x": {"type": "long"}}),
        obj({"x": {"type": "integer"}}),
        [f"{P}.x.type: 'long' -> 'integer'"],
    ),
    (
        "String",
        obj({"x": {"type": "String"}}),
        obj({"x": {"type": "string"}}),
        [f"{P}.x.type: 'String' -> 'string'"],
    ),
    (
        "bool",
        obj({"x": {"type": "bool"}}),
        obj({"x": {"type": "boolean"}}),
        [f"{P}.x.type: 'bool' -> 'boolean'"],
    ),
    (
        "tuple",
        obj({"x": {"type": "tuple"}}),
        obj({"x": {"type": "array"}}),
        [f"{P}.x.type: 'tuple' -> 'array'"],
    ),
    (
        "None",
        obj({"x": {"type": "None"}}),
        obj({"x": {"type": "null"}}),
        [f"{P}.x.type: 'None' -> 'null'"],
    ),
    (
        "any",
        obj({"x": {"type": "any", "description": "anything"}}),
        obj({"x": {"description": "anything"}}),
        [f"{P}.x.type: 'any' -> no type constraint"],
    ),
    (
        "object?",
        obj({"x": {"type": "object?"}}),
        obj({"x": {}}),
        [f"{P}.x.type: 'object?' -> no type constraint"],
    ),
    (
        "list[str]",
        obj({"tags": {"type": "list[str]"}}),
        obj({"tags": {"type": "array", "items": {"type": "string"}}}),
        [(f'{P}.tags.type: \'list[str]\' -> {{"type": "array", "items": {{"type": "string"}}}}')],
    ),
    (
        "List[int]",
        obj({"ids": {"type": "List[int]"}}),
        obj({"ids": {"type": "array", "items": {"type": "integer"}}}),
        [(f'{P}.ids.type: \'List[int]\' -> {{"type": "array", "items": {{"type": "integer"}}}}')],
    ),
    (
        "array<string>",
        obj({"x": {"type": "array<string>"}}),
        obj({"x": {"type": "array", "items": {"type": "string"}}}),
        [(f'{P}.x.type: \'array<string>\' -> {{"type": "array", "items": {{"type": "string"}}}}')],
    ),
    (
        "str[]",
        obj({"x": {"type": "str[]"}}),
        obj({"x": {"type": "array", "items": {"type": "string"}}}),
        [(f'{P}.x.type: \'str[]\' -> {{"type": "array", "items": {{"type": "string"}}}}')],
    ),
    (
        "Optional[int]",
        obj({"x": {"type": "Optional[int]"}}),
        obj({"x": {"type": ["integer", "null"]}}),
        [(f'{P}.x.type: \'Optional[int]\' -> ["integer", "null"]')],
    ),
    (
        "int | None",
        obj({"x": {"type": "int | None"}}),
        obj({"x": {"type": ["integer", "null"]}}),
        [(f'{P}.x.type: \'int | None\' -> ["integer", "null"]')],
    ),
    (
        "type list",
        obj({"x": {"type": ["int", "null"]}}),
        obj({"x": {"type": ["integer", "null"]}}),
        [f'{P}.x.type: ["int", "null"] -> ["integer", "null"]'],
    ),
    (
        "Dict[str, int]",
        obj({"x": {"type": "Dict[str, int]"}}),
        obj({"x": {"type": "object", "additionalProperties": {"type": "integer"}}}),
        [
            (
                f"{P}.x.type: 'Dict[str, int]' -> "
                '{"type": "object", "additionalProperties": {"type": "integer"}}'
            )
        ],
    ),
    (
        "Optional[List[str]]",
        obj({"x": {"type": "Optional[List[str]]"}}),
        obj({"x": {"type": ["array", "null"], "items": {"type": "string"}}}),
        [
            (
                f"{P}.x.type: 'Optional[List[str]]' -> "
                '{"type": ["array", "null"], "items": {"type": "string"}}'
            )
        ],
    ),
    (
        "infer from enum",
        obj({"unit": {"enum": ["c", "f"]}}),
        obj({"unit": {"enum": ["c", "f"], "type": "string"}}),
        [f"{P}.unit.type: missing -> 'string' (from enum)"],
    ),
    (
        "infer from default",
        obj({"n": {"default": 5}}),
        obj({"n": {"default": 5, "type": "integer"}}),
        [f"{P}.n.type: missing -> 'integer' (from default)"],
    ),
    (
        "infer from items",
        obj({"xs": {"items": {"type": "string"}}}),
        obj({"xs": {"items": {"type": "string"}, "type": "array"}}),
        [f"{P}.xs.type: missing -> 'array' (from items)"],
    ),
    (
        "infer from properties",
        obj({"o": {"properties": {"a": {"type": "string"}}}}),
        obj({"o": {"properties": {"a": {"type": "string"}}, "type": "object"}}),
        [f"{P}.o.type: missing -> 'object' (from properties)"],
    ),
    (
        "untyped",
        obj({"x": {"description": "free"}}),
        obj({"x": {"description": "free"}}),
        [f"{P}.x: no type; left unconstrained"],
    ),
    (
        "required absent",
        obj({"a": {"type": "string"}}, required=["a", "b"]),
        obj({"a": {"type": "string"}}, required=["a"]),
        ['parameters.required: dropped ["b"] (not in properties)'],
    ),
    (
        "required true",
        obj(
            {"a": {"type": "string", "required": True}, "b": {"type": "string", "required": False}}
        ),
        obj({"a": {"type": "string"}, "b": {"type": "string"}}, required=["a"]),
        [
            f"{P}.a.required: true -> listed in parameters.required",
            f"{P}.b.required: false -> dropped",
        ],
    ),
    (
        "required string",
        obj({"a": {"type": "string"}}, required="a"),
        obj({"a": {"type": "string"}}, required=["a"]),
        ["parameters.required: 'a' -> ['a']"],
    ),
    (
        "required not a list",
        obj({"a": {"type": "string"}}, required=7),
        obj({"a": {"type": "string"}}),
        ["parameters.required: 7 is not a list of names; dropped"],
    ),
    (
        "required duplicates",
        obj({"a": {"type": "string"}}, required=["a", "a"]),
        obj({"a": {"type": "string"}}, required=["a"]),
        ["parameters.required: removed duplicate names"],
    ),
    (
        "enum stringified",
        obj({"x": {"type": "string", "enum": ["a", 1, True]}}),
        obj({"x": {"type": "string", "enum": ["a", "1", "true"]}}),
        [f"{P}.x.enum: non-string values stringified"],
    ),
    (
        "enum mixed types",
        obj({"x": {"type": "integer", "enum": [1, "2"]}}),
        obj({"x": {"type": ["integer", "string"], "enum": [1, "2"]}}),
        [(f'{P}.x.type: \'integer\' -> ["integer", "string"] (types of enum values)')],
    ),
    (
        "enum duplicates",
        obj({"x": {"type": "string", "enum": ["a", "b", "a"]}}),
        obj({"x": {"type": "string", "enum": ["a", "b"]}}),
        [f"{P}.x.enum: removed duplicate values"],
    ),
    (
        "enum empty",
        obj({"x": {"type": "string", "enum": []}}),
        obj({"x": {"type": "string"}}),
        [f"{P}.x.enum: empty; dropped"],
    ),
    (
        "default int",
        obj({"n": {"type": "integer", "default": "5"}}),
        obj({"n": {"type": "integer", "default": 5}}),
        [f"{P}.n.default: '5' -> 5"],
    ),
    (
        "default bool",
        obj({"b": {"type": "boolean", "default": "true"}}),
        obj({"b": {"type": "boolean", "default": True}}),
        [f"{P}.b.default: 'true' -> true"],
    ),
    (
        "default string",
        obj({"s": {"type": "string", "default": 3}}),
        obj({"s": {"type": "string", "default": "3"}}),
        [f"{P}.s.default: 3 -> '3'"],
    ),
    (
        "default dropped",
        obj({"n": {"type": "integer", "default": "many"}}),
        obj({"n": {"type": "integer"}}),
        [f"{P}.n.default: 'many' does not match type 'integer'; dropped"],
    ),
    (
        "bare property map",
        {"city": {"type": "string"}, "required": ["city"]},
        obj({"city": {"type": "string"}}, required=["city"]),
        ["parameters: bare property map -> wrapped in an object schema"],
    ),
    (
        "property shorthand",
        obj({"city": "string", "tags": {"type": "array", "items": "int"}}),
        obj({"city": {"type": "string"}, "tags": {"type": "array", "items": {"type": "integer"}}}),
        [
            (f'{P}.city: type name \'string\' given as schema -> {{"type": "string"}}'),
            (f'{P}.tags.items: type name \'int\' given as schema -> {{"type": "integer"}}'),
        ],
    ),
    ("missing", None, obj({}), ["parameters: missing -> empty object schema"]),
    (
        "no root type",
        {"properties": {"q": {"type": "string"}}},
        obj({"q": {"type": "string"}}),
        ["parameters.type: missing -> 'object'"],
    ),
    ("no properties", {"type": "object"}, obj({}), ["parameters.properties: missing -> {}"]),
    (
        "json text",
        '{"type": "object", "properties": {"q": {"type": "str"}}}',
        obj({"q": {"type": "string"}}),
        ["parameters: JSON text -> parsed", f"{P}.q.type: 'str' -> 'string'"],
    ),
    (
        "parameter list",
        [{"name": "q", "type": "string", "required": True}, {"name": "n", "type": "int"}],
        obj({"q": {"type": "string"}, "n": {"type": "integer"}}, required=["q"]),
        [
            "parameters: list of parameter objects -> object schema",
            f"{P}.q.required: true -> listed in parameters.required",
            f"{P}.n.type: 'int' -> 'integer'",
        ],
    ),
    (
        "desc alias",
        obj({"q": {"type": "string", "desc": " Query "}}),
        obj({"q": {"type": "string", "description": "Query"}}),
        [f"{P}.q.description: taken from 'desc'", f"{P}.q.description: trimmed whitespace"],
    ),
    (
        "title as description",
        obj({"q": {"type": "string", "title": "Query"}}),
        obj({"q": {"type": "string", "title": "Query", "description": "Query"}}),
        [f"{P}.q.description: taken from 'title'"],
    ),
    (
        "description not text",
        obj({"q": {"type": "string", "description": ["Search", "terms"]}}),
        obj({"q": {"type": "string", "description": "Search terms"}}),
        [f"{P}.q.description: list -> joined string"],
    ),
    (
        "tuple items",
        obj({"p": {"type": "array", "items": [{"type": "number"}, {"type": "number"}]}}),
        obj({"p": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}]}}),
        [f"{P}.p.items: list (tuple form) -> prefixItems"],
    ),
    (
        "nullable",
        obj({"x": {"type": "string", "nullable": True}}),
        obj({"x": {"type": ["string", "null"]}}),
        [f'{P}.x.nullable: true -> type ["string", "null"]'],
    ),
    (
        "nullable enum",
        obj({"x": {"type": "string", "nullable": True, "enum": ["a", None]}}),
        obj({"x": {"type": ["string", "null"], "enum": ["a", None]}}),
        [f'{P}.x.nullable: true -> type ["string", "null"]'],
    ),
    (
        "definitions",
        obj({"p": {"$ref": "#/definitions/Point"}}, definitions={"Point": {"type": "object"}}),
        obj({"p": {"$ref": "#/$defs/Point"}}, **{"$defs": {"Point": {"type": "object"}}}),
        [
            "parameters: definitions -> $defs",
            f"{P}.p.$ref: '#/definitions/Point' -> '#/$defs/Point'",
        ],
    ),
    (
        "draft-4 exclusive",
        obj({"x": {"type": "number", "minimum": 0, "exclusiveMinimum": True}}),
        obj({"x": {"type": "number", "exclusiveMinimum": 0}}),
        [f"{P}.x.exclusiveMinimum: true -> minimum value made exclusive"],
    ),
    (
        "numeric strings",
        obj({"s": {"type": "string", "minLength": "3", "maxLength": -1}}),
        obj({"s": {"type": "string", "minLength": 3}}),
        [f"{P}.s.minLength: '3' -> 3", f"{P}.s.maxLength: invalid value -1 dropped"],
    ),
    (
        "bad regex",
        obj({"s": {"type": "string", "pattern": "("}}),
        obj({"s": {"type": "string"}}),
        [f"{P}.s.pattern: invalid value '(' dropped"],
    ),
    (
        "unknown keyword",
        obj({"s": {"type": "string", "x-order": 1}}),
        obj({"s": {"type": "string"}}),
        [f"{P}.s: dropped unknown keyword 'x-order'"],
    ),
    (
        "$schema",
        {"$schema": "http://json-schema.org/draft-07/schema#", **obj({})},
        obj({}),
        [
            (
                "parameters.$schema: 'http://json-schema.org/draft-07/schema#' dropped "
                "(output is a self-contained 2020-12 schema)"
            )
        ],
    ),
    (
        "nested",
        obj(
            {"o": {"type": "object", "properties": {"n": {"type": "int"}}, "required": ["n", "m"]}}
        ),
        obj({"o": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}),
        [
            f"{P}.o.properties.n.type: 'int' -> 'integer'",
            f'{P}.o.required: dropped ["m"] (not in properties)',
        ],
    ),
    (
        "anyOf branch",
        obj({"v": {"anyOf": [{"type": "str"}, {"type": "int"}]}}),
        obj({"v": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}),
        [f"{P}.v.anyOf.0.type: 'str' -> 'string'", f"{P}.v.anyOf.1.type: 'int' -> 'integer'"],
    ),
    (
        "already strict",
        obj(
            {"q": {"type": "string", "description": "Query", "minLength": 1}},
            required=["q"],
            additionalProperties=False,
        ),
        obj(
            {"q": {"type": "string", "description": "Query", "minLength": 1}},
            required=["q"],
            additionalProperties=False,
        ),
        [],
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected", "fixes"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_dialect_table(raw, expected, fixes):
    tool = run(copy.deepcopy(raw))
    assert tool.parameters == expected
    assert list(tool.fixes) == fixes
    Draft202012Validator.check_schema(tool.parameters)


# ------------------------------------------------------------------------- name, description


@pytest.mark.parametrize(
    ("name", "fixed"),
    [
        ("get weather", "get_weather"),
        (" search ", "search"),
        ("a/b:c", "a_b_c"),
        ("ok.name-1", "ok.name-1"),
    ],
)
def test_name_fixed(name, fixed):
    tool = normalise_tool({"name": name, "description": "d", "parameters": None}, LIMITS)
    assert tool.name == fixed
    assert NAME_PATTERN.match(tool.name)
    assert (f"name: {name!r} -> {fixed!r}" in tool.fixes) == (name != fixed)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (None, "name missing"),
        (5, "not a string"),
        ("", "no usable characters"),
        ("???", "no usable characters"),
        ("x" * 65, "over the 64 allowed"),
    ],
)
def test_name_rejected(name, reason):
    assert reason in rejected({"name": name, "description": "d"})


def test_description_variants():
    assert run(None).description == "d"
    tool = normalise_tool({"name": "t", "summary": " Sum. "}, LIMITS)
    assert tool.description == "Sum."
    assert tool.fixes[:2] == (
        "description: taken from 'summary'",
        "description: trimmed whitespace",
    )
    tool = normalise_tool({"name": "t"}, LIMITS)
    assert tool.description == "" and "description: missing; left empty" in tool.fixes


def test_long_description_is_cut():
    limits = NormaliseConfig(max_description_chars=10)
    tool = normalise_tool(
        {
            "name": "t",
            "description": "x" * 25,
            "parameters": obj({"q": {"type": "string", "description": "y" * 12}}),
        },
        limits,
    )
    assert tool.description == "x" * 10
    assert tool.parameters["properties"]["q"]["description"] == "y" * 10
    assert "description: cut from 25 to 10 chars" in tool.fixes
    assert f"{P}.q.description: cut from 12 to 10 chars" in tool.fixes


def test_properties_next_to_parameters():
    tool = normalise_tool(
        {
            "name": "t",
            "description": "d",
            "properties": {"q": {"type": "string"}},
            "required": ["q"],
        },
        LIMITS,
    )
    assert tool.parameters == obj({"q": {"type": "string"}}, required=["q"])
    assert tool.fixes[0] == "parameters: properties found next to 'parameters'; moved inside"


# -------------------------------------------------------------------------------- output


def test_output_schema_repaired_and_kept():
    tool = run(None, output_schema={"type": "object", "properties": {"price": {"type": "float"}}})
    assert tool.output_schema == obj({"price": {"type": "number"}})
    assert "output_schema.properties.price.type: 'float' -> 'number'" in tool.fixes


def test_bad_output_schema_is_dropped_not_fatal():
    tool = run(None, output_schema={"type": "Frobnicator"})
    assert tool.output_schema is None
    assert tool.fixes[-1] == (
        "output_schema: dropped (output_schema.type: unknown type name 'Frobnicator')"
    )


# ----------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("parameters", "reason"),
    [
        (obj({"b": {"type": "LatLngBounds"}}), f"{P}.b.type: unknown type name 'LatLngBounds'"),
        (obj({"b": {"type": "List[Geo]"}}), "unknown type name 'Geo'"),
        (
            obj({"r": {"$ref": "#/components/schemas/R"}}),
            "unresolvable reference '#/components/schemas/R'",
        ),
        (obj({"r": {"$ref": "https://example.com/r.json"}}), "unresolvable reference"),
        (obj({"r": {"$ref": 5}}), f"{P}.r.$ref: a number is not a reference"),
        ({"type": "string"}, "parameters must be an object schema, not type 'string'"),
        (obj({"x": 5}), f"{P}.x: schema is a number (5), not an object"),
        (12, "parameters is a number (12), not an object schema"),
        ("not json", "parameters is a string that is not JSON"),
        (False, "parameters is a boolean"),
        ([{"type": "string"}], "parameter entry has no string 'name'"),
        ([{"name": "a"}, {"name": "a"}], "parameter 'a' declared twice"),
    ],
)
def test_rejected_with_precise_reason(parameters, reason):
    assert reason in rejected({"name": "t", "description": "d", "parameters": parameters})


def test_non_object_spec_rejected():
    assert rejected(["not", "a", "spec"]) == "spec is an array, not a JSON object"


# ---------------------------------------------------------------------------------- limits


def test_oversize_spec():
    reason = rejected(
        {"name": "t", "description": "x" * 2000}, NormaliseConfig(max_spec_bytes=1000)
    )
    assert "max_spec_bytes=1000" in reason and "bytes" in reason


def test_too_many_properties():
    props = {f"p{i}": {"type": "string"} for i in range(6)}
    reason = rejected({"name": "t", "parameters": obj(props)}, NormaliseConfig(max_properties=5))
    assert reason == "parameters.properties: 6 properties exceed max_properties=5"


def test_too_deep():
    schema: dict = {"type": "string"}
    for _ in range(5):
        schema = obj({"a": schema})
    reason = rejected({"name": "t", "parameters": schema}, NormaliseConfig(max_depth=3))
    assert "exceeds max_depth=3" in reason


def test_too_deep_type_expression():
    expr = "List[" * 40 + "int" + "]" * 40
    assert "nested too deeply" in rejected({"name": "t", "parameters": obj({"x": {"type": expr}})})


def test_cyclic_structure():
    params = obj({})
    params["properties"]["self"] = params
    assert "cyclic" in rejected({"name": "t", "parameters": params})


def test_very_deep_raw_nesting_never_recursion_error():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert rejected({"name": "t", "parameters": deep})


def test_nan_rejected():
    assert "not representable as JSON" in rejected(
        {"name": "t", "parameters": obj({"x": {"type": "number", "default": float("nan")}})}
    )


# ---------------------------------------------------------------------------- purity, keys


def test_pure_and_deterministic():
    raw = {"name": "a b", "desc": "x", "parameters": {"q": {"type": "str", "required": True}}}
    before = copy.deepcopy(raw)
    assert normalise_tool(raw, LIMITS) == normalise_tool(raw, LIMITS)
    assert raw == before


def test_canonical_key_ignores_prose_only():
    a = obj(
        {
            "q": {"type": "string", "description": "one", "default": "x"},
            "n": {"type": ["integer", "null"], "enum": [1, 2]},
        },
        required=["q", "n"],
    )
    b = obj(
        {
            "n": {"type": ["null", "integer"], "enum": [2, 1], "title": "N"},
            "q": {"type": "string", "description": "two"},
        },
        required=["n", "q"],
    )
    assert canonical_schema_key(a) == canonical_schema_key(b)
    for changed in (
        obj({"q": {"type": "integer"}, "n": a["properties"]["n"]}, required=["q", "n"]),
        obj(a["properties"], required=["q"]),
        obj({"q": a["properties"]["q"], "m": a["properties"]["n"]}, required=["q"]),
        obj(
            {"q": a["properties"]["q"], "n": {"type": ["integer", "null"], "enum": [1]}},
            required=["q", "n"],
        ),
    ):
        assert canonical_schema_key(changed) != canonical_schema_key(a)


def test_canonical_key_does_not_confuse_property_named_description():
    with_prop = obj({"description": {"type": "string"}})
    assert canonical_schema_key(with_prop) != canonical_schema_key(obj({}))


# ------------------------------------------------------------------------------ hypothesis

TYPE_NAMES = st.sampled_from(
    [
        "string",
        "str",
        "int",
        "integer",
        "float",
        "number",
        "bool",
        "boolean",
        "object",
        "dict",
        "array",
        "list",
        "list[str]",
        "List[int]",
        "array<string>",
        "str[]",
        "Optional[int]",
        "int | None",
        "any",
        "null",
        "None",
        "frob",
        "",
        "Dict[str, int]",
        "tuple",
        "object?",
        "Object",
    ]
)
KEYS = st.sampled_from(
    [
        "type",
        "properties",
        "required",
        "enum",
        "items",
        "default",
        "description",
        "desc",
        "summary",
        "nullable",
        "$ref",
        "definitions",
        "$defs",
        "anyOf",
        "oneOf",
        "additionalProperties",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "pattern",
        "format",
        "title",
        "example",
        "const",
        "prefixItems",
        "patternProperties",
        "x-extra",
        "name",
    ]
)
REFS = st.sampled_from(
    [
        "#",
        "#/definitions/a",
        "#/$defs/a",
        "#/properties/x",
        "#/items/0",
        "http://example.com/x",
        "#/properties/a~1b",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TYPE_NAMES
    | REFS
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=25,
)
PROP_NAMES = st.sampled_from(["a", "x", "a/b", "description", "type", "q"])
TYPE_VALUES = TYPE_NAMES | st.lists(TYPE_NAMES, max_size=3)
LEAF_SCHEMAS = st.fixed_dictionaries(
    {},
    optional={
        "type": TYPE_VALUES,
        "enum": st.lists(SCALARS, max_size=3),
        "default": SCALARS,
        "description": SCALARS,
        "nullable": SCALARS,
        "required": st.booleans() | st.lists(PROP_NAMES),
        "minimum": SCALARS,
        "pattern": st.sampled_from(["^a", "(", "[0-9]+"]),
        "format": SCALARS,
    },
)
SCHEMAS = st.recursive(
    LEAF_SCHEMAS | SCALARS,
    lambda children: st.fixed_dictionaries(
        {},
        optional={
            "type": TYPE_VALUES,
            "properties": st.dictionaries(PROP_NAMES, children, max_size=4)
            | st.lists(children, max_size=3),
            "items": children | st.lists(children, max_size=2),
            "anyOf": st.lists(children, max_size=3),
            "required": st.lists(PROP_NAMES, max_size=3) | SCALARS,
            "$ref": REFS,
            "definitions": st.dictionaries(st.just("a"), children, max_size=1),
            "additionalProperties": children,
            "enum": st.lists(SCALARS, max_size=3),
            "default": JSONISH,
        },
    ),
    max_leaves=15,
)
OBJECT_SCHEMAS = st.builds(
    lambda props, extra: {"type": "object", "properties": props, **extra},
    st.dictionaries(PROP_NAMES, SCHEMAS, max_size=4),
    st.fixed_dictionaries(
        {},
        optional={
            "required": st.lists(PROP_NAMES, max_size=3),
            "definitions": st.dictionaries(st.just("a"), SCHEMAS),
        },
    ),
)
SPECS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["get_weather"] * 4 + ["a b", "search.v2", "", "x" * 70, None, 3]),
        "parameters": st.one_of(OBJECT_SCHEMAS, OBJECT_SCHEMAS, SCHEMAS, JSONISH),
    },
    optional={
        "description": JSONISH,
        "output_schema": SCHEMAS | JSONISH,
        "summary": JSONISH,
        "properties": SCHEMAS,
        "required": JSONISH,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS | JSONISH)
def test_never_raises_and_always_valid(raw):
    try:
        tool = normalise_tool(raw, LIMITS)
    except SpecRejected as exc:
        assert isinstance(exc.reason, str) and exc.reason.strip()
        return
    assert NAME_PATTERN.match(tool.name)
    assert isinstance(tool.description, str)
    assert tool.parameters["type"] == "object" and isinstance(tool.parameters["properties"], dict)
    Draft202012Validator.check_schema(tool.parameters)
    if tool.output_schema is not None:
        Draft202012Validator.check_schema(tool.output_schema)
    assert all(isinstance(fix, str) and fix for fix in tool.fixes)
    json.dumps([tool.parameters, tool.output_schema], allow_nan=False)
    assert isinstance(canonical_schema_key(tool.parameters), str)
