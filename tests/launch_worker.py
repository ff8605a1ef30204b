"""A stand-in training worker for ``tests/training/test_launch.py``: what ``training.launch``
starts, minus the training. ``LAUNCH_WORKER`` picks its behaviour: ``ok`` writes
``result.json`` (its argv and the environment it was started with), ``fail`` prints a line and
dies with an error, ``silent`` exits 0 without a result. It lives outside ``tests.training``
(whose ``__init__`` loads transformers) and imports nothing heavy, so a launch takes a second."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SEEN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "DS_ACCELERATOR",
        "MALLOC_TRIM_THRESHOLD_")


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    mode = os.environ.get("LAUNCH_WORKER", "ok")
    print(f"worker {mode}: loading {spec['initial_model']}", flush=True)
    if mode == "fail":
        sys.exit("worker error: the initial model has no config.json")
    if mode == "ok":
        result = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in SEEN},
                  "run_dir": spec["run_dir"]}
        (Path(spec["run_dir"]) / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
