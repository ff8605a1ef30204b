"""The synthesis report: dialogue shape (user turns, the share of multi-turn dialogues), tool
use, injected faults and imperfections, and how often the final state meets the rubric's state
predicates, by difficulty and persona."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kimi_pipeline.envs.state import check_predicate  # noqa: E402
from kimi_pipeline.records import StatePredicate  # noqa: E402

COLUMNS = ["trajectory_id", "messages", "rubric", "outcome", "final_state", "persona",
           "environment", "latency_s", "prompt_tokens", "completion_tokens"]


def trajectory_rows(trajectories: pl.LazyFrame, batch: int = 2000) -> Iterable[dict[str, Any]]:
    """Stream the columns the report needs, a batch at a time (memory stays flat)."""
    frame = trajectories.select(COLUMNS)
    total = frame.select(pl.len()).collect().item()
    for offset in range(0, total, batch):
        yield from frame.slice(offset, batch).collect().iter_rows(named=True)


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    n = 0
    turns, calls, latency = [], [], []
    end_reasons, faults, imperfections, corrections, errors, environments = (
        Counter() for _ in range(6)
    )
    meets = defaultdict(lambda: [0, 0])  # (group) -> [state predicates met, episodes]
    tokens = 0
    for row in rows:
        n += 1
        messages = json.loads(row["messages"])
        outcome = json.loads(row["outcome"])
        rubric = json.loads(row["rubric"])
        turns.append(sum(m["role"] == "user" for m in messages))
        calls.append(sum(len(m.get("tool_calls") or []) for m in messages))
        latency.append(row["latency_s"])
        tokens += row["prompt_tokens"] + row["completion_tokens"]
        end_reasons[outcome["end_reason"]] += 1
        faults.update(f.split(":")[-1] for f in outcome["injected_faults"])
        imperfections.update(outcome["agent_imperfections"])
        corrections.update(outcome.get("agent_corrections") or ())
        errors.update(e.split(":")[0] for e in outcome["errors"])
        environments[row["environment"]] += 1
        state = json.loads(row["final_state"])
        met = all(check_predicate(state, StatePredicate(**p)) for p in rubric["state_predicates"])
        for group in (f"difficulty={rubric['difficulty']}", f"persona={row['persona']}", "all"):
            meets[group][0] += met
            meets[group][1] += 1
    mean = lambda xs: round(sum(xs) / len(xs), 3) if xs else 0.0  # noqa: E731
    return {
        "trajectories": n,
        "user_turns_mean": mean(turns),
        "multi_turn_share": mean([t >= 2 for t in turns]),
        "tool_calls_mean": mean(calls),
        "tool_calls_histogram": dict(sorted(Counter(calls).items())),
        "user_turns_histogram": dict(sorted(Counter(turns).items())),
        "episode_latency_ms_mean": round(mean(latency) * 1000, 3),
        "tokens_total": tokens,
        "end_reasons": dict(end_reasons.most_common()),
        "injected_faults": dict(faults.most_common()),
        "agent_imperfections": dict(imperfections.most_common()),
        "agent_corrections": dict(corrections.most_common()),
        "recorded_errors": dict(errors.most_common()),
        "environments": dict(environments),
        "state_rubric_met_rate": {k: round(v[0] / v[1], 4) for k, v in sorted(meets.items())},
    }


def metrics(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    values = {
        "trajectories": report["trajectories"],
        "agents": report["agents"],
        "tasks": report["tasks"],
        "user_turns_mean": report["user_turns_mean"],
        "multi_turn_share": report.get("multi_turn_share", 0.0),
        "tool_calls_mean": report["tool_calls_mean"],
        "state_rubric_met_rate": report["state_rubric_met_rate"].get("all", 0.0),
        "quarantined": report["quarantined"],
        **{f"seconds.{k}": v for k, v in report.get("seconds", {}).items()},
        **{f"imperfection.{k}": v for k, v in report["agent_imperfections"].items()},
        **{f"corrected.{k}": v for k, v in report.get("agent_corrections", {}).items()},
        **{f"fault.{k}": v for k, v in report["injected_faults"].items()},
    }
    return {name: {"value": float(v), "step": 0} for name, v in values.items()}


def plots(report: dict[str, Any]) -> Figure:
    fig, axes = plt.subplots(2, 3, figsize=(18, 9))
    panels = [
        ("User turns per dialogue", report["user_turns_histogram"]),
        ("Tool calls per trajectory", report["tool_calls_histogram"]),
        ("How dialogues ended", report["end_reasons"]),
        ("Injected faults and imperfections",
         {**{f"fault:{k}": v for k, v in report["injected_faults"].items()},
          **{f"agent:{k}": v for k, v in report["agent_imperfections"].items()},
          **{f"corrected:{k}": v for k, v in report.get("agent_corrections", {}).items()}}),
        ("State rubric met, by difficulty",
         {k.split("=")[1]: v for k, v in report["state_rubric_met_rate"].items() if k.startswith("difficulty")}),
        ("State rubric met, by persona",
         {k.split("=")[1]: v for k, v in report["state_rubric_met_rate"].items() if k.startswith("persona")}),
    ]
    for ax, (title, counts) in zip(axes.flat, panels):
        labels = [str(k) for k in counts]
        ax.bar(labels, list(counts.values()), color="#4c72b0")
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.tight_layout()
    return fig
