"""The RL worker on a tiny model through real DeepSpeed: kill -9 and exact resume, PTX mixing,
sampler/trainer log-prob agreement, budget truncation in the logged samples."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.rl import run
from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.prompts import PromptPool, gym_prompt
from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model
from kimi_pipeline.training.launch import command, free_port, worker_env
from tests.training.test_sft_run import TINY, sft_frame

pytestmark = pytest.mark.slow


@pytest.fixture
def repo_root(monkeypatch):
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    return root


def pool() -> PromptPool:
    tasks = get_domain("math").generate(random.Random(0), 6, 1)
    return PromptPool([gym_prompt(t, 0.5, None) for t in tasks], [])


def config(tmp_path: Path, **overrides) -> RLConfig:
    """Short answers of a random tiny model: the verifier gives 0, so the signal comes from
    the length reward (on from the first iteration) and the truncation penalty."""
    base = {
        "train": {"iterations": 3, "samples": 2, "micro_batches": 2, "seed": 1,
                  "autocast": "none"},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "engine": {"deepspeed_config": "conf/base/deepspeed/zero2.json"},
        "sampler": {"prompts_per_iteration": 3, "source_shares": {"verifier": 1.0}},
        "budget": {"max_tokens": {"default": 6}, "truncation_penalty": 0.5,
                   "length_reward": {"enabled": True, "warmup_iterations": 0}},
        "ptx": {"weight": 0.1, "rows_per_update": 2, "seq_len": 128},
        "critic": {"refresh_every": 0},
        "runs_dir": str(tmp_path / "runs"), "progress": False,
    }
    for key, value in overrides.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return RLConfig.model_validate(base)


def prepare(tmp_path: Path, cfg: RLConfig):
    model = save_base_model(BaseModelConfig(source="config", from_config=TINY), sft_frame(),
                            tmp_path / "base_model")
    return run.prepare_run(model, pool(), sft_frame(), None, cfg)


def weights(result: dict) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(result["final_model"], "model.safetensors"))


def test_kill_minus_nine_then_resume_gives_bitwise_the_same_policy(tmp_path, repo_root):
    """The top block trained, as conf/base trains the top 10 of 30: checkpoints leave the
    frozen block out, and the resumed run gets it back from the SFT model."""
    top = {"train": {"trainable_layers": 1}}
    straight = run.train(prepare(tmp_path / "a", config(tmp_path / "a", **top)))
    assert straight["iterations"] == 3 and straight["resumed_from_iteration"] == 0
    rows = straight["metrics"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["sampler_trainer_abs_logprob_gap"] < 1e-4 for r in rows)  # fp32: same numbers
    assert all(r["policy_tokens"] <= 3 * 2 * 6 for r in rows)  # budgets count policy tokens only
    assert any(r["truncation_rate"] > 0 for r in rows)
    samples = run.read_samples(straight["run_dir"])
    assert samples and all(s["shaped"]["truncation"] == (-0.5 if s["truncated"] else 0.0)
                           for s in samples)

    cfg = config(tmp_path / "b", **top)
    spec = prepare(tmp_path / "b", cfg)
    spec_path = Path(spec.run_dir) / "spec.json"
    spec_path.write_text(spec.model_dump_json())
    port = free_port()
    env = {**worker_env(cfg.engine, cuda=False), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    proc = subprocess.Popen(command(spec_path, cfg.engine, port, "kimi_pipeline.rl.loop"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = Path(spec.run_dir) / "checkpoints" / "latest"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "iter00001":
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "the worker finished before it could be killed"
    tag = latest.parent / latest.read_text().strip()
    saved = torch.load(tag / "mp_rank_00_model_states.pt", weights_only=False)["module"]
    assert saved and all(".layers.1." in k or k.endswith("norm.weight") for k in saved)
    resumed = run.train(spec)
    assert 1 <= resumed["resumed_from_iteration"] < 3
    assert not latest.exists()  # finished: the checkpoints are gone, final/ is the model
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in resumed["metrics"]] == [1, 2, 3]
    assert [r["reward/total"] for r in resumed["metrics"]] == [r["reward/total"] for r in rows]
    assert run.read_samples(resumed["run_dir"]) == samples  # redone iterations logged once


def test_ptx_loss_moves_the_policy_when_the_rewards_carry_no_signal(tmp_path, repo_root):
    """Verifier rewards 0 for every sample, no length reward and no truncation penalty: the
    policy loss has no gradient, so only the PTX term can change the weights."""
    flat = {"length_reward": {"enabled": False}, "truncation_penalty": 0.0,
            "max_tokens": {"default": 6}}
    moved = {}
    for weight in (0.0, 0.5):
        cfg = config(tmp_path / str(weight), budget=flat, ptx={"weight": weight},
                     train={"iterations": 1}, optimizer={"weight_decay": 0.0})
        result = run.train(prepare(tmp_path / str(weight), cfg))
        initial = load_file(str(tmp_path / str(weight) / "base_model" / "model.safetensors"))
        final = weights(result)
        moved[weight] = any(not torch.equal(final[k], initial[k]) for k in initial)
        assert all(r["reward/total"] == 0.0 for r in result["metrics"])
        assert ("ptx_loss" in result["metrics"][0]) == (weight > 0)
    assert moved == {0.0: False, 0.5: True}


def test_the_run_folder_is_reused_once_finished(tmp_path, repo_root):
    cfg = config(tmp_path, train={"iterations": 1})
    spec = prepare(tmp_path, cfg)
    first = run.train(spec)
    again = run.train(spec)
    assert not first["reused"] and again["reused"]
    assert json.loads((Path(spec.run_dir) / "result.json").read_text())["iterations"] == 1


def test_two_processes_split_the_prompts_and_train_one_policy(tmp_path, repo_root):
    """Two DeepSpeed processes (gloo): each samples and scores its share of an iteration's
    prompts (the success rates steering the next draw are merged across ranks), the update
    averages their gradients, rank 0 writes the model."""
    cfg = config(tmp_path, engine={"num_processes": 2}, train={"iterations": 2},
                 critic={"refresh_every": 0})
    result = run.train(prepare(tmp_path, cfg))
    assert result["world_size"] == 2 and result["iterations"] == 2
    assert [r["step"] for r in result["metrics"]] == [1, 2]
    assert weights(result)  # rank 0 wrote the consolidated model


def test_grpo_with_a_kl_penalty_trains_against_a_frozen_reference(tmp_path, repo_root):
    cfg = config(tmp_path, objective={"name": "grpo", "kl_coef": 0.1},
                 train={"iterations": 1})
    result = run.train(prepare(tmp_path, cfg))
    row = result["metrics"][0]
    assert 0.0 <= row["clip_fraction"] <= 1.0 and math.isfinite(row["loss"])
