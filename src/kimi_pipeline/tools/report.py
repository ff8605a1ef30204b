"""The tool-repository report: counts, fixes, quarantine reasons, server health, and plots."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from kimi_pipeline.records import QuarantineRecord, ToolSpec  # noqa: E402

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\d+(\.\d+)?")


def reason_kind(reason: str) -> str:
    """A quarantine reason with its specifics blanked, so reasons can be counted by kind."""
    return _QUOTED.sub("…", reason.split(":")[0] if ":" in reason[:60] else reason)[:80]


def fix_kind(fix: str) -> str:
    """'parameters.properties.x.type: 'float' -> 'number'' → 'type: float -> number'."""
    path, _, change = fix.partition(": ")
    return f"{path.rsplit('.', 1)[-1]}: {change.replace(chr(39), '')}"[:80] if change else fix[:80]


def build_report(
    tools: list[ToolSpec],
    rejected: list[QuarantineRecord],
    servers: list[dict[str, Any]],
    stats: dict[str, Any],
) -> dict[str, Any]:
    by_source = Counter(t.source for t in tools)
    return {
        "tools": len(tools),
        "by_source": dict(by_source),
        "by_category": dict(Counter(t.category for t in tools).most_common()),
        "domains": len({t.domain for t in tools}),
        "tools_with_fixes": sum(bool(t.fixes) for t in tools),
        "fixes_by_kind": dict(Counter(fix_kind(f) for t in tools for f in t.fixes).most_common(30)),
        "quarantined": len(rejected),
        "quarantine_by_step": dict(Counter(r.step for r in rejected)),
        "quarantine_by_reason": dict(Counter(reason_kind(r.reason) for r in rejected).most_common(30)),
        "mcp_servers": servers,
        "source_failures": source_failures(servers),
        **stats,
    }


def source_failures(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The failed sources, one entry each (source, name, command, reason), for the summary."""
    return [
        {"source": "mcp", "name": s["name"], "command": s["command"], "reason": s["error"]}
        for s in servers if not s["ok"]
    ]


def source_failures_tag(report: dict[str, Any]) -> str:
    """The failures as one MLflow tag value ('name: reason; …'), empty when there are none."""
    return "; ".join(f"{f['source']}:{f['name']}: {f['reason']}" for f in report["source_failures"])[:5000]


def report_metrics(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Scalar metrics for MLflow (kedro-mlflow MlflowMetricsHistoryDataset format)."""
    values = {
        "tools": report["tools"],
        "domains": report["domains"],
        "quarantined": report["quarantined"],
        "tools_with_fixes": report["tools_with_fixes"],
        "mcp_servers_ok": sum(s["ok"] for s in report["mcp_servers"]),
        "mcp_servers_failed": sum(not s["ok"] for s in report["mcp_servers"]),
        "source_failures": len(report.get("source_failures", [])),
        **{f"source.{k}": v for k, v in report["by_source"].items()},
        **{k: report[k] for k in ("exact_duplicates_merged", "near_duplicates_merged") if k in report},
        **{f"seconds.{k}": v for k, v in report.get("seconds", {}).items()},
    }
    return {name: {"value": float(v), "step": 0} for name, v in values.items()}


def map_plot(rows: list[dict[str, Any]]) -> Figure:
    """The repository's 2-D map coloured by source (K2's real-vs-synthetic t-SNE)."""
    fig, ax = plt.subplots(figsize=(8, 7))
    colours = {"synthetic": "#9aa5b1", "file": "#e4572e", "mcp": "#1f77b4"}
    for source in ("synthetic", "file", "mcp"):
        points = [r for r in rows if r["source"] == source]
        if points:
            ax.scatter(
                [p["x"] for p in points], [p["y"] for p in points],
                s=6 if source == "synthetic" else 28, alpha=0.5 if source == "synthetic" else 0.9,
                c=colours[source], label=f"{source} ({len(points)})", edgecolors="none",
            )
    ax.set_title("Tool repository map: real (MCP, files) vs synthetic tools")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", markerscale=2)
    return fig


def counts_plot(report: dict[str, Any]) -> Figure:
    """Three panels: tools by source, tools by category, quarantine by reason."""
    fig, axes = plt.subplots(1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [1, 2.2, 2.2]})
    panels = [
        ("Tools by source", report["by_source"]),
        ("Tools by category", {str(k): v for k, v in report["by_category"].items()}),
        ("Quarantine by reason", report["quarantine_by_reason"]),
    ]
    for ax, (title, counts) in zip(axes, panels):
        labels = list(counts)[:25][::-1]
        ax.barh(labels, [counts[k] for k in labels], color="#4c72b0")
        ax.set_title(title)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig
