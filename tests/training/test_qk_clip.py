"""Max-logit recording (vs brute force, packed vs separate) and QK-Clip, also under ZeRO."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from kimi_pipeline.training.qk_clip import (
    ATTN_IMPLEMENTATION,
    QKClip,
    attention_modules,
    enable_max_logit_attention,
    max_logit_stats,
    max_logits,
    record_max_logits,
    reset_max_logits,
)
from tests.training import single_process_group

REPO = Path(__file__).resolve().parents[2]


def tiny_llama(kv_heads: int = 4, **overrides) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=kv_heads, **overrides,
    )
    return enable_max_logit_attention(LlamaForCausalLM(config)).eval()


def recorded(model, **inputs) -> torch.Tensor:
    reset_max_logits(model)
    with torch.no_grad(), record_max_logits(model):
        model(**inputs, use_cache=False)  # as in training; a cache disables packed-mask detection
    return torch.stack(list(max_logits(model).values()))  # (layers, heads)


def brute_force(model, input_ids) -> torch.Tensor:
    """Eager q·kᵀ·scaling with a causal mask, from hooked attention inputs."""
    captured = []
    hooks = [
        m.register_forward_pre_hook(lambda m, a, k: captured.append((m, k)), with_kwargs=True)
        for m in attention_modules(model).values()
    ]
    with torch.no_grad():
        model(input_ids=input_ids)
    for hook in hooks:
        hook.remove()
    return torch.stack([_layer_logits(m, k) for m, k in captured])


def _layer_logits(module, kwargs) -> torch.Tensor:
    hidden = kwargs["hidden_states"]
    shape = (*hidden.shape[:-1], -1, module.head_dim)
    q = module.q_proj(hidden).view(shape).transpose(1, 2)
    k = module.k_proj(hidden).view(shape).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, *kwargs["position_embeddings"])
    k = k.repeat_interleave(module.num_key_value_groups, dim=1)
    scores = q @ k.transpose(2, 3) * module.scaling
    length = scores.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).amax(dim=(0, 2, 3))


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_max_logit_equals_brute_force(kv_heads):
    model = tiny_llama(kv_heads)
    assert model.config._attn_implementation == ATTN_IMPLEMENTATION
    ids = torch.randint(0, 300, (3, 12), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(recorded(model, input_ids=ids), brute_force(model, ids))


def test_recording_does_not_change_outputs_and_is_off_by_default():
    model = tiny_llama(2)
    ids = torch.randint(0, 300, (2, 10))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    assert max_logits(model) == {}
    with torch.no_grad(), record_max_logits(model):
        logged = model(input_ids=ids).logits
    assert torch.equal(plain, logged)
    stats = max_logit_stats(model)
    assert set(stats) == {"max_logit", "max_logit/layer_000", "max_logit/layer_001"}


def test_packed_batch_equals_examples_run_separately():
    model = tiny_llama(2)
    first = torch.randint(0, 300, (1, 7), generator=torch.Generator().manual_seed(3))
    second = torch.randint(0, 300, (1, 9), generator=torch.Generator().manual_seed(4))
    separate = torch.maximum(recorded(model, input_ids=first), recorded(model, input_ids=second))
    packed_ids = torch.cat([first, second], dim=1)
    positions = torch.cat([torch.arange(7), torch.arange(9)])[None]
    packed = recorded(model, input_ids=packed_ids, position_ids=positions)
    torch.testing.assert_close(packed, separate)
    unmasked = recorded(model, input_ids=packed_ids)  # same tokens attending across the boundary
    assert not torch.allclose(unmasked, separate)


def test_padding_mask_excludes_padded_keys():
    model = tiny_llama(2)
    ids = torch.randint(0, 300, (1, 8), generator=torch.Generator().manual_seed(5))
    alone = recorded(model, input_ids=ids)
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 4), torch.ones(1, 8)], dim=1).long()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    torch.testing.assert_close(
        recorded(model, input_ids=padded, attention_mask=mask, position_ids=positions), alone
    )


def _blow_up(model, layer: int, heads: list[int], factor: float) -> None:
    attn = model.model.layers[layer].self_attn
    with torch.no_grad():
        for h in heads:
            attn.q_proj.weight[h * attn.head_dim:(h + 1) * attn.head_dim] *= factor


@pytest.mark.parametrize("kv_heads,rule", [(4, "balanced"), (2, "balanced"), (2, "query")])
def test_clip_caps_every_head_at_tau(kv_heads, rule):
    model = tiny_llama(kv_heads)
    _blow_up(model, 0, [1], 400.0)
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(6))
    before = recorded(model, input_ids=ids)
    tau = float(before[0, 1]) / 3
    assert before[0, 1] > tau and (before <= tau).sum() >= 6  # head 1 clipped, the rest below
    weights = {n: p.detach().clone() for n, p in model.named_parameters()}
    stats = QKClip(tau, rule).apply(model)
    assert stats["qk_clip/heads_clipped"] == float((before > tau).sum())
    assert max_logits(model) == {}  # reset after clipping
    after = recorded(model, input_ids=ids)
    assert (after <= tau * (1 + 1e-4)).all()
    clipped = before > tau
    torch.testing.assert_close(after[clipped], torch.full_like(after[clipped], tau))
    # layer 0's unclipped heads keep their logits (later layers see changed inputs)
    torch.testing.assert_close(after[0][~clipped[0]], before[0][~clipped[0]], rtol=1e-4, atol=1e-5)
    attn = model.model.layers[0].self_attn
    untouched = _untouched_layers(model, weights, layer=1)
    assert untouched  # layer without a clipped head: bitwise identical
    if kv_heads == 4 or rule == "query":  # unclipped heads' rows bitwise identical
        d = attn.head_dim
        for h in (0, 2, 3):
            rows = slice(h * d, (h + 1) * d)
            old = weights["model.layers.0.self_attn.q_proj.weight"][rows]
            assert torch.equal(attn.q_proj.weight[rows], old)
    if rule == "query":
        assert torch.equal(attn.k_proj.weight, weights["model.layers.0.self_attn.k_proj.weight"])


def _untouched_layers(model, weights, layer: int) -> bool:
    return all(
        torch.equal(p, weights[n]) for n, p in model.named_parameters() if f"layers.{layer}." in n
    )


def test_clip_scales_bias_with_weight():
    model = tiny_llama(4, attention_bias=True)
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.bias.normal_(0, 3.0)
    _blow_up(model, 0, [0, 2], 300.0)
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(7))
    tau = float(recorded(model, input_ids=ids).max()) / 4
    QKClip(tau).apply(model)
    assert recorded(model, input_ids=ids).max() <= tau * (1 + 1e-4)


def test_qk_norm_models_are_refused():
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    )
    model = enable_max_logit_attention(Qwen3ForCausalLM(config))
    recorded(model, input_ids=torch.randint(0, 300, (1, 8)))
    with pytest.raises(ValueError, match="q_norm"):
        QKClip(1e-6).apply(model)


def test_recording_requires_the_attention_implementation():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=1, num_attention_heads=4))
    model.set_attn_implementation("sdpa")
    with pytest.raises(ValueError, match="sdpa_max_logit"):
        with record_max_logits(model):
            pass


@pytest.fixture(scope="module")
def zero_runs() -> dict:
    env = {**os.environ, "TORCHDYNAMO_DISABLE": "1", "DS_ACCELERATOR": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training.test_qk_clip"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("stage", [0, 2, 3])
def test_clip_holds_under_deepspeed(zero_runs, stage):
    """Clipped after a step, and still clipped after a further lr=0 step (master weights too)."""
    run = zero_runs[str(stage)]
    assert run["before"] > run["tau"] * 1.5
    assert run["clipped_heads"] >= 1
    assert run["after_clip"] <= run["tau"] * (1 + 1e-4)
    assert run["after_next_step"] <= run["tau"] * (1 + 1e-4)
    assert run["after_next_step"] == pytest.approx(run["after_clip"], rel=1e-5)


def _zero_worker() -> dict:
    import deepspeed

    single_process_group()
    return {str(stage): _zero_run(deepspeed, stage) for stage in (0, 2, 3)}


def _zero_run(deepspeed, stage: int) -> dict:
    from kimi_pipeline.training.optim import OptimizerConfig, merge_ds_config, prepare_optimizer

    model = tiny_llama(2).train()
    _blow_up(model, 0, [1], 400.0)
    setup = prepare_optimizer(model, OptimizerConfig(name="muonclip", lr=1e-3), stage)
    config = {"train_micro_batch_size_per_gpu": 2, "zero_optimization": {"stage": stage}}
    engine, *_ = deepspeed.initialize(
        model=model, config=merge_ds_config(config, setup.ds_config), optimizer=setup.optimizer,
        model_parameters=setup.model_parameters,
    )
    ids = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(8))

    def step(lr: float | None = None) -> float:
        if lr is not None:
            for group in engine.optimizer.param_groups:
                group["lr"] = lr
        with record_max_logits(engine.module):
            loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()
        return max_logit_stats(engine.module)["max_logit"]

    before = step(0.0)
    clip = QKClip(before / 3)
    stats = clip.apply(engine.module)
    after_clip = step(0.0)
    reset_max_logits(engine.module)
    after_next = step(0.0)
    return {"before": before, "tau": clip.tau, "clipped_heads": stats["qk_clip/heads_clipped"],
            "after_clip": after_clip, "after_next_step": after_next}


if __name__ == "__main__":
    print(json.dumps(_zero_worker()))
