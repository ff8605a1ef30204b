"""SFT runs through real DeepSpeed workers on CPU: ZeRO 0/2/3, two processes, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

from kimi_pipeline.gym.demos import demonstration
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.records import GymTask, SftExample, to_frame
from kimi_pipeline.training import sft
from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model
from kimi_pipeline.training.chat import render_with_mask
from kimi_pipeline.training.launch import command, free_port, worker_env
from tests.training import TOOLS, conversation

pytestmark = pytest.mark.slow

NAMES = ["Zoë", "Ana", "Björn", "李雷", "Omar", "Élodie", "Kwame", "Maya", "Ivo", "Sun"]


def sft_frame(n: int = 60) -> pl.DataFrame:
    rows = []
    for i in range(n):
        name = f"{NAMES[i % len(NAMES)]}{i}"
        rows.append({
            "example_id": f"ex{i:03d}", "trajectory_id": f"t{i}", "agent_id": f"a{i % 6}",
            "split": "validation" if i % 6 == 5 else "train",
            "messages": json.dumps(conversation(name)), "tools": json.dumps(TOOLS),
            "judge_score": 1.0, "domain": "orders", "persona": "terse",
        })
    return pl.DataFrame(rows)


TINY = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2,
        "num_heads": 2, "num_kv_heads": 2, "max_position_embeddings": 512}


def base_model(tmp_path, frame: pl.DataFrame | None = None) -> ModelFolder:
    """The tiny from-config base model (tokenizer trained on the frame) as a model folder."""
    return save_base_model(BaseModelConfig(source="config", from_config=TINY),
                           sft_frame() if frame is None else frame, tmp_path / "base_model")


def prepare(frame: pl.DataFrame, cfg: sft.SftConfig, tmp_path) -> sft.PreparedRun:
    return sft.prepare_run(frame, base_model(tmp_path), cfg)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forks only on Linux")
def test_examples_rendered_over_forked_processes_are_those_rendered_in_one(tmp_path,
                                                                           monkeypatch):
    frame = sft_frame(1200)  # enough rows to split over two processes
    tokenizer = base_model(tmp_path, frame.head(60)).load_tokenizer()
    calls: list[int] = []
    forked = sft.run_forked
    monkeypatch.setattr(sft, "run_forked", lambda parts: calls.append(len(parts)) or forked(parts))
    monkeypatch.setattr(sft, "usable_cores", lambda: 2)
    rendered = sft._rendered(frame, tokenizer, "auto")
    assert calls == [2]
    assert rendered == [render_with_mask(tokenizer, json.loads(m), json.loads(t), method="auto")
                        for m, t in zip(frame["messages"], frame["tools"])]


def config(tmp_path, **train) -> sft.SftConfig:
    return sft.SftConfig.model_validate({
        "train": {"seq_len": 256, "micro_batch_size": 2, "max_steps": 6, "warmup_steps": 1,
                  "eval_every": 3, "eval_rows": 4, "checkpoint_every": 3, **train},
        "optimizer": {"name": "adamw", "lr": 0.01},
        "engine": {"deepspeed_config": "conf/base/deepspeed/zero2.json"},
        "runs_dir": str(tmp_path / "runs"), "progress": False,
    })


@pytest.fixture
def repo_root(monkeypatch):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monkeypatch.chdir(root)
    return root


def weights(result: dict) -> dict[str, torch.Tensor]:
    return load_file(os.path.join(result["final_model"], "model.safetensors"))


def _losses(result: dict) -> list[float]:
    return [row["loss"] for row in result["metrics"] if "loss" in row]


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_each_zero_stage_trains_and_saves_a_loadable_model(tmp_path, repo_root, stage):
    cfg = config(tmp_path)
    cfg.engine.zero_stage = stage
    prepared = prepare(sft_frame(), cfg, tmp_path)
    result = sft.train(prepared, cfg)
    losses = _losses(result)
    assert result["zero_stage"] == stage and result["steps"] == 6 and len(losses) == 6
    assert losses[-1] < losses[0]
    last = result["metrics"][-1]
    for key in ("lr", "grad_norm", "tokens_per_s", "mfu", "eval_loss", "peak_memory_mb",
                "max_attention_logit"):
        assert key in last and last[key] == last[key], key  # present and not NaN
    model = prepared.initial.__class__(prepared.run_dir / "final").load_model()
    assert sum(p.numel() for p in model.parameters()) > 0
    initial = load_file(str(prepared.initial.path / "model.safetensors"))
    trained = weights(result)
    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)


@pytest.mark.parametrize("stage", [2, 3])
def test_lora_trains_adapters_and_saves_them_merged_into_the_checkpoint(tmp_path, repo_root,
                                                                          stage):
    cfg = config(tmp_path, lora={"rank": 4, "alpha": 8})
    cfg.engine.zero_stage = stage
    prepared = prepare(sft_frame(), cfg, tmp_path)
    result = sft.train(prepared, cfg)
    losses = _losses(result)
    assert losses[-1] < losses[0]
    initial = load_file(str(prepared.initial.path / "model.safetensors"))
    trained = weights(result)
    assert trained.keys() == initial.keys()  # a plain checkpoint: no adapter tensors left
    total = sum(t.numel() for t in initial.values())
    assert 0 < result["trainable_parameters"] < total / 5
    changed = {k for k in trained if not torch.equal(trained[k], initial[k])}
    assert "model.embed_tokens.weight" not in changed  # frozen, not adapted
    assert any(k.endswith("self_attn.q_proj.weight") for k in changed)
    assert any(k.endswith("mlp.down_proj.weight") for k in changed)
    assert not any("norm" in k for k in changed)


def test_lora_and_trainable_layers_together_are_refused(tmp_path):
    with pytest.raises(ValueError, match="lora or trainable_layers"):
        config(tmp_path, lora={"rank": 4}, trainable_layers=1)


@pytest.mark.parametrize("optimizer", [{"name": "muonclip"}, {"name": "adamw", "qk_clip_tau": 50}])
def test_lora_with_qk_clip_is_refused(optimizer):
    with pytest.raises(ValueError, match="QK-Clip"):
        sft.SftConfig.model_validate({"train": {"lora": {"rank": 4}}, "optimizer": optimizer})


def test_shared_prefixes_with_a_maskless_flash_kernel_are_refused():
    with pytest.raises(ValueError, match="share_prefixes needs an attention kernel"):
        sft.SftConfig.model_validate({"attn_implementation": "flash_attention_2",
                                      "share_prefixes": True})
    sft.SftConfig.model_validate({"attn_implementation": "flash_attention_2"})  # off: fine


def test_two_process_zero3_matches_one_process(tmp_path, repo_root):
    """Same global batch (2 rows × 2): 1 process × 2 accumulation steps vs 2 processes × 1."""
    one = config(tmp_path / "one", accumulation=2, max_steps=4)
    one.engine.zero_stage = 3
    two = config(tmp_path / "two", accumulation=1, max_steps=4)
    two.engine.zero_stage, two.engine.num_processes = 3, 2
    first = sft.train(prepare(sft_frame(), one, tmp_path), one)
    second = sft.train(prepare(sft_frame(), two, tmp_path), two)
    assert second["world_size"] == 2
    assert _losses(first) == pytest.approx(_losses(second), rel=1e-4)
    a, b = weights(first), weights(second)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@pytest.mark.parametrize("lora", [None, {"rank": 4, "alpha": 8}], ids=["full", "lora"])
def test_kill_minus_nine_then_resume_gives_bitwise_the_same_weights(tmp_path, repo_root, lora):
    """conf/base trains LoRA adapters, the gpu env every weight: both resume exactly."""
    steps, all_tokens = 40, 10  # the restart lands before or after the all-token phase ends
    straight_cfg = config(tmp_path / "straight", max_steps=steps, checkpoint_every=4, epochs=4,
                          all_token_steps=all_tokens, lora=lora)
    straight = sft.train(prepare(sft_frame(), straight_cfg, tmp_path), straight_cfg)
    rows = [row for row in straight["metrics"] if "loss" in row]
    assert [row["all_tokens"] for row in rows] == [1.0] * all_tokens + [0.0] * (steps - all_tokens)
    labelled = [row["label_tokens"] / row["tokens"] for row in rows]
    assert min(labelled[:all_tokens]) > 0.9  # every token but example starts
    assert max(labelled[all_tokens:]) < 0.6  # assistant tokens only (about 44% here)

    cfg = config(tmp_path / "killed", max_steps=steps, checkpoint_every=4, epochs=4,
                 all_token_steps=all_tokens, lora=lora)
    prepared = prepare(sft_frame(), cfg, tmp_path)
    (prepared.run_dir / "spec.json").write_text(prepared.spec.model_dump_json())
    port = free_port()
    env = {**worker_env(cfg.engine, cuda=False), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"}
    proc = subprocess.Popen(command(prepared.run_dir / "spec.json", cfg.engine, port), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = prepared.run_dir / "checkpoints" / "latest"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step0000008":
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait() == -signal.SIGKILL, "the worker finished before it could be killed"
    assert not (prepared.run_dir / "result.json").exists()

    assert latest.exists()  # the killed run's checkpoints are there to resume from
    resumed = sft.train(prepared, cfg)
    assert straight["steps"] == resumed["steps"] == steps
    for finished in (straight, resumed):  # a finished run keeps final/, not its checkpoints
        assert not (Path(finished["run_dir"]) / "checkpoints").exists()
        assert (Path(finished["run_dir"]) / "final" / "config.json").exists()
    assert 8 <= resumed["resumed_from_step"] < steps
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # metrics of the steps redone after the crash are kept once
    assert [row["step"] for row in resumed["metrics"] if "loss" in row] == list(range(1, steps + 1))


def test_a_finished_run_is_reused_not_retrained(tmp_path, repo_root):
    cfg = config(tmp_path, max_steps=2)
    prepared = prepare(sft_frame(), cfg, tmp_path)
    first = sft.train(prepared, cfg)
    again = sft.train(prepare(sft_frame(), cfg, tmp_path), cfg)
    assert not first["reused"] and again["reused"]
    assert again["run_dir"] == first["run_dir"]


def test_missing_deepspeed_config_names_the_file(tmp_path, repo_root):
    cfg = config(tmp_path)
    cfg.engine.deepspeed_config = "conf/base/deepspeed/nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        prepare(sft_frame(), cfg, tmp_path)


def test_dataset_without_train_examples_is_a_clear_error(tmp_path, repo_root):
    frame = sft_frame().with_columns(pl.lit("validation").alias("split"))
    with pytest.raises(ValueError, match="no 'train' examples"):
        sft.prepare_run(frame, base_model(tmp_path), config(tmp_path))


def test_an_all_token_phase_as_long_as_the_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="all_token_steps .6. must be below max_steps .6."):
        config(tmp_path, all_token_steps=6)


def demos_frame() -> pl.DataFrame:
    """Two verified demonstrations (gym/demos.py's format) and one validation row to ignore."""
    rows = [demonstration(GymTask(task_id=f"math-{i}", domain="math", prompt=f"What is {i}+{i}?",
                                  answer=str(2 * i)), 0, f"It is {2 * i}.", 1.0, None)
            for i in (3, 4, 5)]
    rows[2] = rows[2].model_copy(update={"split": "validation"})
    return to_frame(rows, SftExample)


def test_demonstrations_are_mixed_in_at_their_share_with_labels_on_the_answer(tmp_path):
    frame = sft_frame()
    cfg = config(tmp_path).model_copy(update={"demo_share": 0.2})
    run = sft.prepare_run(frame, base_model(tmp_path), cfg, demos=demos_frame())

    # 50 tool-use train rows; 0.2 of the mix is 12.5 demonstration examples: 2 x 6 repeats
    assert run.packing["demonstrations"] == {"distinct": 2, "repeats": 6, "examples": 12,
                                             "share": round(12 / 62, 4)}
    assert run.packing["train"]["examples"] == 62
    assert run.packing["validation"] == prepare(frame, config(tmp_path / "b"), tmp_path / "b"
                                                ).packing["validation"]
    tokenizer = ModelFolder(run.spec.tokenizer).load_tokenizer()
    rows = torch.load(run.run_dir / "train.pt")
    learnt = tokenizer.decode([t for t, label in zip(rows["input_ids"].flatten().tolist(),
                                                     rows["labels"].flatten().tolist())
                               if label != -100])
    assert learnt.count("It is 6.") == 6 and learnt.count("It is 8.") == 6
    assert "What is 3+3?" not in learnt and "It is 10." not in learnt  # prompts; validation row


def test_no_demonstrations_or_share_zero_leaves_the_training_set_alone(tmp_path):
    frame = sft_frame()
    plain = prepare(frame, config(tmp_path / "a"), tmp_path / "a")
    off = sft.prepare_run(frame, base_model(tmp_path / "b"), config(tmp_path / "b"),
                          demos=demos_frame())  # demo_share 0 by default
    assert off.packing == plain.packing and off.run_dir.name == plain.run_dir.name
    assert plain.packing["demonstrations"]["examples"] == 0
