"""Token-length limits and caps per tool, domain and persona.

Synthesis over-produces what is easy to produce: a few tools, domains or personas can
dominate the set, and a rare very long dialogue costs a whole packed sequence. So:

* Length: examples outside ``[min_tokens, max_tokens]`` go. Without a tokenizer the length is
  estimated as characters / ``chars_per_token`` (4: the usual rule for BPE vocabularies on
  English and JSON; it counts punctuation-heavy tool calls better than words x 1.3) over
  every message content, tool-call name and arguments, and the tools JSON — templates render
  the tools into the prompt. SFT can pass its own ``tokenizer`` (text -> token count), which
  then sees that same text.
* Caps: examples are taken best first (highest ``judge_score``, then a CRC32 of the id, so
  the order is stable across runs and machines) and one is kept while none of its counters
  is full: one per tool it calls (an example counts once for each distinct tool), its domain
  (``domain`` column, see ``with_domains``) and its persona. A null domain or persona is
  not capped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from kimi_pipeline.curation.config import BalanceConfig, CapConfig
from kimi_pipeline.curation.messages import (
    CHARS,
    TOOLS_CALLED,
    ensure_parsed,
    full_text,
    malformed,
    removed,
    require_columns,
    stable_hash,
)

STEP = "balance"
REQUIRED = ("trajectory_id", "messages", "judge_score")
Tokenizer = Callable[[str], int]


@dataclass(frozen=True)
class _Dimension:
    column: str
    cap: Callable[[BalanceConfig], CapConfig]
    as_list: bool  # the column already holds a list of values per row


DIMENSIONS = {
    "tool": _Dimension(TOOLS_CALLED, lambda c: c.per_tool, as_list=True),
    "domain": _Dimension("domain", lambda c: c.per_domain, as_list=False),
    "persona": _Dimension("persona", lambda c: c.per_persona, as_list=False),
}


def with_domains(frame: pl.DataFrame, agents: pl.DataFrame) -> pl.DataFrame:
    """Add each trajectory's agent ``domain`` (null for unknown agents)."""
    require_columns(agents, ["agent_id", "domain"], "with_domains(agents)")
    lookup = agents.select("agent_id", "domain").unique("agent_id", keep="first")
    return frame.drop("domain", strict=False).join(
        lookup, on="agent_id", how="left", maintain_order="left"
    )


def estimate_tokens(
    frame: pl.DataFrame, config: BalanceConfig, tokenizer: Tokenizer | None = None
) -> pl.Series:
    """Token count per row of a parsed frame (see the module docstring)."""
    tools = pl.col("tools") if "tools" in frame.columns else pl.lit(None, pl.String)
    if tokenizer is None:
        chars = pl.col(CHARS) + tools.str.len_chars().fill_null(0)
        tokens = (chars / config.chars_per_token).ceil().cast(pl.Int64)
        return frame.select(tokens.alias("tokens"))["tokens"]
    rows = frame.select("messages", tools.alias("tools")).iter_rows()
    return pl.Series("tokens", [tokenizer(full_text(m, t)) for m, t in rows], dtype=pl.Int64)


def balance(
    frame: pl.DataFrame, config: BalanceConfig, tokenizer: Tokenizer | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept rows in input order, removed rows with ``step`` and ``reason``)."""
    active = {name: dim for name, dim in DIMENSIONS.items() if dim.cap(config).active}
    require_columns(frame, [*REQUIRED, *(d.column for d in active.values() if not d.as_list)], STEP)
    parsed, bad = ensure_parsed(frame)
    reason = _length_reasons(estimate_tokens(parsed, config, tokenizer), config)
    reason = _cap_reasons(parsed, reason, active, config)
    gone = reason.is_not_null()
    out = removed(parsed.filter(gone), STEP, reason.filter(gone))
    return parsed.filter(~gone), pl.concat([out, malformed(bad, STEP)])


def _length_reasons(tokens: pl.Series, config: BalanceConfig) -> pl.Series:
    low, high = config.min_tokens, config.max_tokens
    too_long = pl.lit(False) if high is None else pl.col("tokens") > high
    return pl.DataFrame({"tokens": tokens}).select(
        pl.when(pl.col("tokens") < low)
        .then(pl.format("too_short: ~{} tokens < min_tokens {}", "tokens", pl.lit(low)))
        .when(too_long)
        .then(pl.format("too_long: ~{} tokens > max_tokens {}", "tokens", pl.lit(high)))
        .alias("reason")
    )["reason"]


def _cap_reasons(
    parsed: pl.DataFrame, reason: pl.Series, active: dict[str, _Dimension], config: BalanceConfig
) -> pl.Series:
    """Greedy caps over the rows still in, best first; returns the updated reasons."""
    if not active or parsed.height == 0:
        return reason
    order = (
        parsed.with_row_index("row")
        .with_columns(stable_hash(parsed["trajectory_id"]).alias("id_hash"), reason.alias("reason"))
        .filter(pl.col("reason").is_null())
        .sort(
            ["judge_score", "id_hash", "trajectory_id"],
            descending=[True, False, False],
            nulls_last=True,
        )
    )
    values = {name: _values(order, dim) for name, dim in active.items()}
    counts = {name: Counter() for name in active}
    out = reason.to_list()
    for k, row in enumerate(order["row"].to_list()):
        full = _first_full(k, values, counts, active, config)
        if full is not None:
            name, value, limit = full
            out[row] = f"cap_{name}: {value!r} already has {limit} example(s)"
            continue
        for name in active:
            counts[name].update(values[name][k])
    return pl.Series("reason", out, dtype=pl.String)


def _values(order: pl.DataFrame, dim: _Dimension) -> list[list[str]]:
    column = order[dim.column]
    if dim.as_list:
        return column.to_list()
    return [[] if v is None else [v] for v in column.to_list()]


def _first_full(
    k: int,
    values: dict[str, list[list[str]]],
    counts: dict[str, Counter],
    active: dict[str, _Dimension],
    config: BalanceConfig,
) -> tuple[str, str, int] | None:
    """The first counter of row ``k`` that is already full, if any."""
    for name, dim in active.items():
        cap = dim.cap(config)
        for value in values[name][k]:
            limit = cap.limit(value)
            if limit is not None and counts[name][value] >= limit:
                return name, value, limit
    return None
