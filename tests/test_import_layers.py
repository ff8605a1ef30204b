"""The library's layers hold: `lint-imports` checks the contract in pyproject.toml
(``[tool.importlinter]``: pipelines → rl → critic/curation → agents/gym → judge →
tools/envs/training → llm/io/minhash → records and friends; a higher layer may import a lower
one, never the reverse), so a new upward import or a circle between packages fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_no_package_imports_a_higher_layer():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout
