"""Unbiased pass@k per task, domain and tag, and the moderate-difficulty band filter.

K2 keeps RL prompts of moderate difficulty, judged by the SFT model's pass@k (K2 report
§3.2). With n samples of which c are correct, the unbiased estimator of Chen et al. (2021) is
``1 - C(n-c, k) / C(n, k)``, computed as the product ``1 - prod_{i=n-c+1..n} (1 - k/i)``,
which never forms the huge binomials. ``passk_table`` turns a frame of verified samples into
per-task, per-domain and per-tag tables (a domain's or tag's pass@k is the mean over its
tasks); ``moderate`` keeps the tasks whose pass rate lies in a band.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct."""
    if not (n >= 1 and 0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass@k needs n >= 1, 0 <= c <= n, 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def _tags(value: Any) -> list[str]:
    """Tags as a list whether the column holds lists or JSON strings (the GymTask frame form)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
    return [str(t) for t in (value or [])]


def _ks(k: int | Sequence[int]) -> list[int]:
    return [k] if isinstance(k, int) else list(k)


def per_task(results: pl.DataFrame, k: int | Sequence[int] = 1) -> pl.DataFrame:
    """One row per task: n samples, c correct, pass_rate = c/n, and ``pass@k`` (null when k > n)."""
    grouped = (results.group_by("task_id", maintain_order=True)
               .agg(pl.col("domain").first(), pl.col("tags").first(),
                    pl.len().alias("n"), (pl.col("reward") >= 0.5).sum().alias("c")))
    rows = grouped.to_dicts()
    for row in rows:
        row["tags"] = _tags(row["tags"])
        row["pass_rate"] = row["c"] / row["n"]
        for kk in _ks(k):
            row[f"pass@{kk}"] = pass_at_k(row["n"], row["c"], kk) if kk <= row["n"] else None
    schema = {"task_id": pl.Utf8, "domain": pl.Utf8, "tags": pl.List(pl.Utf8), "n": pl.Int64,
              "c": pl.Int64, "pass_rate": pl.Float64, **{f"pass@{kk}": pl.Float64 for kk in _ks(k)}}
    return pl.DataFrame(rows, schema=schema, orient="row")


def _aggregate(tasks: pl.DataFrame, by: str, k: int | Sequence[int]) -> pl.DataFrame:
    metrics = ["pass_rate", *[f"pass@{kk}" for kk in _ks(k)]]
    return (tasks.group_by(by).agg(pl.len().alias("tasks"), *[pl.col(m).mean() for m in metrics])
            .sort(by))


def passk_table(results: pl.DataFrame, k: int | Sequence[int] = 1) -> dict[str, pl.DataFrame]:
    """``{"task", "domain", "tag"}`` frames of pass@k from verified samples.

    ``results`` has one row per verified sample with columns task_id, domain, tags (list or
    JSON string) and reward (1 correct, 0 not). Domain and tag rows average their tasks.
    """
    missing = {"task_id", "domain", "tags", "reward"} - set(results.columns)
    if missing:
        raise ValueError(f"passk_table needs columns {sorted(missing)}")
    tasks = per_task(results, k)
    return {"task": tasks, "domain": _aggregate(tasks, "domain", k),
            "tag": _aggregate(tasks.explode("tags").drop_nulls("tags").rename({"tags": "tag"}),
                              "tag", k)}


def moderate(tasks_pass_rates: Mapping[str, float] | pl.DataFrame, low: float = 0.1,
             high: float = 0.9, column: str = "pass_rate"):
    """The tasks whose pass rate is in ``[low, high]``: a dict for a dict, a frame for a frame.

    Tasks the policy always or never solves give no learning signal; the band keeps the rest.
    """
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"need 0 <= low <= high <= 1 (low={low}, high={high})")
    if isinstance(tasks_pass_rates, pl.DataFrame):
        return tasks_pass_rates.filter(pl.col(column).is_between(low, high))
    return {t: r for t, r in tasks_pass_rates.items() if low <= r <= high}
