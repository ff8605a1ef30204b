"""The hf backend on tiny local models: micro-batching, left padding, stopping, parsing, seeds."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.llm.base import (
    backend_config,
    ChatRequest,
    complete_many,
    HFBackendConfig,
    make_backend,
)
from kimi_pipeline.llm.hf_backend import HFBackend, prepare_messages
from tests.training import TOOLS, conversation

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/llm/conftest.py

NAMES = ["Zoë", "Ana", "Björn", "李雷", "Omar", "Élodie"]
CALL = {"name": "search_orders", "arguments": {"customer": "Ana"}}
FORCED = f"<|tool_call|>{json.dumps(CALL)}<|/tool_call|>"  # then <|end|>


def tiny_model(tokenizer, seed: int = 0, init: float = 0.02, positions: int = 2048):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=positions, initializer_range=init,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def save(model, tokenizer, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_forced(tokenizer, prompts: list[list[int]], target: str, steps: int = 80, seed: int = 0):
    """A tiny model trained to answer every prompt with ``target`` then ``<|end|>``."""
    model = tiny_model(tokenizer, seed)
    ids_target = tokenizer(target + "<|end|>", add_special_tokens=False)["input_ids"]
    width = max(len(p) for p in prompts) + len(ids_target)
    ids = torch.full((len(prompts), width), tokenizer.pad_token_id)
    labels, mask = torch.full_like(ids, -100), torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        seq = prompt + ids_target
        ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
        labels[row, len(prompt) : len(seq)] = torch.tensor(ids_target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


def request(messages, seed: int = 0, **kw) -> ChatRequest:
    return ChatRequest(role="agent", messages=messages, tools=TOOLS, seed=seed, **kw)


def prefixes() -> list[list[dict]]:
    """Dialogues of different lengths (so the batch needs left padding), each before an
    assistant turn."""
    out = []
    for k, name in enumerate(NAMES):
        conv = conversation(name)
        cut = [i for i, m in enumerate(conv) if m["role"] == "assistant"][k % 4]
        out.append(conv[:cut])
    return out


def backend(path: Path, **kw) -> HFBackend:
    config = {"kind": "hf", "model_path": str(path), "temperature": 0.0, "max_tokens": 16,
              "device": "cpu", **kw}
    return make_backend(backend_config(config))


@pytest.fixture(scope="module")
def forced_dir(tokenizer, tmp_path_factory):
    probe = HFBackend(HFBackendConfig(), model=tiny_model(tokenizer), tokenizer=tokenizer)
    prompts = [probe.encode(p, TOOLS) for p in prefixes()]
    model = train_forced(tokenizer, prompts, FORCED)
    return save(model, tokenizer, tmp_path_factory.mktemp("forced"))


# ------------------------------------------------------------------------------------ batching


def test_greedy_batched_equals_unbatched(random_dir):
    """Left padding is masked: one batch of dialogues of different lengths decodes exactly
    what each decodes alone."""
    requests = [request(p, seed=i) for i, p in enumerate(prefixes())]
    lengths = {len(backend(random_dir).encode(r.messages, TOOLS)) for r in requests}
    assert len(lengths) > 2  # the batch really is padded
    batched, alone = backend(random_dir), backend(random_dir, max_batch_size=1)
    together = complete_many(batched, requests)
    apart = complete_many(alone, requests)
    assert batched.stats.generate_calls == 1 and alone.stats.generate_calls == len(requests)
    assert [r.meta["batch_size"] for r in together] == [len(requests)] * len(requests)
    assert [r.meta["raw_text"] for r in together] == [r.meta["raw_text"] for r in apart]
    assert [r.usage.completion_tokens for r in together] == [r.usage.completion_tokens
                                                             for r in apart]
    assert len({r.meta["raw_text"] for r in together}) > 1  # not a degenerate constant model
    # the gym's batch API decodes the same texts
    texts = batched.generate([r.messages for r in requests], tools=TOOLS, num_samples=2)
    assert texts == [[r.meta["raw_text"]] * 2 for r in together]


def test_concurrent_requests_share_generate_calls(random_dir):
    """Requests of concurrent coroutines are micro-batched up to max_batch_size, late
    arrivals within batch_wait_ms join, and the event loop keeps running meanwhile."""
    hf = backend(random_dir, max_batch_size=5, batch_wait_ms=300, max_tokens=8)
    ticks = []

    async def staggered():
        async def one(i):
            await asyncio.sleep(0.002 * i)  # arrive one after another, within the wait window
            return await hf.acomplete(request(prefixes()[i % 6], seed=i))

        async def ticker():
            for _ in range(10):
                ticks.append(1)
                await asyncio.sleep(0.001)

        replies, _ = await asyncio.gather(asyncio.gather(*(one(i) for i in range(12))), ticker())
        return replies

    replies = asyncio.run(staggered())
    assert all(r.error is None for r in replies)
    assert hf.stats.generate_calls == 3 and sorted(hf.stats.batch_sizes) == [2, 5, 5]
    assert len(ticks) == 10
    # a second event loop (a new asyncio.run) gets a fresh queue
    again = complete_many(hf, [request(prefixes()[0])])
    assert again[0].error is None and hf.stats.generate_calls == 4


# ------------------------------------------------------------------------------------ stopping


def test_stops_at_end_of_turn_and_parses_the_call(forced_dir, tokenizer):
    hf = backend(forced_dir, max_tokens=200)
    replies = complete_many(hf, [request(p) for p in prefixes()])
    target = tokenizer(FORCED + "<|end|>", add_special_tokens=False)["input_ids"]
    for messages, reply in zip(prefixes(), replies):
        assert reply.error is None and reply.meta["finish_reason"] == "stop"
        assert reply.meta["raw_text"] == FORCED and reply.meta["parse_errors"] == []
        assert reply.usage.completion_tokens == len(target)  # the <|end|> is counted, not decoded
        assert reply.content is None and reply.backend == "hf"
        [call] = reply.tool_calls
        earlier = sum(len(m.get("tool_calls") or ()) for m in messages)
        assert (call.id, call.name, call.arguments) == (f"call_{earlier}", *CALL.values())
    assert hf.tool_format == "kimi" and tokenizer.convert_tokens_to_ids("<|end|>") in hf.stop_ids


def test_token_budget_cuts_a_call_into_a_recorded_error(forced_dir):
    reply = complete_many(backend(forced_dir), [request(prefixes()[0], max_tokens=6)])[0]
    assert reply.error is None and reply.meta["finish_reason"] == "length"
    assert reply.usage.completion_tokens == 6
    [call] = reply.tool_calls
    assert call.raw_arguments is not None and call.arguments == {}
    assert "unterminated" in reply.meta["parse_errors"][0]


def test_random_model_output_never_raises(random_dir):
    hf = backend(random_dir, temperature=1.5, max_tokens=24)
    replies = complete_many(hf, [request(p, seed=i) for i, p in enumerate(prefixes() * 2)])
    assert all(r.error is None for r in replies)
    for reply in replies:
        assert len(reply.meta["parse_errors"]) == sum(
            c.raw_arguments is not None or not c.name for c in reply.tool_calls)


# ------------------------------------------------------------------------------------ seeds


def test_sampling_is_reproducible_and_order_free(random_dir):
    hf = backend(random_dir, temperature=1.0, max_tokens=12)
    requests = [request(p, seed=i) for i, p in enumerate(prefixes())]
    texts = lambda replies: [r.meta["raw_text"] for r in replies]  # noqa: E731
    first = texts(complete_many(hf, requests))
    assert texts(complete_many(hf, requests)) == first
    assert texts(complete_many(hf, requests[::-1]))[::-1] == first  # arrival order is irrelevant
    reseeded = [request(p, seed=100 + i) for i, p in enumerate(prefixes())]
    assert texts(complete_many(hf, reseeded)) != first
    state = torch.random.get_rng_state()
    samples = hf.generate(prefixes()[:2], tools=TOOLS, num_samples=3, temperature=1.0, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert hf.generate(prefixes()[:2], tools=TOOLS, num_samples=3, temperature=1.0, seed=5) \
        == samples
    assert [len(s) for s in samples] == [3, 3] and len(set(samples[0])) > 1


# ------------------------------------------------------------------------------------ limits


def test_context_overflow_is_an_error_not_a_truncation(random_dir):
    hf = backend(random_dir, context_length=64)
    short = [{"role": "user", "content": "hi"}]
    replies = complete_many(hf, [request(conversation()), ChatRequest(role="agent",
                                                                      messages=short)])
    assert replies[0].error.startswith("context overflow") and replies[0].content is None
    assert replies[1].error is None  # the budget shrinks to the room left
    assert replies[1].usage.prompt_tokens + replies[1].usage.completion_tokens <= 64
    assert hf.generate([conversation(), short], num_samples=2)[0] == ["", ""]
    assert hf.stats.context_overflows == 2


def test_arguments_text_is_rendered_as_the_object_sft_trained_on():
    messages = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
        {"id": "d", "type": "function", "function": {"name": "g", "arguments": "{bad"}}]}]
    calls = prepare_messages(messages)[0]["tool_calls"]
    assert [c["function"]["arguments"] for c in calls] == [{"a": 1}, "{bad"]
    assert prepare_messages(messages)[0]["content"] == ""


def test_torch_is_imported_only_for_hf():
    code = ("import sys; from kimi_pipeline.llm.base import OfflineBackendConfig, make_backend; "
            "make_backend(OfflineBackendConfig()); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
