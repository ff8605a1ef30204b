"""Exact and near-duplicate merging of tools: provenance, schema guard, transitivity, order."""

from __future__ import annotations

import json
import random

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import DedupConfig
from kimi_pipeline.tools.dedup import dedup_tools, split_name

CONFIG = DedupConfig()

WEATHER = (
    "Return the current weather conditions for a city, including temperature in celsius, "
    "humidity, wind speed and a short textual summary of the sky for the next hour"
)
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CITY_UNITS = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
    "required": ["city"],
}


def key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def tool(
    tool_id: str,
    name: str,
    description: str = WEATHER,
    parameters: dict | None = None,
    source: str = "file",
    source_ref: str | None = None,
    merged_from: list[str] | None = None,
) -> ToolSpec:
    return ToolSpec(
        tool_id=tool_id,
        name=name,
        description=description,
        parameters=parameters if parameters is not None else CITY,
        source=source,
        source_ref=source_ref or tool_id,
        merged_from=merged_from or [],
    )


def run(tools: list[ToolSpec]):
    return dedup_tools(tools, CONFIG, key)


def test_split_name():
    assert split_name("getUserID_v2") == ["get", "user", "id", "v2"]
    assert split_name("get_current_weather") == ["get", "current", "weather"]
    assert split_name("HTTPRequest") == ["http", "request"]


def test_exact_duplicates_merge_with_provenance_and_preference():
    tools = [
        tool(
            "synthetic:d/get_weather",
            "get_weather",
            source="synthetic",
            source_ref="evol:1",
            merged_from=["evol:0"],
        ),
        tool(
            "file:a.json/get_weather",
            "get_weather",
            description="Weather now.",
            source_ref="a.json#3",
        ),
        tool(
            "mcp:wx/get_weather",
            "get_weather",
            description="Other words.",
            source="mcp",
            source_ref="wx",
        ),
    ]
    result = run(tools)
    assert (result.exact_merged, result.near_merged) == (2, 0)
    (kept,) = result.tools
    assert kept.tool_id == "mcp:wx/get_weather"  # mcp beats file beats synthetic
    assert kept.description == "Other words."
    assert kept.merged_from == ["a.json#3", "evol:1", "evol:0"]
    assert result.clusters == [
        ["mcp:wx/get_weather", "file:a.json/get_weather", "synthetic:d/get_weather"]
    ]
    assert tools[2].merged_from == []  # inputs are not mutated


def test_same_name_different_schema_kept_apart():
    result = run(
        [
            tool("mcp:a/get_weather", "get_weather"),
            tool("mcp:b/get_weather", "get_weather", parameters=CITY_UNITS),
        ]
    )
    assert [t.tool_id for t in result.tools] == ["mcp:a/get_weather", "mcp:b/get_weather"]
    assert (result.exact_merged, result.near_merged, result.clusters) == (0, 0, [])


def test_near_duplicate_text_with_equal_schema_merged():
    result = run(
        [
            tool("file:x/get_weather", "get_weather", source_ref="x#0"),
            tool(
                "file:y/getWeather", "getWeather", description=WEATHER + " today", source_ref="y#0"
            ),
        ]
    )
    assert (result.exact_merged, result.near_merged) == (0, 1)
    (kept,) = result.tools
    assert kept.tool_id == "file:x/get_weather" and kept.merged_from == ["y#0"]


def test_near_duplicate_text_with_different_schema_kept():
    result = run(
        [
            tool("file:x/get_weather", "get_weather"),
            tool(
                "file:y/getWeather",
                "getWeather",
                description=WEATHER + " today",
                parameters=CITY_UNITS,
            ),
        ]
    )
    assert len(result.tools) == 2 and result.near_merged == 0


def test_unrelated_tools_kept():
    result = run(
        [
            tool("file:x/get_weather", "get_weather"),
            tool(
                "file:x/send_email",
                "send_email",
                description="Send an email message to one or more recipients with a subject and body",
            ),
            tool(
                "file:x/list_orders",
                "list_orders",
                description="List the orders of the signed-in customer, newest first, with pagination",
            ),
        ]
    )
    assert len(result.tools) == 3 and result.clusters == []


def test_merging_is_transitive():
    # Sliding windows over one text: a ~ b and b ~ c (J ≈ 0.87), but a and c alone (J ≈ 0.77) not.
    words = [f"word{i}" for i in range(224)]
    a, b, c = (" ".join(words[s : s + 200]) for s in (0, 12, 24))
    tools = [
        tool("file:1/w", "weather_now", a),
        tool("file:2/w", "weatherNow", b),
        tool("file:3/w", "WeatherNow", c),
    ]
    assert len(run([tools[0], tools[2]]).tools) == 2
    result = run(tools)
    assert len(result.tools) == 1 and result.near_merged == 2
    assert result.clusters == [["file:1/w", "file:2/w", "file:3/w"]]


def test_exact_and_near_chain_into_one_cluster():
    tools = [
        tool("file:1/w", "get_weather", WEATHER),
        tool("file:2/w", "get_weather", "Completely different words here."),  # exact dup of 1
        tool(
            "mcp:s/w", "getWeather", WEATHER + " today", source="mcp", source_ref="s"
        ),  # near dup of 1
    ]
    result = run(tools)
    assert (result.exact_merged, result.near_merged) == (1, 1)
    (kept,) = result.tools
    assert kept.tool_id == "mcp:s/w" and kept.merged_from == ["file:1/w", "file:2/w"]


def test_output_keeps_input_order_of_keepers_and_is_deterministic():
    rng = random.Random(7)
    vocab = [f"word{i}" for i in range(300)]
    tools = []
    for i in range(300):
        if i % 5 == 4:
            base = tools[rng.randrange(len(tools))]
            tools.append(tool(f"file:t/{i}", base.name, base.description, base.parameters))
        else:
            tools.append(tool(f"file:t/{i}", f"tool_{i}", " ".join(rng.sample(vocab, 20))))
    first = run(tools)
    positions = [
        next(k for k, t in enumerate(tools) if t.tool_id == kept.tool_id) for kept in first.tools
    ]
    assert positions == sorted(positions)
    assert first.exact_merged == 60 and len(first.tools) == 240
    again = run(tools)
    assert [t.model_dump() for t in again.tools] == [t.model_dump() for t in first.tools]
    assert again.clusters == first.clusters


def test_empty_and_single():
    assert run([]).tools == []
    single = run([tool("file:x/a", "a")])
    assert len(single.tools) == 1 and single.clusters == []


def test_extreme_thresholds_work():
    same = [tool("file:1/w", "weather_now"), tool("file:2/w", "weatherNow")]
    for threshold, num_perm in ((1.0, 128), (0.999, 16), (0.05, 16)):
        config = DedupConfig(near_duplicate_threshold=threshold, num_perm=num_perm)
        result = dedup_tools(same, config, key)
        assert result.near_merged == 1, (threshold, num_perm)
