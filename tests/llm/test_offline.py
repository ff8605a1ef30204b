"""The offline programs live apart from the production path: each role's program sits in an
``offline/`` subpackage, the stage code never imports one, and the offline backend finds every
role's program on first use."""

from __future__ import annotations

import json
import subprocess
import sys

from kimi_pipeline.llm.offline import ROLE_MODULES

PRODUCTION = ("kimi_pipeline.tools.evolve", "kimi_pipeline.agents.synthesis",
              "kimi_pipeline.curation.filtering", "kimi_pipeline.gym.run",
              "kimi_pipeline.critic.run", "kimi_pipeline.rl.run", "kimi_pipeline.pipeline_registry")


def test_every_role_program_lives_in_an_offline_subpackage():
    assert all(".offline." in module for module in ROLE_MODULES.values())


def test_stage_code_imports_no_offline_program_until_the_offline_backend_needs_one():
    code = (
        "import importlib, json, sys\n"
        f"for name in {PRODUCTION!r}: importlib.import_module(name)\n"
        "before = sorted(m for m in sys.modules if '.offline.' in m)\n"
        "from kimi_pipeline.llm.base import ChatRequest, OfflineBackendConfig, make_backend\n"
        "from kimi_pipeline.llm.offline import ROLE_MODULES, _PROGRAMS\n"
        "for role in ROLE_MODULES: _PROGRAMS.lookup(role)\n"
        "after = sorted(m for m in sys.modules if '.offline.' in m)\n"
        "print(json.dumps([before, after]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == []
    assert set(ROLE_MODULES.values()) <= set(after)

