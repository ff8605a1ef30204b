"""A small OpenAI-compatible chat-completions server over any ``ChatBackend``.

It lets the ``openai`` backend be tested against a real HTTP endpoint, lets users serve their
own checkpoints (any backend in the registry, e.g. ``hf``) to tools that speak the OpenAI API,
and serves the offline programs over HTTP. Two extension fields carry what the offline programs
need: ``kimi_role`` (default ``"agent"``) and ``kimi_context``.

For tests and benchmarks it injects faults: artificial latency (non-blocking), the first N
requests failing with a chosen status, and — when ``triggers`` is on — a marker in a message
that makes the reply carry malformed tool-call arguments, or makes the request hang.

Serving is one async Starlette app on uvicorn (uvloop + httptools when installed): one task per
connection, no thread per request, so thousands of concurrent connections are cheap.

    python -m kimi_pipeline.llm.server --backend offline --port 8000 [--latency-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, Usage
from kimi_pipeline.records import ToolCall

MALFORMED_TRIGGER = "[[kimi:malformed-tool-args]]"
HANG_TRIGGER = "[[kimi:hang]]"
MALFORMED_ARGUMENTS = '{"query": "unterminated'


@dataclass
class Faults:
    """Fault injection; mutable while the server runs (tests adjust it between cases)."""

    latency_s: float = 0.0
    fail_first: int = 0  # the next N requests fail with fail_status
    fail_status: int = 503
    retry_after_s: float | None = None  # sent as Retry-After with injected failures
    triggers: bool = False  # honour MALFORMED_TRIGGER / HANG_TRIGGER in message text
    hang_max_s: float = 600.0  # a hung request gives up after this long (or on disconnect)


@dataclass
class ServerStats:
    requests: int = 0
    injected_failures: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def reset(self) -> None:
        self.requests = self.injected_failures = self.max_in_flight = 0


class EchoBackend:
    """Replies with the last user message; with tools offered, calls the first one with it.

    A loopback for smoke tests and benchmarks: it measures the serving path, not a model.
    """

    name = "echo"

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        texts = [str(m.get("content") or "") for m in request.messages]
        users = [t for m, t in zip(request.messages, texts) if m.get("role") == "user"]
        text = users[-1] if users else ""
        usage = Usage(prompt_tokens=sum(len(t.split()) for t in texts),
                      completion_tokens=len(text.split()))
        if request.tools:
            tool = request.tools[0].get("function", request.tools[0])
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            call = ToolCall(id=call_id, name=tool["name"], arguments={"query": text})
            return ChatResponse(content=None, tool_calls=[call], usage=usage, backend=self.name)
        return ChatResponse(content=text, usage=usage, backend=self.name)


def _error(status: int, message: str, kind: str,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def to_chat_request(body: dict[str, Any]) -> ChatRequest:
    """OpenAI request body (plus the ``kimi_*`` extensions) → ``ChatRequest``."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise ValueError("the body must be an object with a 'messages' list")
    if not all(isinstance(m, dict) for m in body["messages"]):
        raise ValueError("every message must be an object")
    if not isinstance(body.get("kimi_context") or {}, dict):
        raise ValueError("'kimi_context' must be an object")
    response_format = body.get("response_format")
    kind = response_format.get("type", "text") if isinstance(response_format, dict) else "text"
    return ChatRequest(
        role=body.get("kimi_role") or "agent",
        messages=body["messages"],
        tools=body.get("tools") or None,
        response_format="text" if kind == "text" else "json",
        context=body.get("kimi_context") or {},
        temperature=body.get("temperature"),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        seed=body.get("seed"),
    )


def _wire_tool_call(call: ToolCall) -> dict[str, Any]:
    arguments = call.raw_arguments if call.raw_arguments is not None else json.dumps(call.arguments)
    function = {"name": call.name, "arguments": arguments}
    return {"id": call.id, "type": "function", "function": function}


