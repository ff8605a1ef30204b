"""The OpenAI-compatible server over a ChatBackend: wire shape, extensions, faults, fan-in."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import aiohttp
import httpx
import pytest

from kimi_pipeline.llm.base import ChatRequest, ChatResponse
from kimi_pipeline.llm.offline import OfflineBackend, offline_role
from kimi_pipeline.llm.server import (
    HANG_TRIGGER,
    MALFORMED_ARGUMENTS,
    MALFORMED_TRIGGER,
    EchoBackend,
    ServerThread,
    create_app,
    to_chat_request,
)
from kimi_pipeline.records import ToolCall

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


class RecordingBackend(EchoBackend):
    """Echo, remembering the ChatRequest the server built."""

    def __init__(self):
        self.seen: list[ChatRequest] = []

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        self.seen.append(request)
        return await super().acomplete(request)


@offline_role("test_server.context_echo")
def _context_echo(request: ChatRequest) -> str:
    return f"answer={request.context.get('answer')}"


@pytest.fixture(scope="module")
def recording():
    backend = RecordingBackend()
    with ServerThread(create_app(backend, "echo-model", triggers=True)) as server:
        yield server, backend


def _post(server: ServerThread, body, timeout: float = 5.0) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=timeout)


def test_text_reply_has_the_openai_shape(recording):
    server, _ = recording
    reply = _post(server, {"model": "x", "messages": [{"role": "user", "content": "hello there"}]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "chat.completion" and body["model"] == "echo-model"
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "hello there"}
    assert choice["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_tool_call_arguments_are_a_json_string(recording):
    server, _ = recording
    body = _post(server, {"messages": [{"role": "user", "content": "weather"}],
                          "tools": TOOLS}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "search"
    assert json.loads(call["function"]["arguments"]) == {"query": "weather"}


def test_request_fields_and_extensions_reach_the_backend(recording):
    server, backend = recording
    _post(server, {
        "messages": [{"role": "user", "content": "q"}], "temperature": 0.3, "max_tokens": 7,
        "seed": 11, "response_format": {"type": "json_object"},
        "kimi_role": "judge", "kimi_context": {"rubric": [1, 2]},
    })
    seen = backend.seen[-1]
    assert (seen.role, seen.context, seen.response_format) == ("judge", {"rubric": [1, 2]}, "json")
    assert (seen.temperature, seen.max_tokens, seen.seed) == (0.3, 7, 11)
    _post(server, {"messages": [{"role": "user", "content": "q"}]})
    assert backend.seen[-1].role == "agent" and backend.seen[-1].context == {}


def test_bad_requests_get_400(recording):
    server, _ = recording
    raw = httpx.post(f"{server.base_url}/chat/completions", content=b"{not json", timeout=5)
    assert raw.status_code == 400 and "bad request" in raw.json()["error"]["message"]
    assert _post(server, {"messages": "not a list"}).status_code == 400
    assert _post(server, [1, 2]).status_code == 400
    assert _post(server, {"messages": ["hi"]}).status_code == 400
    assert _post(server, {"messages": [], "kimi_context": [1]}).status_code == 400


def test_models_health_and_stats(recording):
    server, _ = recording
    root = server.base_url.removesuffix("/v1")
    assert httpx.get(f"{server.base_url}/models").json()["data"][0]["id"] == "echo-model"
    assert httpx.get(f"{root}/health").json()["status"] == "ok"
    assert httpx.get(f"{root}/stats").json()["requests"] >= 1


def test_injected_failures_then_recovery(recording):
    server, _ = recording
    faults = server.app.state.faults
    faults.fail_first, faults.fail_status, faults.retry_after_s = 2, 429, 0.25
    try:
        first = _post(server, {"messages": [{"role": "user", "content": "x"}]})
        assert first.status_code == 429 and first.headers["retry-after"] == "0.25"
        assert _post(server, {"messages": [{"role": "user", "content": "x"}]}).status_code == 429
        assert _post(server, {"messages": [{"role": "user", "content": "x"}]}).status_code == 200
    finally:
        faults.fail_first, faults.fail_status, faults.retry_after_s = 0, 503, None


def test_malformed_trigger_breaks_the_tool_call_json(recording):
    server, _ = recording
    body = _post(server, {"messages": [{"role": "user", "content": MALFORMED_TRIGGER}],
                          "tools": TOOLS}).json()
    arguments = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    assert arguments == MALFORMED_ARGUMENTS
    with pytest.raises(ValueError):
        json.loads(arguments)


def test_hang_trigger_hangs_until_the_client_gives_up(recording):
    server, _ = recording
    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        _post(server, {"messages": [{"role": "user", "content": HANG_TRIGGER}]}, timeout=0.3)
    assert time.perf_counter() - start < 2
    deadline = time.monotonic() + 2  # the handler notices the disconnect and ends
    while server.app.state.stats.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.app.state.stats.in_flight == 0


def test_backend_errors_are_500_and_not_retryable():
    app = create_app(OfflineBackend(), "offline")
    with ServerThread(app) as server:
        reply = _post(server, {"messages": [{"role": "user", "content": "x"}], "kimi_role": "nope"})
    assert reply.status_code == 500
    assert reply.headers["x-should-retry"] == "false"
    assert "no program for role 'nope'" in reply.json()["error"]["message"]


def test_serves_offline_programs_with_context():
    with ServerThread(create_app(OfflineBackend(), "offline")) as server:
        body = _post(server, {"messages": [{"role": "user", "content": "x"}],
                              "kimi_role": "test_server.context_echo",
                              "kimi_context": {"answer": 42}}).json()
    assert body["choices"][0]["message"]["content"] == "answer=42"


def test_to_chat_request_accepts_max_completion_tokens():
    request = to_chat_request({"messages": [], "max_completion_tokens": 5,
                               "response_format": "text"})
    assert request.max_tokens == 5 and request.response_format == "text"


def test_malformed_tool_call_survives_a_raw_toolcall_from_the_backend():
    class Raw(EchoBackend):
        async def acomplete(self, request):
            call = ToolCall(id="c", name="f", raw_arguments="{oops")
            return ChatResponse(content=None, tool_calls=[call])

    with ServerThread(create_app(Raw(), "m")) as server:
        body = _post(server, {"messages": [{"role": "user", "content": "x"}]}).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == "{oops"


class Gate(EchoBackend):
    """Holds every request until ``n`` are waiting at once (or 30 s pass), then answers all."""

    def __init__(self, n: int):
        self.n, self.waiting, self.full = n, 0, None

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        self.full = self.full or asyncio.Event()  # created on the server's loop
        self.waiting += 1
        if self.waiting >= self.n:
            self.full.set()
        try:
            await asyncio.wait_for(self.full.wait(), 30)
        except asyncio.TimeoutError:
            pass
        return await super().acomplete(request)


def test_a_thousand_concurrent_connections():
    app = create_app(Gate(1000), "echo")
    with ServerThread(app) as server:

        async def fan_in() -> list[int]:
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:

                async def one(i: int) -> int:
                    body = {"messages": [{"role": "user", "content": f"m{i}"}]}
                    async with session.post(f"{server.base_url}/chat/completions", json=body) as r:
                        await r.read()
                        return r.status

                return await asyncio.gather(*(one(i) for i in range(1000)))

        statuses = asyncio.run(fan_in())
    assert statuses == [200] * 1000
    assert app.state.stats.max_in_flight == 1000  # all held open together on one worker


def test_command_line_serves_the_offline_backend():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "kimi_pipeline.llm.server", "--backend", "offline",
               "--port", str(port), "--latency-ms", "10"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert health == {"status": "ok", "model": "offline", "backend": "offline"}
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
        assert models["data"][0]["id"] == "offline"
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()
