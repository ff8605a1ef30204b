"""The gym report: per-domain pass@k, verification latency, why responses fail, RL prompt yield.

One JSON summary (what a person reads first), flat MLflow metrics for comparing runs, a bar
plot of pass@1 / pass@k per domain with the RL prompts each domain yields, and a small
readable sample of rollouts (a few per domain, correct ones first) for eyeballing what the
policy writes and what the verifiers said about it.
"""

from __future__ import annotations

import re
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kimi_pipeline.gym.run import GymConfig  # noqa: E402

TOP_REASONS = 5  # failure reasons listed per domain


def reason_kind(reason: str) -> str:
    """A failure reason without its specifics (numbers, quotes, details), so equal failures
    group: ``"sandbox: syntax_error (0/3 tests passed)"`` → ``"sandbox: syntax_error"``,
    ``"min_words: 12 words, need 50; …"`` → ``"min_words"``."""
    head = re.split(r"[;(]", reason, maxsplit=1)[0]
    parts = [p.strip() for p in head.split(":")]
    named = len(parts) > 1 and re.fullmatch(r"[A-Za-z_][\w.-]*", parts[1])  # a category name
    kind = f"{parts[0]}: {parts[1]}" if named else parts[0]
    return re.sub(r"\d+", "N", kind or reason.strip())[:80]


def _round(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def summarise(tasks: pl.DataFrame, rollouts: pl.DataFrame, scores: pl.DataFrame,
              rl_prompts: pl.DataFrame, rollout_stats: dict[str, Any],
              config: GymConfig) -> dict[str, Any]:
    """Everything the report says, as plain JSON."""
    ks = config.ks
    metrics = ["pass_rate", *[f"pass@{k}" for k in ks]]
    latency = (rollouts.group_by("domain").agg(
        (pl.col("latency_s").mean() * 1000).alias("verify_ms_mean"),
        (pl.col("latency_s").quantile(0.95) * 1000).alias("verify_ms_p95"),
        pl.col("reason").str.starts_with("verifier error").sum().alias("verifier_errors")))
    yield_ = rl_prompts.group_by("domain").agg(pl.len().alias("rl_prompts"))
    domains = (scores.filter(pl.col("scope") == "domain")
               .select(pl.col("name").alias("domain"), "tasks", "samples", "correct", *metrics)
               .join(latency, on="domain", how="left").join(yield_, on="domain", how="left")
               .with_columns(pl.col("rl_prompts").fill_null(0)).sort("domain"))
    levels = (scores.filter(pl.col("scope") == "level")
              .select("name", "tasks", "samples", "correct", *metrics).sort("name"))
    requested = {name: sum(counts) for name, counts in config.domains.items()}
    generated = dict(tasks.group_by("domain").len().iter_rows())
    failures = {}
    for domain in sorted(generated):
        reasons = rollouts.filter((pl.col("domain") == domain) & (pl.col("reward") < 0.5))["reason"]
        counts = pl.Series([reason_kind(r) for r in reasons], dtype=pl.Utf8).value_counts(sort=True)
        failures[domain] = {kind: n for kind, n in counts.head(TOP_REASONS).iter_rows()}
    return {
        "tasks": tasks.height,
        "rollouts": rollouts.height,
        "samples_per_task": config.samples,
        "tasks_requested": requested,
        "tasks_generated": {d: generated.get(d, 0) for d in requested},
        "overall": {m: _round(scores.filter(pl.col("scope") == "task")[m].mean()) for m in metrics},
        "domains": [{k: _round(v) for k, v in row.items()} for row in domains.to_dicts()],
        "levels": [{k: _round(v) for k, v in row.items()} for row in levels.to_dicts()],
        "failure_reasons": failures,
        "rl_prompts": {"count": rl_prompts.height, "band": config.band.model_dump(),
                       "by_domain": dict(sorted(yield_.iter_rows()))},
        "rollout": rollout_stats,
    }


def compare(base_scores: pl.DataFrame, policy_scores: pl.DataFrame,
            config: GymConfig) -> list[dict[str, Any]]:
    """Pass rate and pass@k of the base model and the policy side by side, per domain × level
    and per domain (the same tasks, the same k and temperature)."""
    metrics = ["pass_rate", *[f"pass@{k}" for k in config.ks]]
    scopes = pl.col("scope").is_in(["level", "domain"])
    keys = ["scope", "name", "tasks"]
    base = base_scores.filter(scopes).select(*keys, *[pl.col(m).alias(f"base_{m}")
                                                      for m in metrics])
    policy = policy_scores.filter(scopes).select(*keys, *[pl.col(m).alias(f"policy_{m}")
                                                          for m in metrics])
    joined = base.join(policy, on=["scope", "name"], how="full", coalesce=True,
                       suffix="_policy").drop("tasks_policy", strict=False)
    rows = joined.sort(pl.col("scope") == "domain", "name").to_dicts()
    return [{k: _round(v) for k, v in row.items()} for row in rows]


def metrics(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """MLflow metrics (kedro-mlflow history format): overall and per-domain pass@k, latency."""
    values: dict[str, float] = {}

    def name(metric: str) -> str:
        return metric.replace("@", "_at_")  # MLflow metric names may not hold '@'

    for metric, value in summary["overall"].items():
        if value is not None:
            values[f"overall.{name(metric)}"] = value
    for row in summary["domains"]:
        for metric in [m for m in summary["overall"]] + ["verify_ms_mean", "verify_ms_p95",
                                                          "rl_prompts", "verifier_errors"]:
            if row.get(metric) is not None:
                values[f"{row['domain']}.{name(metric)}"] = row[metric]
    for row in summary.get("base_vs_policy", []):
        if row["scope"] == "domain":
            for metric, value in row.items():
                if metric.startswith("base_") and value is not None:
                    values[f"{row['name']}.{name(metric)}"] = value
    values["rl_prompts"] = summary["rl_prompts"]["count"]
    values["tasks"] = summary["tasks"]
    for key in ("generation_s", "verification_s", "responses_per_s", "mean_response_chars",
                "empty_responses"):
        if summary["rollout"].get(key) is not None:
            values[f"rollout.{key}"] = summary["rollout"][key]
    for key in ("completion_tokens_per_s", "completion_tokens", "context_overflows", "generate_s"):
        if summary["rollout"].get("backend", {}).get(key) is not None:
            values[f"policy.{key}"] = summary["rollout"]["backend"][key]
    return {k: {"value": float(v), "step": 0} for k, v in values.items()}


def passk_plot(summary: dict[str, Any]) -> Figure:
    """Grouped bars per domain: pass@k for each reported k; RL prompt counts above."""
    rows = summary["domains"]
    ks = [m for m in summary["overall"] if m.startswith("pass@")]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.4 * len(rows) + 2), 4.5))
    x = np.arange(len(rows))
    width = 0.8 / max(1, len(ks))
    for j, metric in enumerate(ks):
        heights = [row.get(metric) or 0.0 for row in rows]
        ax.bar(x + (j - (len(ks) - 1) / 2) * width, heights, width, label=metric)
    for i, row in enumerate(rows):
        ax.text(i, 1.02, f"{row['rl_prompts']} RL prompts", ha="center", fontsize=8)
    ax.set_xticks(x, [row["domain"] for row in rows], rotation=20, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("pass@k (mean over tasks)")
    ax.set_title(f"Gym: pass@k per domain ({summary['tasks']} tasks, "
                 f"k={summary['samples_per_task']} samples each)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    return fig


def rollout_sample(tasks: pl.DataFrame, rollouts: pl.DataFrame, size: int) -> pl.DataFrame:
    """About ``size`` readable rollouts spread over the domains (one per task, correct first)."""
    domains = sorted(set(rollouts["domain"]))
    if not size or not domains:
        return pl.DataFrame(schema={"task_id": pl.Utf8, "domain": pl.Utf8, "prompt": pl.Utf8,
                                    "sample_index": pl.Int64, "response": pl.Utf8,
                                    "reward": pl.Float64, "reason": pl.Utf8})
    per_domain = max(1, size // len(domains))
    best = (rollouts.sort(["task_id", "reward", "sample_index"], descending=[False, True, False])
            .group_by("task_id", maintain_order=True).first())  # one sample per task
    picked = (best.sort(["domain", "reward", "task_id"], descending=[False, True, False])
              .group_by("domain", maintain_order=True).head(per_domain))
    return (picked.join(tasks.select("task_id", "prompt"), on="task_id", how="left")
            .select("task_id", "domain", "prompt", "sample_index", "response", "reward", "reason")
            .head(size))
