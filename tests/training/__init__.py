"""Shared test data: a small tool-using conversation set and a tokenizer trained on it."""

from __future__ import annotations

import json
import os
from functools import lru_cache

from kimi_pipeline.training.tokenizer import corpus_from_examples, train_tokenizer

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_orders",
            "description": "Search orders by customer.",
            "parameters": {"type": "object", "properties": {"customer": {"type": "string"}}},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "cancel_order",
            "description": "Cancel an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    },
]


def _call(call_id: str, name: str, arguments: dict) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _result(call_id: str, name: str, content: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def conversation(customer: str = "Zoë") -> list[dict]:
    return [
        {"role": "system", "content": "You are SYSTEM-SECRET, an order desk agent."},
        {"role": "user", "content": f"USER-ASKS cancel the last order of {customer}"},
        {
            "role": "assistant",
            "content": "Let me look that up.",
            "tool_calls": [_call("c1", "search_orders", {"customer": customer, "limit": 1})],
        },
        _result("c1", "search_orders", '{"RESULT-A": ["o-17"]}'),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [_call("c2", "cancel_order", {"order_id": "o-17"})],
        },
        _result("c2", "cancel_order", '{"RESULT-B": "cancelled"}'),
        {"role": "assistant", "content": "Order o-17 is cancelled ✅."},
        {"role": "user", "content": "USER-THANKS"},
        {"role": "assistant", "content": "You're welcome!"},
    ]


# The assistant renderings the built-in template must produce for ``conversation("Zoë")``.
ASSISTANT_RENDERINGS = [
    'Let me look that up.<|tool_call|>{"name": "search_orders", '
    '"arguments": {"customer": "Zoë", "limit": 1}}'
    "<|/tool_call|><|end|>",
    '<|tool_call|>{"name": "cancel_order", "arguments": {"order_id": "o-17"}}<|/tool_call|><|end|>',
    "Order o-17 is cancelled ✅.<|end|>",
    "You're welcome!<|end|>",
]
NON_ASSISTANT_TEXT = [
    "SYSTEM-SECRET", "USER-ASKS", "RESULT-A", "RESULT-B", "USER-THANKS", "Search orders"
]


@lru_cache(maxsize=1)
def make_tokenizer():
    """Trained once per session; tests must not modify it."""
    names = ["Zoë", "Ana", "Björn", "李雷", "Omar", "Élodie"]
    rows = [conversation(name) for name in names] * 5
    corpus = corpus_from_examples([json.dumps(r) for r in rows], [json.dumps(TOOLS)] * len(rows))
    return train_tokenizer(corpus, vocab_size=600)


def single_process_group() -> None:
    """Join a one-process gloo group on a free port, as a DeepSpeed engine needs (call it in a
    worker process: the group lives as long as the process)."""
    import deepspeed

    from kimi_pipeline.training.launch import free_port

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
                      WORLD_SIZE="1", LOCAL_RANK="0")
    deepspeed.init_distributed(dist_backend="gloo")
