"""The filtering report: the funnel as metrics and a plot, and the commonest judge failures."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def metrics(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    quality = summary["judge_quality"]
    values = {
        **{f"funnel.{k}": v for k, v in summary["funnel"].items()},
        **{f"judge.{k}": quality[k] for k in ("precision", "recall") if quality.get(k) is not None},
        "seconds": summary["seconds"],
    }
    agreement = quality.get("agreement_with_compare_judge") or {}
    if agreement.get("agreement") is not None:
        values["judge.agreement"] = agreement["agreement"]
    return {name: {"value": float(v), "step": 0} for name, v in values.items()}


def funnel_plot(funnel: dict[str, int]) -> Figure:
    """Bars: trajectories in, removed at each step, examples out."""
    labels = list(funnel)
    values = [funnel[k] for k in labels]
    colours = ["#4c72b0" if not k.startswith("removed") else "#dd8452" for k in labels]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.barh(labels[::-1], values[::-1], color=colours[::-1])
    for y, v in enumerate(values[::-1]):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_title("Filtering funnel: trajectories → SFT examples")
    fig.tight_layout()
    return fig
