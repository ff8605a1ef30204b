"""Balance: token-length limits, caps per tool / domain / persona, deterministic drops."""

from __future__ import annotations

import polars as pl
import pytest

from kimi_pipeline.curation.balance import balance, estimate_tokens, with_domains
from kimi_pipeline.curation.config import BalanceConfig, CapConfig
from kimi_pipeline.curation.messages import ensure_parsed
from tests.curation.conftest import frame, trajectory, with_bad_row

NO_LIMITS = BalanceConfig(min_tokens=0, max_tokens=None)


def caps(**kwargs: CapConfig) -> BalanceConfig:
    return BalanceConfig(min_tokens=0, max_tokens=None, **kwargs)


def ids(df: pl.DataFrame) -> list[str]:
    return df["trajectory_id"].to_list()


def call(name: str) -> tuple[str, dict, str]:
    return (name, {"q": 1}, "{}")


def test_token_estimate_is_chars_over_four_including_tools():
    df = frame([trajectory("a", "x" * 400, calls=[], system="", answer="")])
    parsed, _ = ensure_parsed(df)
    tools_chars = df["tools"].str.len_chars()[0]
    assert estimate_tokens(parsed, NO_LIMITS).to_list() == [-(-(400 + tools_chars) // 4)]


def test_length_limits_with_reasons():
    df = frame(
        [
            trajectory("short", "hi", calls=[], system="", answer="ok"),
            trajectory("mid", "word " * 200),
            trajectory("long", "word " * 3000),
        ]
    )
    df = df.with_columns(tools=pl.lit("[]"))
    kept, removed = balance(df, BalanceConfig(min_tokens=16, max_tokens=1000))
    assert ids(kept) == ["mid"]
    reasons = dict(zip(ids(removed), removed["reason"]))
    assert reasons["short"].startswith("too_short: ~") and reasons["short"].endswith(
        "< min_tokens 16"
    )
    assert reasons["long"].startswith("too_long: ~") and reasons["long"].endswith(
        "> max_tokens 1000"
    )


def test_tokenizer_callable_replaces_the_estimate():
    df = frame([trajectory("a", "one two three")])
    config = BalanceConfig(min_tokens=0, max_tokens=5)
    kept, _ = balance(df, config, tokenizer=lambda text: 3)
    assert ids(kept) == ["a"]
    kept, removed = balance(df, config, tokenizer=lambda text: len(text.split()))
    assert kept.height == 0 and removed["reason"][0].startswith("too_long: ~")


def test_tool_cap_counts_each_called_tool_and_drops_lowest_scores():
    df = frame(
        [
            trajectory("a", "r", calls=[call("search"), call("search"), call("book")]),
            trajectory("b", "r", calls=[call("search")]),
            trajectory("c", "r", calls=[call("book")]),
            trajectory("d", "r", calls=[call("pay")]),
        ],
        scores=[0.9, 0.8, 0.7, 0.1],
    )
    config = caps(per_tool=CapConfig(default=1, per_value={"pay": 0}))
    kept, removed = balance(df, config)
    assert ids(kept) == ["a"]
    assert dict(zip(ids(removed), removed["reason"])) == {
        "b": "cap_tool: 'search' already has 1 example(s)",
        "c": "cap_tool: 'book' already has 1 example(s)",
        "d": "cap_tool: 'pay' already has 0 example(s)",
    }


def test_domain_cap_with_override_from_agents():
    df = frame(
        [trajectory(f"t{k}", "r", agent=f"ag{k % 2}") for k in range(6)],
        scores=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    )
    agents = pl.DataFrame({"agent_id": ["ag0", "ag1"], "domain": ["travel", "food"]})
    df = with_domains(df, agents)
    config = caps(per_domain=CapConfig(default=1, per_value={"food": 2}))
    kept, removed = balance(df, config)
    assert sorted(ids(kept)) == ["t3", "t4", "t5"]  # travel: best (t4); food: best two (t5, t3)
    assert set(removed["reason"]) == {
        "cap_domain: 'travel' already has 1 example(s)",
        "cap_domain: 'food' already has 2 example(s)",
    }


def test_persona_cap_ties_break_by_id_hash_whatever_the_order():
    df = frame([trajectory(f"t{k}", "r", persona="vague") for k in range(8)])
    config = caps(per_persona=CapConfig(default=3))
    first, _ = balance(df, config)
    for seed in range(3):
        again, removed = balance(df.sample(fraction=1.0, shuffle=True, seed=seed), config)
        assert sorted(ids(again)) == sorted(ids(first))
        assert removed.height == 5
    assert first.height == 3


def test_missing_domain_column_is_an_error_only_when_capped():
    df = frame([trajectory("a", "r")])
    assert balance(df, NO_LIMITS)[0].height == 1
    with pytest.raises(ValueError, match="domain"):
        balance(df, caps(per_domain=CapConfig(default=1)))


def test_malformed_row_is_removed_with_reason():
    df = with_bad_row(frame([trajectory("a", "r")]))
    kept, removed = balance(df, NO_LIMITS)
    assert ids(kept) == ["a"]
    assert removed["reason"][0].startswith("malformed_messages: ")
