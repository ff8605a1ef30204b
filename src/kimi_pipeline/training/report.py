"""What a training run reports: summary figures, MLflow metrics, the training-curve plot.

Per-step metrics reach MLflow live from the workers (``loop.MetricsSink``); this module
condenses them into the stage report (means over the steady state, the first step excluded
because it pays for start-up), a 2×3 figure people read faster than the numbers (loss and
held-out loss, learning rate, max attention logit; throughput, MFU and peak memory, each in its
own panel: MFU is throughput times a constant, so on a twin axis its line lay exactly on the
tokens/s line), and the evaluation table of the initial model against the trained one.
"""

from __future__ import annotations

import statistics
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _series(metrics: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in metrics if r.get(key) is not None]
    return [r["step"] for r in rows], [float(r[key]) for r in rows]


def _steady_mean(metrics: list[dict[str, Any]], key: str) -> float | None:
    _, values = _series(metrics[1:] or metrics, key)
    return statistics.fmean(values) if values else None


def training_summary(result: dict[str, Any]) -> dict[str, Any]:
    metrics = result.get("metrics", [])
    _, losses = _series(metrics, "loss")
    _, evals = _series(metrics, "eval_loss")
    return {
        "steps": result.get("steps"),
        "resumed_from_step": result.get("resumed_from_step"),
        "reused_finished_run": result.get("reused", False),
        "world_size": result.get("world_size"),
        "zero_stage": result.get("zero_stage"),
        "optimizer": result.get("optimizer"),
        "train_seconds": result.get("train_seconds"),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "first_eval_loss": evals[0] if evals else None,
        "final_eval_loss": evals[-1] if evals else None,
        "tokens_per_s": _steady_mean(metrics, "tokens_per_s"),
        "mfu": _steady_mean(metrics, "mfu"),
        "peak_flops": result.get("peak_flops"),
        "matmul_dtype": result.get("matmul_dtype"),
        "trainable_parameters": result.get("trainable_parameters"),
        "peak_memory_mb": max((r.get("peak_memory_mb", 0) for r in metrics), default=None),
        "max_attention_logit": max((r.get("max_attention_logit", 0) for r in metrics),
                                   default=None),
        "run_dir": result.get("run_dir"),
    }


def report_metrics(summary: dict[str, Any], packing: dict[str, dict[str, float]],
                   evaluation: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Flat summary metrics (step 0) for MLflow; per-step curves were logged by the workers."""
    values: dict[str, float] = {}
    for key in ("final_loss", "final_eval_loss", "tokens_per_s", "mfu", "peak_memory_mb",
                "max_attention_logit", "train_seconds"):
        if isinstance(summary.get(key), (int, float)):
            values[key] = summary[key]
    values["packing_efficiency"] = packing["train"]["efficiency"]
    mixed = packing.get("demonstrations", {})
    values["demonstrations"] = mixed.get("distinct", 0)
    values["demonstration_share"] = mixed.get("share", 0.0)
    for model, figures in evaluation.items():
        for key, value in figures.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values[f"eval.{model}.{key}"] = value
    return {name: {"value": float(v), "step": 0} for name, v in values.items()}


def training_figure(metrics: list[dict[str, Any]], title: str = "SFT") -> Figure:
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    (loss_ax, lr_ax, logit_ax), (speed_ax, mfu_ax, memory_ax) = axes
    _loss_panel(loss_ax, metrics)
    for ax, key, label, color in (
        (lr_ax, "lr", "learning rate", "tab:blue"),
        (logit_ax, "max_attention_logit", "max attention logit", "tab:red"),
        (speed_ax, "tokens_per_s", "tokens/s", "tab:green"),
        (mfu_ax, "mfu", "MFU (% of peak FLOP/s)", "tab:purple"),
        (memory_ax, "peak_memory_mb", "peak memory (MiB)", "tab:gray"),
    ):
        steps, values = _series(metrics, key)
        if key == "mfu":
            values = [100 * v for v in values]
        ax.plot(steps, values, lw=1, color=color)
        ax.set(title=label, xlabel="step")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _loss_panel(ax, metrics: list[dict[str, Any]]) -> None:
    every = [r for r in metrics if r.get("all_tokens")]
    if every:  # the all-token phase's loss is over every token, the rest over assistant tokens
        ax.plot(*_series(every, "loss"), label="train, every token", lw=1)
    ax.plot(*_series([r for r in metrics if not r.get("all_tokens")], "loss"),
            label="train, assistant tokens" if every else "train", lw=1)
    ax.plot(*_series(metrics, "eval_loss"), "o-", label="held-out", ms=3)
    ax.set(title="loss", xlabel="step")
    ax.legend()
