"""Fingerprints of a stage's datasets, to show a refactor leaves the `test`-env outputs unchanged.

Each dataset becomes (rows, sha256 of its rows as JSON lines): columns that hold wall-clock
figures are dropped and floats are rounded, so the fingerprint names what was produced, not how
fast or on which CPU's rounding. `tests/data/test_env_outputs.json` holds the expected values;
a change of outputs that is meant regenerates it with
`KIMI_UPDATE_FINGERPRINTS=1 pytest tests/pipelines/filtering` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl

EXPECTED = Path(__file__).parent / "data" / "test_env_outputs.json"
DATASETS = ("tool_repository", "tool_quarantine", "tool_map", "agents", "tasks", "trajectories",
            "synthesis_quarantine", "sft_dataset", "filter_rejections")


def _is_timing(column: str) -> bool:
    return column.endswith("_s") or "latency" in column or column in ("created_at", "timestamp")


def fingerprint(frame: pl.DataFrame | pl.LazyFrame) -> list:
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    frame = frame.drop([c for c in frame.columns if _is_timing(c)])
    frame = frame.with_columns(pl.col(pl.Float32, pl.Float64).round(4))
    return [frame.height, hashlib.sha256(frame.write_ndjson().encode()).hexdigest()[:16]]


def check_outputs(catalog) -> None:
    """Compare the datasets' fingerprints with the stored ones (or store them when asked to)."""
    found = {name: fingerprint(catalog.load(name)) for name in DATASETS}
    if os.environ.get("KIMI_UPDATE_FINGERPRINTS") == "1":
        EXPECTED.write_text(json.dumps(found, indent=1) + "\n")
    expected = json.loads(EXPECTED.read_text())
    changed = {name: (expected.get(name), value) for name, value in found.items()
               if expected.get(name) != value}
    assert not changed, f"test-env outputs changed (expected, found): {changed}"
