"""The rl stage's report: the held-out before/after table, the per-iteration curves, samples.

The table is the learning signal: mean verifier reward of the SFT model and of the RL model on
held-out tasks (never trained on), sampled with the same settings, overall and per domain and
level. Next to it, when measured (``rl.evaluation.tool_tasks``), both models as the agent on
the SFT stage's held-out tool tasks: rubric success and call validity, whether RL kept tool
use. The curves show what the iterations did: reward by source, the sampler/trainer log-prob
gap (a silent mismatch between the two is the classic failure of RL stacks), entropy, response
length and truncation, and where the time went.
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CURVES = (
    ("reward", ("reward/task", "reward/total")),
    ("log-prob gap (sampler vs trainer)", ("sampler_trainer_abs_logprob_gap",)),
    ("entropy (nats/token)", ("entropy",)),
    ("response tokens", ("response_tokens",)),
    ("truncation rate", ("truncation_rate",)),
    ("seconds", ("rollout_s", "reward_s", "train_s", "critic_s")),
)


def _mean(values: list[float]) -> float:
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return sum(values) / len(values) if values else math.nan


AGENT_RATES = ("success_rate", "parse_validity_rate", "schema_validity_rate", "right_tool_rate",
               "finished_rate")
AGENT_COUNTS = ("episodes", "passed", "tool_calls", "wall_s")


def summarise(training: dict[str, Any], table: list[dict[str, Any]],
              pool: dict[str, Any], agent: dict[str, dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    """The report: pool, before/after (gym tasks; tool tasks played as the agent, when
    measured), per-iteration figures and their totals."""
    history = training.get("metrics", [])
    by_model = {row["model"]: row["reward"] for row in table if row["scope"] == "all"}
    before, after = by_model.get("sft_model"), by_model.get("rl_model")
    time_split = {k: sum(m.get(k, 0.0) for m in history)
                  for k in ("rollout_s", "reward_s", "train_s", "critic_s")}
    return {
        "pool": pool,
        "heldout": {
            "table": table,
            "sft_model": before, "rl_model": after,
            "gain_points": None if before is None or after is None else 100 * (after - before),
        },
        "tool_tasks": {model: {**{k: summary.get(k) for k in (*AGENT_COUNTS, *AGENT_RATES)},
                               "reused": bool(summary.get("reused"))}  # the sft stage's figures
                       for model, summary in (agent or {}).items()},
        "iterations": len(history),
        "first_iteration": history[0] if history else {},
        "last_iteration": history[-1] if history else {},
        "mean": {k: _mean([m.get(k) for m in history]) for k in (
            "sampler_trainer_abs_logprob_gap", "entropy", "response_tokens", "truncation_rate",
            "train_tokens_per_s", "mfu")},
        "seconds": {**time_split, "total": sum(time_split.values())},
        "result": {k: v for k, v in training.get("result", {}).items()
                   if k not in ("metrics", "critic_state")},
    }


def metrics(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """MLflow metrics of the stage's outcome (the per-iteration curves are logged live)."""
    out: dict[str, float] = {}
    for row in summary["heldout"]["table"]:
        name = "all" if row["scope"] == "all" else f"{row['scope']}.{row['name'].replace('/', '.')}"
        out[f"heldout.{row['model']}.{name}"] = row["reward"]
    if summary["heldout"]["gain_points"] is not None:
        out["heldout.gain_points"] = summary["heldout"]["gain_points"]
    for model, rates in summary.get("tool_tasks", {}).items():
        out.update({f"tool_tasks.{model}.{k}": rates.get(k) for k in AGENT_RATES})
    out.update({f"seconds.{k}": v for k, v in summary["seconds"].items()})
    return {k: {"value": float(v), "step": 0} for k, v in out.items()
            if v is not None and math.isfinite(float(v))}


def curves_plot(history: list[dict[str, Any]]) -> Figure:
    """One panel per curve over the iterations."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    steps = [m["step"] for m in history]
    for ax, (title, keys) in zip(axes.flat, CURVES):
        for key in keys:
            values = [m.get(key, math.nan) for m in history]
            ax.plot(steps, values, marker="o", markersize=3, label=key.split("/")[-1])
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration")
        if len(keys) > 1:
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("rl: per iteration")
    fig.tight_layout()
    return fig


def heldout_plot(table: list[dict[str, Any]]) -> Figure:
    """Held-out mean reward of the SFT and the RL model, overall and per domain."""
    rows = [r for r in table if r["scope"] in ("all", "domain")]
    names = sorted({r["name"] for r in rows}, key=lambda n: (n != "all", n))
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(names)), 3.8))
    for i, model in enumerate(("sft_model", "rl_model")):
        values = {r["name"]: r["reward"] for r in rows if r["model"] == model}
        xs = [j + (i - 0.5) * 0.38 for j in range(len(names))]
        ax.bar(xs, [values.get(n, 0.0) for n in names], 0.38, label=model)
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=9)
    ax.set_ylabel("mean reward (held-out)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("rl: held-out tasks before and after")
    fig.tight_layout()
    return fig
