"""Harvesting MCP servers over stdio: real servers, broken ones, pagination, no orphans."""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from kimi_pipeline.tools.config import McpServerConfig
from kimi_pipeline.tools.mcp_harvest import harvest_servers

PAGED_SERVER = textwrap.dedent(
    """
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server
    from mcp.server.stdio import stdio_server

    TOOLS = [
        types.Tool(
            name=f"tool_{i:02d}",
            description=f"Tool number {i}.",
            input_schema={"type": "object", "properties": {"x": {"type": "integer"}}},
        )
        for i in range(25)
    ]

    async def list_tools(ctx, params):
        start = int(params.cursor) if params is not None and params.cursor else 0
        end = start + 10
        return types.ListToolsResult(
            tools=TOOLS[start:end], next_cursor=str(end) if end < len(TOOLS) else None
        )

    async def main():
        server = Server("paged", version="1.0", on_list_tools=list_tools)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(main)
    """
)


def _server(name: str, command: list[str], **kw) -> McpServerConfig:
    return McpServerConfig(name=name, command=command, **kw)


def _pid_gone(pid: int, within_s: float = 5.0) -> bool:
    """Gone (or a zombie) within ``within_s``: a SIGKILL lands asynchronously on a busy machine."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@pytest.fixture(scope="module")
def paged_server(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("srv") / "paged_server.py"
    path.write_text(PAGED_SERVER)
    return path


def test_real_time_server_tools_and_schemas():
    result = harvest_servers([_server("time", ["python", "-m", "mcp_server_time"])])
    (report,) = result.servers
    assert report.ok, report.error
    assert report.pages == 1 and report.tools == 2
    assert report.server_info and report.server_info.startswith("mcp-time")
    tools = {t.raw["name"]: t.raw for t in result.tools}
    assert set(tools) == {"get_current_time", "convert_time"}
    assert all(t.server == "time" for t in result.tools)
    current = tools["get_current_time"]["inputSchema"]
    assert current["type"] == "object" and current["required"] == ["timezone"]
    convert = tools["convert_time"]["inputSchema"]
    assert set(convert["required"]) == {"source_timezone", "time", "target_timezone"}
    assert tools["convert_time"]["description"]
    assert "outputSchema" in tools["get_current_time"]


def test_broken_servers_are_reported_not_fatal(tmp_path):
    pid_file = tmp_path / "hang.pid"
    hang = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    started = time.monotonic()
    result = harvest_servers(
        [
            _server(
                "exit3", ["python", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
            ),
            _server("missing", ["no-such-executable-kimi"]),
            _server("hang", ["python", "-c", hang], startup_timeout_s=2),
            _server("garbage", ["python", "-c", "print('hello, not json')"]),
            _server("time", ["python", "-m", "mcp_server_time"]),
        ]
    )
    elapsed = time.monotonic() - started
    reports = {r.name: r for r in result.servers}
    assert [r.name for r in result.servers] == ["exit3", "missing", "hang", "garbage", "time"]
    assert reports["exit3"].error == "process exited with code 3 during initialize: boom"
    assert reports["missing"].error == "executable not found: no-such-executable-kimi"
    assert reports["hang"].error == "timed out after 2.0 s during initialize"
    assert "non-JSON-RPC output on stdout: 'hello, not json'" in reports["garbage"].error
    assert not any(reports[n].ok for n in ("exit3", "missing", "hang", "garbage"))
    assert reports["time"].ok and reports["time"].tools == 2
    assert elapsed < 6, elapsed  # concurrent: bounded by the 2 s hang, not the sum
    assert _pid_gone(int(pid_file.read_text()))


def test_hung_server_and_its_children_are_killed(tmp_path):
    pids = tmp_path / "pids"
    # The server starts a grandchild, then hangs; both must be gone after the timeout.
    script = (
        "import os, subprocess, sys, time;"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}');"
        "time.sleep(60)"
    )
    result = harvest_servers([_server("hang", ["python", "-c", script], startup_timeout_s=1.5)])
    assert result.servers[0].error.startswith("timed out after 1.5 s during initialize")
    assert all(_pid_gone(int(pid)) for pid in pids.read_text().split())


def test_pagination_follows_cursor(paged_server):
    result = harvest_servers([_server("paged", ["python", str(paged_server)])])
    (report,) = result.servers
    assert report.ok, report.error
    assert (report.pages, report.tools) == (3, 25)
    assert [t.raw["name"] for t in result.tools] == [f"tool_{i:02d}" for i in range(25)]
    assert report.server_info == "paged 1.0"


def test_max_pages_guard(paged_server):
    result = harvest_servers([_server("paged", ["python", str(paged_server)], max_pages=2)])
    (report,) = result.servers
    assert report.ok and (report.pages, report.tools) == (2, 20)
    assert "max_pages=2" in report.warnings[0]


def test_malformed_tools_are_passed_on_raw(tmp_path):
    # A hand-rolled server: the SDK's typed list_tools would reject this whole page.
    script = tmp_path / "sloppy.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            for line in sys.stdin:
                msg = json.loads(line)
                if msg.get("method") == "initialize":
                    result = {"protocolVersion": msg["params"]["protocolVersion"],
                              "capabilities": {"tools": {}},
                              "serverInfo": {"name": "sloppy", "version": "0"}}
                elif msg.get("method") == "tools/list":
                    result = {"tools": [{"name": "a", "inputSchema": {"type": "string"}},
                                        {"name": "b"}, "not a tool"]}
                else:
                    continue
                print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
            """
        )
    )
    result = harvest_servers([_server("sloppy", ["python", str(script)])])
    (report,) = result.servers
    assert report.ok, report.error
    assert [t.raw for t in result.tools] == [
        {"name": "a", "inputSchema": {"type": "string"}},
        {"name": "b"},
    ]
    assert "skipped 1 entries" in report.warnings[0]


def test_page_timeout_keeps_earlier_pages(tmp_path):
    script = tmp_path / "stalls.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys, time
            for line in sys.stdin:
                msg = json.loads(line)
                if msg.get("method") == "initialize":
                    result = {"protocolVersion": msg["params"]["protocolVersion"],
                              "capabilities": {"tools": {}},
                              "serverInfo": {"name": "stalls", "version": "0"}}
                elif msg.get("method") == "tools/list" and not msg.get("params"):
                    result = {"tools": [{"name": "first", "inputSchema": {"type": "object"}}],
                              "nextCursor": "2"}
                elif msg.get("method") == "tools/list":
                    time.sleep(60)
                else:
                    continue
                print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
            """
        )
    )
    result = harvest_servers([_server("stalls", ["python", str(script)], call_timeout_s=1)])
    (report,) = result.servers
    assert not report.ok and report.error == "timed out after 1.0 s during tools/list page 2"
    assert (report.pages, report.tools) == (1, 1) and result.tools[0].raw["name"] == "first"
    assert report.seconds < 4


def test_works_from_a_thread_and_inside_a_running_loop():
    servers = [_server("time", ["python", "-m", "mcp_server_time"])]
    box: list = []
    worker = threading.Thread(target=lambda: box.append(harvest_servers(servers)))
    worker.start()
    worker.join(30)
    assert box and box[0].servers[0].ok

    async def inside_loop():
        return harvest_servers(servers)

    assert asyncio.run(inside_loop()).servers[0].ok


def test_empty_config():
    result = harvest_servers([])
    assert result.tools == [] and result.servers == []
