"""Harvest tool definitions from MCP servers over stdio.

Each configured server is started as a subprocess, initialised with the MCP SDK's
``ClientSession`` and asked for ``tools/list`` page by page, following ``nextCursor``.
All servers run concurrently (bounded) in one event loop. A server that cannot start,
crashes, hangs or answers garbage yields a failed ``ServerReport`` with a precise reason
instead of an exception, so one bad server never costs the others their tools.

The stdio transport is a thin one of our own rather than the SDK's ``stdio_client``: it
keeps the process handle (exit code for the error, pid for the orphan check), kills the
whole process group at once on failure instead of after the SDK's grace periods, and
captures stderr to a temp file. ``tools/list`` pages are read raw through the SDK's
``JSONRPCDispatcher``: the SDK's typed ``list_tools`` rejects a whole page when a single
tool is malformed, whereas here each tool is passed on verbatim for the normaliser to
repair or quarantine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import IO, Any

import anyio
import mcp_types as types
from anyio.abc import Process
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client.session import ClientSession
from mcp.client.stdio import get_default_environment
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from mcp.shared.message import SessionMessage
from mcp_types.jsonrpc import CONNECTION_CLOSED
from pydantic import ValidationError

from kimi_pipeline.tools.config import McpServerConfig

MAX_CONCURRENCY = 8
_EXIT_GRACE_S = 1.0  # a server that closed stdout (or finished cleanly) gets this long to exit
_REAP_S = 2.0  # bound on reaping the process after the kill
_MAX_LINE_BYTES = 32 * 2**20  # a stdout "line" longer than this is garbage, not a message
_NOTE_CHARS = 300  # longest stderr / stdout excerpt quoted in an error


@dataclass
class HarvestedTool:
    """One tool exactly as its server listed it (a JSON object from ``tools/list``)."""

    server: str
    raw: dict[str, Any]


@dataclass
class ServerReport:
    """How harvesting one server went.

    ``ok`` is False when the listing is incomplete (``error`` says why); tools listed before
    the failure are still returned. ``warnings`` note harmless oddities (pagination guard
    reached, non-object tool entries skipped, stray stdout lines).
    """

    name: str
    command: list[str]
    ok: bool
    tools: int
    pages: int
    seconds: float
    error: str | None = None
    server_info: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class HarvestResult:
    tools: list[HarvestedTool]
    servers: list[ServerReport]


class _StartError(Exception):
    """The server process could not be started at all."""


class _ProtocolError(Exception):
    """The server answered with something that is not a valid result."""


@dataclass
class _Connection:
    """A running server process and the SDK-side streams bridged to its pipes."""

    process: Process
    read: MemoryObjectReceiveStream[SessionMessage | Exception]
    write: MemoryObjectSendStream[SessionMessage]
    garbage: list[str] = field(default_factory=list)
    stdout_eof: bool = False
    graceful: bool = False
    killed: bool = False


@dataclass
class _Listing:
    """What one conversation got before it ended, possibly early."""

    phase: str = "start"
    raw_tools: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    server_info: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    connection_closed: bool = False


# ------------------------------------------------------------------------------- public entry


def harvest_servers(
    servers: list[McpServerConfig], *, max_concurrency: int = MAX_CONCURRENCY
) -> HarvestResult:
    """Harvest every server's tools concurrently; never raises for a misbehaving server."""
    if not servers:
        return HarvestResult(tools=[], servers=[])
    work = _harvest_all(servers, max_concurrency)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    # Called from inside a running loop (a notebook, an async node): use a loop of our own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


async def _harvest_all(servers: list[McpServerConfig], limit: int) -> HarvestResult:
    gate = asyncio.Semaphore(max(1, limit))

    async def bounded(config: McpServerConfig) -> tuple[list[HarvestedTool], ServerReport]:
        async with gate:
            return await _harvest_one(config)

    outcomes = await asyncio.gather(*(bounded(config) for config in servers))
    return HarvestResult(
        tools=[tool for tools, _ in outcomes for tool in tools],
        servers=[report for _, report in outcomes],
    )


# --------------------------------------------------------------------------------- one server


async def _harvest_one(config: McpServerConfig) -> tuple[list[HarvestedTool], ServerReport]:
    started = time.monotonic()
    listing = _Listing()
    with tempfile.TemporaryFile() as stderr_file:
        try:
            env = get_default_environment() | config.env
            argv = _resolve_command(config.command, env)
            async with _connect(argv, env, stderr_file) as conn:
                await _converse(conn, config, listing, started)
            if listing.error is not None:
                listing.error = _explain(listing, conn, _last_line(stderr_file))
        except _StartError as exc:
            listing.error = str(exc)
        except Exception as exc:  # noqa: BLE001 -- a harvest must never take the pipeline down
            listing.error = f"unexpected {type(exc).__name__} during {listing.phase}: {exc}"
    tools = [HarvestedTool(server=config.name, raw=raw) for raw in listing.raw_tools]
    report = ServerReport(
        name=config.name,
        command=list(config.command),
        ok=listing.error is None,
        tools=len(tools),
        pages=listing.pages,
        seconds=round(time.monotonic() - started, 3),
        error=listing.error,
        server_info=listing.server_info,
        warnings=listing.warnings,
    )
    return tools, report


def _resolve_command(command: list[str], env: dict[str, str]) -> list[str]:
    if not command:
        raise _StartError("empty command")
    head = sys.executable if command[0] == "python" else command[0]
    found = shutil.which(head, path=env.get("PATH"))
    if found is None:
        raise _StartError(f"executable not found: {command[0]}")
    return [found, *command[1:]]


async def _converse(
    conn: _Connection, config: McpServerConfig, listing: _Listing, started: float
) -> None:
    """Initialise and list tools; every failure is recorded in ``listing``, none raised."""
    dispatcher = JSONRPCDispatcher(conn.read, conn.write)
    async with ClientSession(dispatcher=dispatcher) as session:
        try:
            listing.phase = "initialize"
            left = config.startup_timeout_s - (time.monotonic() - started)
            with anyio.fail_after(max(left, 0.001)):
                init = await session.initialize()
            info = init.server_info
            listing.server_info = f"{info.name} {info.version}".strip()
            if init.capabilities.tools is None:
                listing.warnings.append("server does not advertise the tools capability")
            else:
                await _list_tools(dispatcher, config, listing)
            conn.graceful = True
        except TimeoutError:
            limit = (
                config.startup_timeout_s if listing.phase == "initialize" else config.call_timeout_s
            )
            listing.error = f"timed out after {limit} s during {listing.phase}"
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED and conn.stdout_eof:
                listing.connection_closed = True
                listing.error = f"connection closed during {listing.phase}"
            else:
                listing.error = (
                    f"server answered error {exc.code} to {listing.phase}: {exc.message}"
                )
        except (ValidationError, _ProtocolError) as exc:
            listing.error = f"invalid {listing.phase} result: {_first_problem(exc)}"
        except RuntimeError as exc:  # e.g. the SDK refusing the negotiated protocol version
            listing.error = f"{listing.phase} failed: {exc}"


async def _list_tools(
    dispatcher: JSONRPCDispatcher[Any], config: McpServerConfig, listing: _Listing
) -> None:
    cursor: str | None = None
    while True:
        listing.phase = f"tools/list page {listing.pages + 1}"
        with anyio.fail_after(config.call_timeout_s):
            page = await dispatcher.send_raw_request(
                "tools/list", {"cursor": cursor} if cursor else None
            )
        cursor = _take_page(page, listing)
        listing.pages += 1
        if not cursor:
            return
        if listing.pages >= config.max_pages:
            listing.warnings.append(
                f"stopped at max_pages={config.max_pages}; the server offered more"
            )
            return


