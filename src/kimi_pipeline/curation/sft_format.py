"""Turn curated trajectories into SFT examples in the chat format HF templates with tools read.

One example per trajectory, in the ``records.SftExample`` column layout: ``tools`` in the
OpenAI function format (as the trajectory offered them) and ``messages`` as OpenAI chat
messages — what ``tokenizer.apply_chat_template(messages, tools=tools)`` consumes:

* assistant tool calls: ``{"id", "type": "function", "function": {"name", "arguments"}}``
  with ``arguments`` a dict (templates apply ``| tojson`` themselves; a string would be
  encoded twice);
* tool results: ``{"role": "tool", "tool_call_id", "name", "content"}``;
* ``content`` is always a string, ``""`` on pure tool-call turns. Qwen-style templates test
  ``if message.content`` (None and "" both skip), but transformers drops None-valued keys
  before rendering, and a template that concatenates ``message['content']`` then fails on
  the undefined value; "" renders everywhere (tested with both kinds);
* an assistant turn whose every call the agent corrected on its next move (the API refused it
  for the agent's own mistake: ``judge.episode.corrected_calls``) carries ``"train": false``:
  it stays in the context, so the model learns to read the error and send the right call,
  but it gets no labels (``training.chat.render_with_mask``), so the model does not learn
  to make the mistake;
* internal fields (``schema_version``, ``raw_arguments``, empty ``tool_calls``, state, rubric,
  outcome, the ``_cur_`` columns) are dropped.

Split: each agent goes wholly to train or to validation, so no system prompt and tool set is
seen in both. An agent is in validation when blake2b(``split_seed:agent_id``) / 2^64 is below
``validation_fraction`` — deterministic and independent of which other agents exist — and
when that picks fewer than ``min_validation_agents`` the lowest-hash agents are added.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import polars as pl

from kimi_pipeline.curation.config import SftFormatConfig
from kimi_pipeline.curation.messages import MalformedMessages, parse_messages, require_columns
from kimi_pipeline.judge.episode import corrected_calls
from kimi_pipeline.records import SCHEMA_VERSION, SftExample

STEP = "sft_format"
REQUIRED = ("trajectory_id", "agent_id", "messages", "tools", "judge_score")
COLUMNS = list(SftExample.model_fields)


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    return {"role": message["role"], "content": message.get("content") or ""}


def _assistant(message: dict[str, Any]) -> dict[str, Any]:
    out = _plain(message)
    calls = message.get("tool_calls") or []
    if calls:
        out["tool_calls"] = [
            {
                "id": call.get("id") or "",
                "type": "function",
                "function": {"name": call["name"], "arguments": call.get("arguments") or {}},
            }
            for call in calls
        ]
    return out


def _tool(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "role": "tool",
        "tool_call_id": message.get("tool_call_id") or "",
        "name": message.get("name") or "",
        "content": message.get("content") or "",
    }


FORMATTERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "system": _plain,
    "user": _plain,
    "assistant": _assistant,
    "tool": _tool,
}


def chat_messages(messages_json: str) -> list[dict[str, Any]]:
    """One trajectory's ``messages`` JSON as template-ready chat messages."""
    messages = parse_messages(messages_json)
    corrected = corrected_calls(messages)
    out = [FORMATTERS[m["role"]](m) for m in messages]
    for message, chat in zip(messages, out):
        calls = message.get("tool_calls") or ()
        if calls and all(c.get("id") in corrected for c in calls):
            chat["train"] = False
    return out


def agent_score(agent_id: str, seed: int) -> float:
    """Uniform in [0, 1), fixed for an agent and seed."""
    digest = hashlib.blake2b(f"{seed}:{agent_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def validation_agents(agent_ids: list[str], config: SftFormatConfig) -> set[str]:
    """Agents whose examples all go to validation (see the module docstring)."""
    unique = sorted(set(agent_ids))
    score = {agent: agent_score(agent, config.split_seed) for agent in unique}
    chosen = {agent for agent in unique if score[agent] < config.validation_fraction}
    wanted = min(config.min_validation_agents, len(unique) - 1)
    if config.validation_fraction > 0 and len(chosen) < wanted:
        chosen = set(sorted(unique, key=lambda a: (score[a], a))[:wanted])
    return chosen


def to_sft_examples(frame: pl.DataFrame, config: SftFormatConfig) -> pl.DataFrame:
    """SftExample rows (JSON ``messages``/``tools``), one per trajectory, in input order.

    The rows must have passed a curation step (dedup, decontaminate or balance), which set
    malformed ``messages`` aside; one that still arrives here is a wiring error and raises.
    """
    require_columns(frame, REQUIRED, STEP)
    validation = validation_agents(frame["agent_id"].to_list(), config)
    messages = pl.Series("messages", _encode_all(frame), dtype=pl.String)
    optional = {
        c: pl.col(c).fill_null("") if c in frame.columns else pl.lit("")
        for c in ("domain", "persona")
    }
    return (
        frame.with_columns(messages)
        .select(
            pl.lit(SCHEMA_VERSION).alias("schema_version"),
            pl.col("trajectory_id").alias("example_id"),
            pl.col("trajectory_id"),
            pl.col("agent_id"),
            pl.when(pl.col("agent_id").is_in(pl.Series(sorted(validation), dtype=pl.String)))
            .then(pl.lit("validation"))
            .otherwise(pl.lit("train"))
            .alias("split"),
            pl.col("messages"),
            pl.col("tools"),
            pl.col("judge_score").cast(pl.Float64),
            optional["domain"].alias("domain"),
            optional["persona"].alias("persona"),
        )
        .select(COLUMNS)
    )


def _encode_all(frame: pl.DataFrame) -> list[str]:
    out, broken = [], []
    for trajectory_id, text in frame.select("trajectory_id", "messages").iter_rows():
        try:
            out.append(json.dumps(chat_messages(text), ensure_ascii=False))
        except MalformedMessages as exc:
            broken.append(f"{trajectory_id} ({exc})")
    if broken:
        raise ValueError(
            f"{STEP}: {len(broken)} row(s) with malformed messages reached the SFT format; run a "
            f"curation step first, which sets them aside: {broken[:5]}"
        )
    return out
