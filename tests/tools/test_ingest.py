"""ingest: every dialect recognised, files streamed, nothing raises, refusals quarantined."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kimi_pipeline.records import QuarantineRecord, ToolSpec
from kimi_pipeline.tools.config import NormaliseConfig
from kimi_pipeline.tools.ingest import RawTool, Rejected, ingest_files, iter_raw_tools

LIMITS = NormaliseConfig()
SAMPLES = Path(__file__).resolve().parents[2] / "data" / "01_raw" / "tool_specs"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PRE = {"name": "weather", "description": "Weather now.", "parameters": SCHEMA}

MCP_TOOL = {
    "name": "weather",
    "description": "Weather now.",
    "inputSchema": SCHEMA,
    "annotations": {"readOnlyHint": True},
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather now.",
        "parameters": SCHEMA,
        "strict": True,
    },
}
BARE_TOOL = {"name": "weather", "description": "Weather now.", "parameters": SCHEMA}
ANTHROPIC_TOOL = {"name": "weather", "description": "Weather now.", "input_schema": SCHEMA}


def found(text: str, ref: str = "f.json") -> list[RawTool | Rejected]:
    return list(iter_raw_tools(text, ref))


def records(files: dict) -> list[ToolSpec | QuarantineRecord]:
    return list(ingest_files({ref: (lambda v=v: v) for ref, v in files.items()}, LIMITS))


@pytest.mark.parametrize(
    "document",
    [
        MCP_TOOL,
        {"tools": [MCP_TOOL]},
        {"jsonrpc": "2.0", "id": 1, "result": {"tools": [MCP_TOOL], "nextCursor": None}},
        OPENAI_TOOL,
        [OPENAI_TOOL],
        {"model": "gpt-4o", "tools": [OPENAI_TOOL]},
        {"functions": [BARE_TOOL]},
        BARE_TOOL,
        ANTHROPIC_TOOL,
        [[BARE_TOOL]],
    ],
    ids=[
        "mcp",
        "tools/list",
        "json-rpc",
        "openai",
        "openai list",
        "openai request",
        "legacy functions",
        "bare",
        "anthropic",
        "nested lists",
    ],
)
def test_each_dialect_maps_to_pre_shape(document):
    assert found(json.dumps(document)) == [RawTool("f.json#0", PRE)]


def test_mcp_output_schema_and_description_variants_kept_unknown_fields_dropped():
    tool = {
        "name": "q",
        "summary": "Quote.",
        "inputSchema": SCHEMA,
        "outputSchema": {"type": "object"},
        "annotations": {},
        "_meta": {},
    }
    [item] = found(json.dumps(tool))
    assert item.raw == {
        "name": "q",
        "description": None,
        "parameters": SCHEMA,
        "output_schema": {"type": "object"},
        "summary": "Quote.",
    }
    assert item.original == tool


def test_list_of_mixed_dialects_numbered_in_file_order():
    items = found(json.dumps([MCP_TOOL, OPENAI_TOOL, "junk", BARE_TOOL]))
    assert [item.ref for item in items] == ["f.json#0", "f.json#1", "f.json#2", "f.json#3"]
    assert [type(item) for item in items] == [RawTool, RawTool, Rejected, RawTool]
    assert "found str where a tool object belongs" in items[2].reason


def test_jsonl_by_suffix_with_a_bad_line():
    text = json.dumps(BARE_TOOL) + "\n\n{not json\n" + json.dumps(OPENAI_TOOL) + "\n"
    items = found(text, "tools.jsonl")
    assert [type(item) for item in items] == [RawTool, Rejected, RawTool]
    assert items[1].ref == "tools.jsonl#1"
    assert items[1].reason.startswith("invalid JSON on line 3: Expecting property name")


def test_jsonl_detected_without_suffix():
    text = json.dumps(BARE_TOOL) + "\n" + json.dumps(MCP_TOOL) + "\n"
    assert [item.raw for item in found(text, "tools")] == [PRE, PRE]


def test_bad_json_is_one_rejection_with_line_and_column():
    [item] = found('{\n  "name": "x",\n  "parameters": {,}\n}')
    assert item == Rejected(
        "f.json",
        "invalid JSON: Expecting property name enclosed in double quotes at line 3 column 18",
        item.original,
    )


@pytest.mark.parametrize("text", ["", "   \n\t", "\ufeff"])
def test_empty_file(text):
    assert found(text) == [Rejected("f.json", "empty file", text)]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"tool": "x", "args": {}}, "object with keys [args, tool] matches no known dialect"),
        ({"name": "only-a-name"}, "object with keys [name] matches no known dialect"),
        (42, "found int where a tool object belongs"),
        ({"tools": []}, "no tools found in file"),
        ([], "no tools found in file"),
    ],
)
def test_non_tools_rejected_with_reason(document, reason):
    [item] = found(json.dumps(document))
    assert isinstance(item, Rejected) and reason in item.reason


def test_containers_nested_too_deeply():
    document: list = [BARE_TOOL]
    for _ in range(20):
        document = [document]
    [item] = found(json.dumps(document))
    assert "nested deeper than 8 levels" in item.reason


def test_bom_is_ignored():
    assert found("\ufeff" + json.dumps(BARE_TOOL))[0].raw == PRE


# ----------------------------------------------------------------------------- ingest_files


def test_ingest_records():
    out = records(
        {
            "w.json": json.dumps([BARE_TOOL, {"name": "bad", "parameters": {"type": "Geo"}}]),
            "broken.json": "{",
            "junk.json": json.dumps({"hello": 1}),
        }
    )
    assert [type(r).__name__ for r in out] == [
        "QuarantineRecord",
        "QuarantineRecord",
        "ToolSpec",
        "QuarantineRecord",
    ]
    broken, junk, tool, bad = out
    assert (broken.step, broken.source_ref, broken.stage) == ("ingest", "broken.json", "tool_repo")
    assert junk.source_ref == "junk.json#0" and "no known dialect" in junk.reason
    assert tool.tool_id == "file:w.json/weather" and tool.source == "file"
    assert tool.source_ref == "w.json#0" and tool.parameters == SCHEMA and tool.fixes == []
    assert (bad.step, bad.source_ref) == ("normalise", "w.json#1")
    assert bad.reason == "parameters.type: unknown type name 'Geo'"
    assert json.loads(bad.original) == {"name": "bad", "parameters": {"type": "Geo"}}


def test_duplicate_names_get_suffixes():
    out = records({"d.json": json.dumps([BARE_TOOL, MCP_TOOL, OPENAI_TOOL])})
    assert [r.tool_id for r in out] == [
        "file:d.json/weather",
        "file:d.json/weather~2",
        "file:d.json/weather~3",
    ]
    assert [r.name for r in out] == ["weather"] * 3


def test_bytes_decoded_and_bad_utf8_quarantined():
    out = records({"a.json": json.dumps(BARE_TOOL).encode(), "b.json": b'{"name": "\xff"}'})
    assert isinstance(out[0], ToolSpec)
    assert out[1].reason == "not UTF-8: invalid start byte at byte 10"


def test_failing_loader_quarantined():
    def boom():
        raise OSError("disk gone")

    [record] = list(ingest_files({"x.json": boom}, LIMITS))
    assert record.reason == "could not load: OSError: disk gone"


def test_already_parsed_content_accepted():
    [record] = records({"p": {"tools": [MCP_TOOL]}})
    assert isinstance(record, ToolSpec) and record.source_ref == "p#0"


def test_original_cut_at_64k():
    [record] = records({"big.json": "[" + "1," * 50_000})
    assert len(record.original) == 65_536


def test_streams_one_file_at_a_time():
    loaded = []

    def loader(ref):
        def load():
            loaded.append(ref)
            return json.dumps(BARE_TOOL)

        return load

    stream = ingest_files({f"{i}.json": loader(f"{i}.json") for i in range(3)}, LIMITS)
    next(stream)
    assert loaded == ["0.json"]
    assert len(list(stream)) == 2 and loaded == ["0.json", "1.json", "2.json"]


def test_shipped_samples():
    files = {path.name: path.read_text for path in sorted(SAMPLES.iterdir())}
    assert 8 <= len(files) <= 12
    out = list(ingest_files(files, LIMITS))
    tools = [r for r in out if isinstance(r, ToolSpec)]
    quarantined = [r for r in out if isinstance(r, QuarantineRecord)]
    assert len(tools) >= 15 and len({t.tool_id for t in tools}) == len(tools)
    assert {q.step for q in quarantined} == {"ingest", "normalise"}
    assert any(t.fixes for t in tools)
    for tool in tools:
        Draft202012Validator.check_schema(tool.parameters)


# ------------------------------------------------------------------------------ hypothesis

KEYS = st.sampled_from(
    [
        "name",
        "description",
        "parameters",
        "inputSchema",
        "input_schema",
        "tools",
        "result",
        "functions",
        "function",
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "default",
        "summary",
        "outputSchema",
    ]
)
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["string", "int", "list[str]", "frob", "object", "weather tool"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=3), children, max_size=5)
    ),
    max_leaves=30,
)
CONTENT = st.one_of(
    JSONISH.map(json.dumps),
    JSONISH.map(lambda doc: json.dumps(doc).encode()),
    st.lists(JSONISH.map(json.dumps), max_size=3).map("\n".join),
    st.text(max_size=40),
    st.binary(max_size=40),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(st.sampled_from(["a.json", "b.jsonl", "c", "d.ndjson"]), CONTENT, max_size=3)
)
def test_ingest_never_raises(files):
    out = records(files)
    ids = [r.tool_id for r in out if isinstance(r, ToolSpec)]
    assert len(ids) == len(set(ids))
    for record in out:
        if isinstance(record, QuarantineRecord):
            assert record.reason.strip() and not record.reason.startswith("normaliser error")
            assert len(record.original) <= 65_536
        else:
            Draft202012Validator.check_schema(record.parameters)
            record.to_json()
