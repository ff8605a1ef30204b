"""What the critic stage shows: agreement tables, MLflow metrics, a plot, judged pairs to read.

The headline is the critic's agreement with the gym verifiers on held-out tasks, before (the
untrained and the bootstrap-only critic) and after refinement, per domain; then its agreement
with the prescriptive rules (learned heads alone), its position-bias rate, and the rewards it
gives the policy's open answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from kimi_pipeline.critic.model import Critic, clip  # noqa: E402
from kimi_pipeline.critic.pairwise import judge_both_orders  # noqa: E402
from kimi_pipeline.records import PreferencePair  # noqa: E402

STEPS = ("untrained", "bootstrap", "refined")


def judged_sample(critic: Critic, pairs: Sequence[PreferencePair], size: int
                  ) -> list[dict[str, Any]]:
    """Held-out pairs (verifier first) as the critic judged them, readable in a JSONL file."""
    chosen = sorted((p for p in pairs if p.split == "heldout"),
                    key=lambda p: (p.source != "verifier", p.pair_id))[:size]
    items = [(p.prompt, p.chosen, p.rejected, tuple(p.rubrics), p.domain) for p in chosen]
    outcomes = judge_both_orders(critic, items)
    return [{"pair_id": p.pair_id, "source": p.source, "domain": p.domain,
             "prompt": clip(p.prompt, 400), "chosen": clip(p.chosen, 400),
             "rejected": clip(p.rejected, 400), "critic_winner":
             {"a": "chosen", "b": "rejected"}.get(o.winner, "tie"),
             "p_chosen": round(o.p_a, 3), "contradiction": o.contradiction, "reason": o.reason,
             "per_rubric": {k: {"a": "chosen", "b": "rejected"}.get(v, "tie")
                            for k, v in o.per_rubric.items()}}
            for p, o in zip(chosen, outcomes)]


def summarise(training: dict[str, Any], pair_stats: dict[str, Any], rewards: pl.DataFrame
              ) -> dict[str, Any]:
    """The report: agreement per step and domain, pair counts, reward statistics."""
    steps = training["steps"]
    table = {step: {"verifier": steps[step]["verifier"].get("accuracy"),
                    "verifier_strict": steps[step]["verifier"].get("strict_accuracy"),
                    "position_bias": steps[step]["verifier"].get("position_bias"),
                    "rule": steps[step].get("rule", {}).get("accuracy"),
                    "synthetic": steps[step].get("synthetic", {}).get("accuracy")}
             for step in STEPS if step in steps}
    refined = steps["refined"]["verifier"]
    domains = sorted(refined.get("domains", {}))
    per_domain = {d: {step: steps[step]["verifier"].get("domains", {}).get(d, {})
                      .get("accuracy") for step in STEPS if step in steps} for d in domains}
    by_category = (rewards.group_by("category").agg(
        pl.col("reward").mean().round(3).alias("mean_reward"),
        pl.col("reward").std().round(3).alias("reward_std"), pl.len().alias("candidates"))
        .sort("category").to_dicts() if rewards.height else [])
    return {"agreement": table, "agreement_by_domain": per_domain,
            "chance": 0.5, "pairs": training["pairs"],
            "verifier_measure": training.get("verifier_measure", "held-out split"),
            "heldout_verifier_pairs": training["heldout_verifier_pairs"],
            "heldout_verifier_tasks": training.get("heldout_verifier_tasks"),
            "rubric_verdicts": refined.get("rubric_verdicts", {}),
            "fit": {s: steps[s].get("fit") for s in STEPS if steps.get(s, {}).get("fit")},
            "pair_stats": pair_stats, "open_rewards": by_category}


def metrics(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """MLflow metrics (critic.agreement.<step>.<what>, critic.domain.<d>.<step>)."""
    out = {}
    for step, row in summary["agreement"].items():
        out.update({f"agreement.{step}.{k}": v for k, v in row.items() if v is not None})
    for domain, row in summary["agreement_by_domain"].items():
        out.update({f"domain.{domain}.{step}": v for step, v in row.items() if v is not None})
    out.update({f"pairs.{k.replace('/', '.')}": v for k, v in summary["pairs"].items()})
    return {k: {"value": float(v), "step": 0} for k, v in out.items()}


def agreement_plot(summary: dict[str, Any]):
    """Agreement with the verifiers per domain and overall, per step, against chance."""
    groups = [*summary["agreement_by_domain"], "all verifier", "rules (learned)"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(STEPS)
    for i, step in enumerate(STEPS):
        values = [summary["agreement_by_domain"][d].get(step) for d in groups[:-2]]
        row = summary["agreement"].get(step, {})
        values += [row.get("verifier"), row.get("rule")]
        xs = [g + (i - 1) * width for g in range(len(groups))]
        ax.bar(xs, [v if v is not None else 0 for v in values], width, label=step)
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.axhline(0.75, color="green", linestyle=":", linewidth=1, label="target 75%")
    ax.set_xticks(range(len(groups)), groups, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement on held-out pairs")
    ax.set_title("Critic agreement with the verifiers and the rules (ties count half)\n"
                 f"verifier pairs: {summary.get('verifier_measure', 'held-out split')}, "
                 f"{summary['heldout_verifier_pairs']} pairs", fontsize=10)
    ax.legend(fontsize=8, ncol=5, loc="lower right")
    fig.tight_layout()
    return fig