def _take_page(page: Any, listing: _Listing) -> str | None:
    """Append the page's tool objects to ``listing``; return its next cursor."""
    tools = page.get("tools") if isinstance(page, dict) else None
    if not isinstance(tools, list):
        raise _ProtocolError("'tools' is missing or not a list")
    cursor = page.get("nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise _ProtocolError(f"'nextCursor' is not a string: {cursor!r}"[:_NOTE_CHARS])
    skipped = [item for item in tools if not isinstance(item, dict)]
    listing.raw_tools.extend(item for item in tools if isinstance(item, dict))
    if skipped:
        listing.warnings.append(
            f"{listing.phase}: skipped {len(skipped)} entries that are not JSON objects"
        )
    return cursor


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "<result>"
        return f"{where}: {err['msg']} ({exc.error_count()} problems)"
    return str(exc)


def _explain(listing: _Listing, conn: _Connection, stderr_line: str | None) -> str:
    """The error as the user needs it: exit code, last stderr line, stray stdout."""
    rc = conn.process.returncode
    if listing.connection_closed and rc is not None and not conn.killed:
        message = f"process exited with code {rc} during {listing.phase}"
        message += f": {stderr_line}" if stderr_line else " (no stderr output)"
    else:
        message = listing.error or ""
        message += f"; last stderr line: {stderr_line}" if stderr_line else ""
    if conn.garbage:
        message += f"; non-JSON-RPC output on stdout: {conn.garbage[0]!r}"
    return message


def _last_line(stderr_file: IO[bytes]) -> str | None:
    stderr_file.seek(0, os.SEEK_END)
    stderr_file.seek(max(0, stderr_file.tell() - 8192))
    lines = [ln.strip() for ln in stderr_file.read().decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    return lines[-1][:_NOTE_CHARS] if lines else None


# ---------------------------------------------------------------------------------- transport


@asynccontextmanager
async def _connect(
    argv: list[str], env: dict[str, str], stderr_file: IO[bytes]
) -> AsyncIterator[_Connection]:
    """Start the server in its own process group, bridge its pipes, and always stop it."""
    try:
        process = await anyio.open_process(
            argv, env=env, stderr=stderr_file, start_new_session=True
        )
    except OSError as exc:
        raise _StartError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    to_session, read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    conn = _Connection(process=process, read=read, write=write)
    async with anyio.create_task_group() as pumps:
        pumps.start_soon(_pump_stdout, conn, to_session)
        pumps.start_soon(_pump_stdin, conn, from_session)
        try:
            yield conn
        finally:
            # The session is gone: unblock the stdout pump so it drains while the server exits.
            conn.read.close()
            with anyio.CancelScope(shield=True):
                await _stop(conn)
            pumps.cancel_scope.cancel()


async def _pump_stdout(
    conn: _Connection, to_session: MemoryObjectSendStream[SessionMessage | Exception]
) -> None:
    """Server stdout → session, one JSON-RPC message per line; other lines are noted and skipped."""
    assert conn.process.stdout is not None
    buffer = b""
    with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        async with to_session:
            async for chunk in conn.process.stdout:
                *lines, buffer = (buffer + chunk).split(b"\n")
                if len(buffer) > _MAX_LINE_BYTES:
                    lines, buffer = [buffer[:_NOTE_CHARS]], b""
                for line in lines:
                    if (message := _parse_line(line, conn)) is not None:
                        with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                            await to_session.send(message)
            conn.stdout_eof = True


def _parse_line(line: bytes, conn: _Connection) -> SessionMessage | None:
    text = line.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError:  # pydantic's ValidationError included
        if len(conn.garbage) < 5:
            conn.garbage.append(text[:_NOTE_CHARS])
        return None


async def _pump_stdin(
    conn: _Connection, from_session: MemoryObjectReceiveStream[SessionMessage]
) -> None:
    """Session → server stdin, newline-delimited JSON (as the SDK's stdio transport writes it)."""
    assert conn.process.stdin is not None
    with suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        async with from_session:
            async for message in from_session:
                data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                await conn.process.stdin.send(data.encode("utf-8"))


async def _stop(conn: _Connection) -> None:
    """Close stdin, give an exiting server a moment, then kill its whole process group."""
    process = conn.process
    assert process.stdin is not None
    with suppress(Exception):
        await process.stdin.aclose()
    if conn.graceful or conn.stdout_eof:
        with anyio.move_on_after(_EXIT_GRACE_S):
            await process.wait()
    if process.returncode is None:
        conn.killed = True
        # The whole group, children included (start_new_session made pgid == pid); only while
        # the leader is unreaped, so the pid cannot have been reused by another process.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    with anyio.move_on_after(_REAP_S):
        await process.aclose()
