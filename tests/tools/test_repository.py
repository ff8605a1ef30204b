"""Assembly of the repository: every tool categorised, the map bounded, provenance kept."""

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import ToolRepoConfig
from kimi_pipeline.tools.repository import build_repository


def _tool(i: int, source: str) -> ToolSpec:
    return ToolSpec(
        tool_id=f"{source}:x/tool_{i}", name=f"get_weather_{i}" if i % 2 else f"book_flight_{i}",
        description=f"Tool number {i}: {'weather forecast for a city' if i % 2 else 'books a flight'}",
        parameters={"type": "object", "properties": {f"p{i}": {"type": "string"}}},
        source=source, source_ref=f"x#{i}",
        **({"category": "travel", "domain": "flights"} if source == "synthetic" else {}),
    )


def test_every_real_tool_is_categorised_and_the_map_stays_bounded():
    real = [_tool(i, "file") for i in range(40)]
    synthetic = [_tool(i, "synthetic") for i in range(100, 160)]
    config = ToolRepoConfig.model_validate({"map": {"embedder": "hashing", "projection": "pca",
                                                    "max_points": 20}})
    build = build_repository([real, synthetic], config)
    assert len(build.tools) == 100
    assert all(t.category and t.domain for t in build.tools)
    assert len(build.map_rows) == 20
    assert {r["source"] for r in build.map_rows} == {"file", "synthetic"}