def to_completion(reply: ChatResponse, model_name: str) -> dict[str, Any]:
    """``ChatResponse`` → the OpenAI ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.tool_calls:
        message["tool_calls"] = [_wire_tool_call(c) for c in reply.tool_calls]
    finish = reply.meta.get("finish_reason") or ("tool_calls" if reply.tool_calls else "stop")
    prompt, completion = reply.usage.prompt_tokens, reply.usage.completion_tokens
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion},
    }


def _has_marker(request: ChatRequest, marker: str) -> bool:
    return any(marker in str(m.get("content") or "") for m in request.messages)


def _malform(reply: ChatResponse, request: ChatRequest) -> ChatResponse:
    """Make the reply a tool call whose arguments are not valid JSON."""
    tools = request.tools or [{"function": {"name": "unknown_tool"}}]
    name = tools[0].get("function", tools[0])["name"]
    reply.content = None
    reply.tool_calls = [ToolCall(id="call_malformed", name=name, raw_arguments=MALFORMED_ARGUMENTS)]
    return reply


async def _hang(http_request: Request, faults: Faults) -> None:
    """Wait until the client gives up (disconnects) or ``hang_max_s`` passes."""
    deadline = time.monotonic() + faults.hang_max_s
    while time.monotonic() < deadline and not await http_request.is_disconnected():
        await asyncio.sleep(0.02)


async def _answer(http_request: Request, backend: ChatBackend, model_name: str, faults: Faults,
                  stats: ServerStats) -> JSONResponse:
    if faults.fail_first > 0:
        faults.fail_first -= 1
        stats.injected_failures += 1
        headers = {"retry-after": f"{faults.retry_after_s:g}"} if faults.retry_after_s else None
        return _error(faults.fail_status, "injected failure", "injected_fault", headers)
    try:
        request = to_chat_request(await http_request.json())
    except ValueError as exc:  # also json.JSONDecodeError
        return _error(400, f"bad request: {exc}", "invalid_request_error")
    if faults.latency_s:
        await asyncio.sleep(faults.latency_s)
    if faults.triggers and _has_marker(request, HANG_TRIGGER):
        await _hang(http_request, faults)
        return _error(504, "hung request gave up", "injected_fault")
    try:
        reply = await backend.acomplete(request)
    except Exception as exc:  # backends should not raise; if one does, answer like a server
        return _error(500, f"{type(exc).__name__}: {exc}", "backend_exception")
    if reply.error:
        # the backend's verdict is final (ChatResponse contract): tell clients not to retry
        return _error(500, reply.error, "backend_error", {"x-should-retry": "false"})
    if faults.triggers and _has_marker(request, MALFORMED_TRIGGER):
        reply = _malform(reply, request)
    return JSONResponse(to_completion(reply, model_name))


def create_app(
    backend: ChatBackend,
    model_name: str,
    latency_s: float = 0.0,
    fail_first: int = 0,
    fail_status: int = 503,
    retry_after_s: float | None = None,
    triggers: bool = False,
) -> Starlette:
    """The ASGI app; ``app.state.faults`` and ``app.state.stats`` are live and mutable."""
    faults = Faults(latency_s, fail_first, fail_status, retry_after_s, triggers)
    stats = ServerStats()

    async def chat_completions(http_request: Request) -> JSONResponse:
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await _answer(http_request, backend, model_name, faults, stats)
        finally:
            stats.in_flight -= 1

    async def models(_: Request) -> JSONResponse:
        model = {"id": model_name, "object": "model", "created": 0, "owned_by": "kimi-pipeline"}
        return JSONResponse({"object": "list", "data": [model]})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "model": model_name, "backend": backend.name})

    async def server_stats(_: Request) -> JSONResponse:
        return JSONResponse(asdict(stats))

    app = Starlette(routes=[
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/stats", server_stats, methods=["GET"]),
    ])
    app.state.faults = faults
    app.state.stats = stats
    return app


class ServerThread:
    """Run an app with uvicorn in a background thread on a free localhost port."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1,
                                backlog=4096)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]},
                                        daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self, wait_s: float = 10.0) -> "ServerThread":
        self._thread.start()
        deadline = time.monotonic() + wait_s
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the chat server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


def _backend(kind: str, model: str) -> ChatBackend:
    if kind == "echo":
        return EchoBackend()
    from kimi_pipeline.llm.base import make_backend

    return make_backend({"kind": kind, "model": model})


def main(argv: list[str] | None = None) -> None:
    import importlib

    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="offline",
                        help="'echo' or a registered backend kind (offline, hf, …)")
    parser.add_argument("--model", default=None, help="model name (and checkpoint for hf)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument("--fail-first", type=int, default=0, help="fail the first N requests")
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--fault-triggers", action="store_true",
                        help=f"honour {MALFORMED_TRIGGER} and {HANG_TRIGGER} in messages")
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        help="module to import first (registers offline programs or backends)")
    args = parser.parse_args(argv)
    for module in args.imports:
        importlib.import_module(module)
    model = args.model or args.backend
    app = create_app(_backend(args.backend, model), model, latency_s=args.latency_ms / 1000,
                     fail_first=args.fail_first, fail_status=args.fail_status,
                     triggers=args.fault_triggers)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
