"""The openai backend against a real local HTTP server (kimi_pipeline.llm.server)."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from kimi_pipeline.llm.base import (
    backend_config,
    ChatRequest,
    complete_many,
    make_backend,
    OpenAIBackendConfig,
)
from kimi_pipeline.llm.offline import OfflineBackend, offline_role
from kimi_pipeline.llm.openai_backend import (
    OpenAIBackend,
    cache_key,
    parse_tool_calls,
    request_payload,
)
from kimi_pipeline.llm.server import (
    HANG_TRIGGER,
    MALFORMED_ARGUMENTS,
    MALFORMED_TRIGGER,
    EchoBackend,
    Faults,
    ServerThread,
    create_app,
)

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


@offline_role("test_openai.context_echo")
def _context_echo(request: ChatRequest) -> str:
    return f"answer={request.context.get('answer')}"


@pytest.fixture(scope="module")
def running():
    with ServerThread(create_app(EchoBackend(), "echo", triggers=True)) as server:
        yield server


@pytest.fixture
def server(running):
    """The shared server with its faults and counters reset for this test."""
    vars(running.app.state.faults).update(vars(Faults(triggers=True)))
    running.app.state.stats.reset()
    return running


def _backend(url: str, cache_dir=None, **overrides) -> OpenAIBackend:
    fields = dict(kind="openai", model="echo", base_url=url, cache_dir=cache_dir,
                  max_retries=3, timeout_s=5.0, max_concurrency=8) | overrides
    return OpenAIBackend(backend_config(fields), backoff_s=0.01, backoff_max_s=0.05)


def _ask(text: str, **fields) -> ChatRequest:
    return ChatRequest(role="agent", messages=[{"role": "user", "content": text}], **fields)


def _dead_url() -> str:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_registry_builds_it():
    assert isinstance(make_backend({"kind": "openai", "cache_dir": None}), OpenAIBackend)


def test_plain_text_reply_and_token_accounting(server):
    backend = _backend(server.base_url)
    replies = complete_many(backend, [_ask("one two three"), _ask("four five")])
    assert [r.content for r in replies] == ["one two three", "four five"]
    assert all(r.error is None and not r.cached and r.backend == "openai" for r in replies)
    assert (replies[0].usage.prompt_tokens, replies[0].usage.completion_tokens) == (3, 3)
    assert replies[0].meta == {"finish_reason": "stop", "retries": 0}
    stats = backend.stats
    assert (stats.requests, stats.prompt_tokens, stats.completion_tokens) == (2, 5, 5)
    assert stats.failures == stats.retries == stats.cached == 0


def test_tool_calls_round_trip(server):
    reply = _backend(server.base_url).complete(_ask("weather in Paris", tools=TOOLS))
    assert reply.content is None and reply.meta["finish_reason"] == "tool_calls"
    [call] = reply.tool_calls
    assert call.name == "search" and call.arguments == {"query": "weather in Paris"}
    assert call.id.startswith("call_") and call.raw_arguments is None


@pytest.mark.parametrize("status", [503, 429, 500])
def test_retries_then_success(server, status):
    vars(server.app.state.faults).update(fail_first=2, fail_status=status)
    backend = _backend(server.base_url)
    reply = backend.complete(_ask("hi"))
    assert reply.error is None and reply.content == "hi"
    assert reply.meta["retries"] == 2 and backend.stats.retries == 2
    assert server.app.state.stats.requests == 3


def test_retry_after_is_honoured(server):
    vars(server.app.state.faults).update(fail_first=2, fail_status=429, retry_after_s=0.15)
    start = time.perf_counter()
    reply = _backend(server.base_url).complete(_ask("hi"))
    assert reply.error is None and time.perf_counter() - start >= 0.3


def test_gives_up_after_max_retries(server):
    vars(server.app.state.faults).update(fail_first=100, fail_status=503)
    backend = _backend(server.base_url, max_retries=2)
    reply = backend.complete(_ask("hi"))
    assert reply.content is None and reply.error.startswith("HTTP 503")
    assert reply.meta["retries"] == 2 and server.app.state.stats.requests == 3
    assert (backend.stats.failures, backend.stats.retries) == (1, 2)


def test_client_errors_are_not_retried(server):
    vars(server.app.state.faults).update(fail_first=5, fail_status=400)
    reply = _backend(server.base_url).complete(_ask("hi"))
    assert reply.error.startswith("HTTP 400") and server.app.state.stats.requests == 1


def test_backend_errors_are_not_retried():
    with ServerThread(create_app(OfflineBackend(), "offline")) as server:
        backend = _backend(server.base_url, send_context=True)
        reply = backend.complete(ChatRequest(role="no-such-role", messages=[]))
        assert reply.error.startswith("HTTP 500") and "no program" in reply.error
        assert server.app.state.stats.requests == 1 and backend.stats.retries == 0


def test_timeout_becomes_an_error_reply(server):
    backend = _backend(server.base_url, timeout_s=0.2, max_retries=1)
    start = time.perf_counter()
    reply = backend.complete(_ask(f"please {HANG_TRIGGER}"))
    assert reply.content is None and reply.error.startswith("timeout")
    assert reply.meta["retries"] == 1 and server.app.state.stats.requests == 2
    assert 0.4 <= time.perf_counter() - start < 2


def test_unreachable_endpoint_becomes_an_error_reply():
    reply = _backend(_dead_url(), max_retries=1).complete(_ask("hi"))
    assert reply.content is None and "Connect" in reply.error and reply.meta["retries"] == 1


def test_malformed_tool_call_json_is_kept_raw(server):
    reply = _backend(server.base_url).complete(_ask(MALFORMED_TRIGGER, tools=TOOLS))
    assert reply.error is None
    [call] = reply.tool_calls
    assert call.name == "search" and call.arguments == {}
    assert call.raw_arguments == MALFORMED_ARGUMENTS


def test_parse_tool_calls_edge_cases():
    calls = parse_tool_calls([
        {"id": "a", "function": {"name": "f", "arguments": "[1, 2]"}},  # JSON, not an object
        {"function": {"name": "g", "arguments": {"x": 1}}},  # object instead of a string
        {"id": "c", "function": {"name": "h", "arguments": ""}},
    ])
    assert calls[0].raw_arguments == "[1, 2]" and calls[0].arguments == {}
    assert calls[1].id == "call_1" and calls[1].arguments == {"x": 1}
    assert calls[2].arguments == {} and calls[2].raw_arguments is None


def test_cache_hit_does_not_touch_the_network(server, tmp_path):
    online = _backend(server.base_url, cache_dir=str(tmp_path))
    first = online.complete(_ask("remember me", tools=TOOLS))
    assert not first.cached and server.app.state.stats.requests == 1
    offline = _backend(_dead_url(), cache_dir=str(tmp_path), max_retries=0)  # nothing listens
    again = offline.complete(_ask("remember me", tools=TOOLS))
    assert again.cached and again.error is None
    assert again.tool_calls == first.tool_calls and again.usage == first.usage
    assert offline._session is None  # never even opened a connection
    assert (offline.stats.cached, offline.stats.prompt_tokens) == (1, 0)
    assert offline.complete(_ask("never asked")).error is not None  # a miss does go out
    assert len(list(tmp_path.rglob("*.json"))) == 1 and not list(tmp_path.rglob("*.tmp"))


def test_cache_key_covers_the_request_content():
    config = OpenAIBackendConfig(cache_dir=None)
    key = lambda request, cfg=config: cache_key(request_payload(cfg, request))  # noqa: E731
    assert key(_ask("a")) == key(_ask("a"))
    assert len({key(_ask("a")), key(_ask("b")), key(_ask("a", tools=TOOLS)),
                key(_ask("a", temperature=0.0)), key(_ask("a", response_format="json"))}) == 5
    with_context = config.model_copy(update={"send_context": True})
    plain, ctx = _ask("a"), _ask("a", context={"k": 1})
    assert key(plain) == key(ctx)  # context is not sent, so it does not change the reply
    assert key(plain, with_context) != key(ctx, with_context)


def test_corrupt_cache_entry_is_a_miss(server, tmp_path):
    backend = _backend(server.base_url, cache_dir=str(tmp_path))
    backend.complete(_ask("x"))
    [entry] = tmp_path.rglob("*.json")
    entry.write_text('{"choices": []}')
    reply = backend.complete(_ask("x"))
    assert not reply.cached and reply.content == "x"


def test_in_flight_is_bounded(server):
    server.app.state.faults.latency_s = 0.05
    backend = _backend(server.base_url, max_concurrency=4)
    replies = complete_many(backend, [_ask(f"q{i}") for i in range(24)])
    assert all(r.error is None for r in replies)
    assert server.app.state.stats.max_in_flight == 4 == backend.stats.max_in_flight


def test_complete_many_across_event_loops_closes_each_session(server):
    backend = _backend(server.base_url)
    for round_ in range(3):
        replies = complete_many(backend, [_ask(f"r{round_}-{i}") for i in range(5)])
        assert [r.content for r in replies] == [f"r{round_}-{i}" for i in range(5)]
        assert backend._session.closed  # asyncio.run finalised it with its loop
    assert backend.stats.requests == 15


def test_aclose(server):
    backend = _backend(server.base_url)

    async def use_then_close():
        await backend.acomplete(_ask("x"))
        session = backend._session
        await backend.aclose()
        return session

    assert asyncio.run(use_then_close()).closed and backend._session is None


def test_send_context_reaches_offline_programs(tmp_path):
    with ServerThread(create_app(OfflineBackend(), "offline")) as server:
        request = ChatRequest(role="test_openai.context_echo",
                              messages=[{"role": "user", "content": "?"}], context={"answer": 42})
        sent = _backend(server.base_url, send_context=True).complete(request)
        assert sent.content == "answer=42"
        not_sent = _backend(server.base_url).complete(request)
        assert not_sent.content != "answer=42"  # neither role nor context was sent


@pytest.mark.parametrize("body, expected", [
    (b'{"id": "x", "object": "chat.completion"}', "malformed completion"),
    (b"<html>gateway</html>", "JSONDecodeError"),
    (b'{"choices": [{"message": null}]}', "malformed completion"),
])
def test_malformed_completion_bodies_become_error_replies(body, expected):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def reply(_):
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/chat/completions", reply, methods=["POST"])])
    with ServerThread(app) as server:
        backend = _backend(server.base_url)
        answer = backend.complete(_ask("x"))
    assert answer.content is None and expected in answer.error
    assert backend.stats.failures == 1


def test_unserialisable_context_is_an_error_reply(server):
    backend = _backend(server.base_url, send_context=True)
    reply = backend.complete(_ask("x", context={"when": object()}))
    assert "not JSON-serialisable" in reply.error and server.app.state.stats.requests == 0
