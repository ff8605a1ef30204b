"""Optimizer registry: parameter split, clear errors, and real DeepSpeed engines on CPU.

The DeepSpeed runs happen in one subprocess per test module (torch.distributed can be set up
once per process); it trains a tiny Llama for 10 steps per (optimizer, ZeRO stage) and checks
that a Muon matrix's first step is exactly ``-lr·0.2·sqrt(max(out, in))·NS(grad)``.
``TORCHDYNAMO_DISABLE=1`` runs DeepSpeed's ``torch.compile``-d Muon kernel eagerly (same math,
no minute-long inductor compile on CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.training.optim import (
    OptimizerConfig,
    OptimizerUnavailableError,
    merge_ds_config,
    muon_lr_factor,
    prepare_optimizer,
    split_muon_params,
)
from tests.training import single_process_group

REPO = Path(__file__).resolve().parents[2]
RUNS = [
    ("adamw", 0), ("adamw", 2), ("adamw", 3),
    ("muon", 0), ("muon", 1), ("muon", 2), ("muon", 3),
    ("muonclip", 2),
    ("deepspeed_fused_adam", 0), ("deepspeed_fused_adam", 2), ("deepspeed_fused_adam", 3),
]


def tiny_llama(**overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = dict(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2,
    )
    return LlamaForCausalLM(LlamaConfig(**{**config, **overrides}))


@pytest.mark.parametrize("tied", [False, True])
def test_split_sends_embeddings_head_norms_biases_to_adamw(tied):
    model = tiny_llama(attention_bias=True, mlp_bias=True, tie_word_embeddings=tied)
    muon, adamw = split_muon_params(model)
    assert set(muon) | set(adamw) == {n for n, _ in model.named_parameters()}
    assert not set(muon) & set(adamw)
    assert all(p.ndim == 2 for p in muon.values())
    assert all(n.startswith("model.layers.") and n.endswith("proj.weight") for n in muon)
    assert len(muon) == 2 * 7  # q, k, v, o, gate, up, down per layer
    assert "model.embed_tokens.weight" in adamw
    assert ("lm_head.weight" in adamw) is not tied  # tied head = the embedding parameter
    assert {n for n in adamw if "norm" in n} and {n for n in adamw if n.endswith(".bias")}


def test_apex_absent_gives_a_clear_error():
    with pytest.raises(OptimizerUnavailableError) as info:
        prepare_optimizer(tiny_llama(), OptimizerConfig(name="apex_fused_adam"), 0)
    message = str(info.value)
    assert "apex" in message and "not on PyPI" in message and "github.com/NVIDIA/apex" in message
    assert "'adamw'" in message


def test_unknown_name_and_extra_fields_are_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'"):
        prepare_optimizer(tiny_llama(), OptimizerConfig(name="sgd"), 0)
    with pytest.raises(ValueError):
        OptimizerConfig(name="adamw", learning_rate=1.0)


def test_adamw_is_fused_on_cpu_and_described_for_mlflow():
    setup = prepare_optimizer(tiny_llama(), OptimizerConfig(name="adamw", lr=1e-3), 2)
    assert setup.optimizer.defaults["fused"] is True and setup.ds_config == {}
    params = setup.describe()
    assert params["optim/optimizer"] == "adamw" and params["optim/fused"] == "True"
    assert params["optim/lr"] == 1e-3 and params["optim/qk_clip_tau"] == "off"
    no_decay = [g for g in setup.model_parameters if g["weight_decay"] == 0.0]
    assert all(p.ndim == 1 for g in no_decay for p in g["params"])


def test_muon_groups_tags_and_description():
    model = tiny_llama()
    setup = prepare_optimizer(model, OptimizerConfig(name="muonclip", lr=1e-3), 3)
    muon, adamw = split_muon_params(model)
    assert all(p.use_muon for p in muon.values()) and not any(p.use_muon for p in adamw.values())
    groups = {g["name"]: g for g in setup.model_parameters}
    assert groups["muon-64x64"]["lr"] == pytest.approx(1e-3 * 0.2 * 8)
    assert groups["muon-128x64"]["lr"] == pytest.approx(1e-3 * 0.2 * 128**0.5 / 2**0.5)
    zero3 = {"gradient_clipping": 0.0, "zero_optimization": {"reduce_scatter": False}}
    assert setup.ds_config == zero3
    params = setup.describe()
    assert params["optim/muon_params"] == sum(p.numel() for p in muon.values())
    assert params["optim/adamw_params"] == sum(p.numel() for p in adamw.values())
    assert params["optim/qk_clip_tau"] == 100.0 and setup.qk_clip.tau == 100.0


def test_lr_factor_matches_adamw_rms_rule():
    # DeepSpeed's update carries sqrt(max(1, out/in)); the product must be 0.2*sqrt(max(out, in))
    for shape in [(64, 64), (128, 64), (64, 128), (32, 64)]:
        applied = muon_lr_factor(shape, "match_rms_adamw") * max(1.0, shape[0] / shape[1]) ** 0.5
        assert applied == pytest.approx(0.2 * max(shape) ** 0.5)
    assert muon_lr_factor((128, 64), "original") == 1.0


def test_merge_ds_config_is_deep():
    base = {"zero_optimization": {"stage": 3}, "gradient_clipping": 1.0}
    merged = merge_ds_config(base, {"zero_optimization": {"reduce_scatter": False}})
    assert merged["zero_optimization"] == {"stage": 3, "reduce_scatter": False}
    assert base["zero_optimization"] == {"stage": 3}


@pytest.fixture(scope="module")
def deepspeed_runs() -> dict:
    env = {**os.environ, "TORCHDYNAMO_DISABLE": "1", "DS_ACCELERATOR": "cpu",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    spec = json.dumps(RUNS)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.test_optim", spec],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,stage", RUNS)
def test_optimizer_trains_under_deepspeed(deepspeed_runs, name, stage):
    run = deepspeed_runs[f"{name}/{stage}"]
    losses = run["losses"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert sum(b < a for a, b in zip(losses, losses[1:])) >= 8, losses
    if name.startswith("muon"):
        # the first step of q_proj is Muon's: orthogonalised gradient at the AdamW-matched lr
        # (Newton-Schulz runs in bf16: AMX and AVX2 kernels round it differently, cos ≈ 0.9996)
        assert run["muon_cosine"] > 0.999 and run["muon_norm_ratio"] == pytest.approx(1, abs=1e-2)


def _worker(runs: list[tuple[str, int]]) -> dict:
    import deepspeed

    single_process_group()
    return {f"{name}/{stage}": _train(deepspeed, name, stage) for name, stage in runs}


def _train(deepspeed, name: str, stage: int) -> dict:
    from deepspeed.runtime.zero.muon.original_muon import zeropower_via_gram_newtonschulz

    model = tiny_llama()
    batch = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(1))
    model(input_ids=batch, labels=batch).loss.backward()
    q_proj = model.model.layers[0].self_attn.q_proj.weight
    grad, before = q_proj.grad.clone(), q_proj.detach().clone()
    model.zero_grad(set_to_none=True)
    lr = 3e-3
    setup = prepare_optimizer(model, OptimizerConfig(name=name, lr=lr, weight_decay=0.0), stage)
    config = {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": stage}}
    engine, *_ = deepspeed.initialize(
        model=model, config=merge_ds_config(config, setup.ds_config), optimizer=setup.optimizer,
        model_parameters=setup.model_parameters,
    )
    losses, result = [], {}
    for step in range(10):
        loss = engine(input_ids=batch, labels=batch).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
        if step == 0:
            result = _first_step(engine, before, grad, lr, zeropower_via_gram_newtonschulz)
    return {**result, "losses": losses}


def _first_step(engine, before, grad, lr, newton_schulz) -> dict:
    q_proj = engine.module.model.layers[0].self_attn.q_proj.weight
    from deepspeed.runtime.zero.partition_parameters import GatheredParameters

    with GatheredParameters([q_proj]):
        delta = (q_proj.detach() - before).flatten()
    orthogonal = newton_schulz(grad.clone(), 5).float().flatten()
    expected = -lr * 0.2 * max(before.shape) ** 0.5 * orthogonal
    cosine = torch.nn.functional.cosine_similarity(delta, expected, dim=0).item()
    return {"muon_cosine": cosine, "muon_norm_ratio": (delta.norm() / expected.norm()).item()}


if __name__ == "__main__":
    print(json.dumps(_worker([tuple(r) for r in json.loads(sys.argv[1])])))
