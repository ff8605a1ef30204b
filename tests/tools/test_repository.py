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


def test_a_failed_mcp_server_is_a_warning_line_and_a_quarantine_row(caplog):
    from kimi_pipeline.tools.config import McpServerConfig
    from kimi_pipeline.tools.mcp_harvest import harvest_servers
    from kimi_pipeline.tools.repository import failed_servers

    result = harvest_servers([
        McpServerConfig(name="tiem", command=["python", "-m", "mcp_server_tiem"]),
        McpServerConfig(name="nobin", command=["no-such-mcp-binary"]),
        McpServerConfig(name="time", command=["python", "-m", "mcp_server_time"]),
    ])
    with caplog.at_level("WARNING", logger="kimi_pipeline.tools.repository"):
        rows = failed_servers(result.servers)
    assert [(r.step, r.source, r.source_ref) for r in rows] == [
        ("harvest", "mcp", "tiem"), ("harvest", "mcp", "nobin")]
    assert "No module named mcp_server_tiem" in rows[0].reason
    assert rows[1].reason == "executable not found: no-such-mcp-binary"
    assert '"command": ["python", "-m", "mcp_server_tiem"]' in rows[0].original
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[1].startswith("MCP server 'nobin' failed (executable not found: no-such-mcp-binary)")


def test_a_required_source_that_fails_stops_the_run():
    import pytest

    from kimi_pipeline.errors import SourceFailedError, UserError
    from kimi_pipeline.tools.config import McpServerConfig
    from kimi_pipeline.tools.mcp_harvest import harvest_servers
    from kimi_pipeline.tools.repository import failed_servers

    result = harvest_servers([McpServerConfig(name="nobin", command=["no-such-mcp-binary"])])
    with pytest.raises(SourceFailedError, match="MCP server 'nobin' failed .*require_all_sources"):
        failed_servers(result.servers, required=True)
    assert issubclass(SourceFailedError, UserError)


def test_real_tools_far_from_every_domain_are_uncategorised_and_reported():
    from kimi_pipeline.tools.taxonomy import load_taxonomy

    domain = next(d for c in load_taxonomy() for d in c.domains)
    near = ToolSpec(tool_id="file:x/near", name=domain.title, description=domain.description,
                    parameters={"type": "object", "properties": {}}, source="file", source_ref="x#1")
    far = ToolSpec(tool_id="file:x/git_diff", name="git_diff",
                   description="Shows diffs zzq qxv between commits",
                   parameters={"type": "object", "properties": {}}, source="file", source_ref="x#2")
    config = ToolRepoConfig.model_validate({"map": {"embedder": "hashing", "projection": "pca",
                                                    "min_category_similarity": 0.5}})
    build = build_repository([[near, far]], config)
    by_name = {t.name: t for t in build.tools}
    assert (by_name[domain.title].category, by_name[domain.title].domain) == (domain.category, domain.slug)
    assert (by_name["git_diff"].category, by_name["git_diff"].domain) == ("uncategorised", "uncategorised")
    assert build.stats["category_similarity_floor"] == 0.5
    assert build.stats["real_tools_uncategorised"] == 1
