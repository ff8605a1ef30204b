"""Unbiased pass@k, its per task / domain / tag tables and the moderate band."""

from __future__ import annotations

import json
from math import comb

import polars as pl
import pytest

from kimi_pipeline.gym.passk import moderate, pass_at_k, passk_table


def exact(n: int, c: int, k: int) -> float:
    return 1 - comb(n - c, k) / comb(n, k)


def test_pass_at_k_matches_the_binomial_form():
    for n in range(1, 11):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(exact(n, c, k), abs=1e-12)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0 and pass_at_k(10, 8, 3) == 1.0
    assert pass_at_k(2000, 3, 500) == pytest.approx(exact(2000, 3, 500), rel=1e-9)  # no overflow


@pytest.mark.parametrize("n, c, k", [(0, 0, 1), (5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def results() -> pl.DataFrame:
    rows = []
    spec = {"a": ("math", ["algebra", "easy"], [1, 1, 0, 0]),
            "b": ("math", ["algebra"], [0, 0, 0, 0]),
            "c": ("coding", ["easy"], [1, 0])}
    for task_id, (domain, tags, rewards) in spec.items():
        rows += [{"task_id": task_id, "domain": domain, "tags": tags, "reward": float(r)} for r in rewards]
    return pl.DataFrame(rows)


def test_passk_table_per_task_domain_and_tag():
    tables = passk_table(results(), k=[1, 2, 4])
    task = {r["task_id"]: r for r in tables["task"].to_dicts()}
    assert (task["a"]["n"], task["a"]["c"], task["a"]["pass_rate"]) == (4, 2, 0.5)
    assert task["a"]["pass@2"] == pytest.approx(exact(4, 2, 2))
    assert task["b"]["pass@4"] == 0.0
    assert task["c"]["pass@2"] == 1.0 and task["c"]["pass@4"] is None  # k > n samples
    domain = {r["domain"]: r for r in tables["domain"].to_dicts()}
    assert domain["math"]["tasks"] == 2
    assert domain["math"]["pass@1"] == pytest.approx(0.25)
    assert domain["coding"]["pass@1"] == pytest.approx(0.5)
    tag = {r["tag"]: r for r in tables["tag"].to_dicts()}
    assert tag["algebra"]["tasks"] == 2 and tag["easy"]["tasks"] == 2
    assert tag["easy"]["pass@2"] == pytest.approx((exact(4, 2, 2) + 1.0) / 2)


def test_passk_table_reads_tags_stored_as_json_and_needs_its_columns():
    df = results().with_columns(pl.col("tags").map_elements(lambda t: json.dumps(list(t)),
                                                           return_dtype=pl.Utf8))
    assert passk_table(df)["tag"]["tag"].to_list() == ["algebra", "easy"]
    with pytest.raises(ValueError, match="reward"):
        passk_table(results().drop("reward"))


def test_moderate_keeps_the_band():
    rates = {"easy": 1.0, "hard": 0.0, "mid": 0.5, "edge": 0.1}
    assert moderate(rates) == {"mid": 0.5, "edge": 0.1}
    assert moderate(rates, 0.2, 0.8) == {"mid": 0.5}
    frame = passk_table(results())["task"]
    assert moderate(frame, 0.2, 0.8)["task_id"].to_list() == ["a", "c"]
    with pytest.raises(ValueError):
        moderate(rates, 0.9, 0.1)
