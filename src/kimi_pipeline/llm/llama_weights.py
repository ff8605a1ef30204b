"""The fast sampler's view of a Llama-family model: which models it covers, and fused copies
of their weights.

``llm.decode``'s hand-written decode step reads a Hugging Face Llama, Mistral (no sliding
window) or Qwen2 model through ``LlamaWeights``: QKV and gate/up fused into one matmul each,
every weight stored transposed ``[in, out]`` (MKL's sgemm at 32 rows runs ~1.3x faster in that
layout than ``F.linear``), RoPE cos/sin from the model's own rotary module, RMSNorm epsilons,
the tied or untied LM head. The copies double the model's memory and are rebuilt when the
model's parameters change (``stale``: RL updates the policy in place). ``fast_path_refusal``
says why a model is not covered (the sampler then runs the model's own forward).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

FAST_TYPES = ("llama", "mistral", "qwen2")  # Llama-family decoders the fast path covers
STATIC_ROPE = ("default", "linear", "llama3", "yarn")  # cos/sin independent of the length


@dataclass
class Layer:
    """One decoder block's weights as the decode step reads them (biases: Qwen2's q/k/v)."""

    ln1: torch.Tensor
    ln2: torch.Tensor
    wqkv: torch.Tensor  # [hidden, (q + 2 kv heads) * head_dim]
    bqkv: torch.Tensor | None
    wo: torch.Tensor  # [q heads * head_dim, hidden]
    bo: torch.Tensor | None
    wgu: torch.Tensor  # [hidden, 2 * intermediate]: gate then up
    bgu: torch.Tensor | None
    wd: torch.Tensor  # [intermediate, hidden]
    bd: torch.Tensor | None


class LlamaWeights:
    """The fast path's view of a Llama-family model: fused, transposed copies of its weights,
    rebuilt when the parameters change (checked by pointer, version and a sampled checksum)."""

    def __init__(self, model: Any):
        self.model = model
        config, body = model.config, model.model
        self.q_heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.q_heads
        self.head_dim = (getattr(config, "head_dim", None)
                         or config.hidden_size // config.num_attention_heads)
        self.scale = getattr(body.layers[0].self_attn, "scaling", self.head_dim ** -0.5)
        self.eps = float(_eps(body.norm))
        self.embed = body.embed_tokens.weight
        self.rotary = body.rotary_emb
        self.norm = body.norm.weight
        self.head = model.lm_head.weight.t().contiguous()
        self.head_bias = getattr(model.lm_head, "bias", None)
        self.layers = [_fuse(layer) for layer in body.layers]
        self.eps_layers = [(_eps(l.input_layernorm), _eps(l.post_attention_layernorm))
                           for l in body.layers]
        self.fingerprint = _fingerprint(model)

    def stale(self) -> bool:
        return _fingerprint(self.model) != self.fingerprint

    def rope(self, positions: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sign-folded sin tables ``[positions, head_dim]`` from the model's rotary
        module: ``rope(x) = x * cos + swap_halves(x) * sin``."""
        ids = torch.arange(positions, device=self.embed.device)[None]
        probe = torch.empty(1, dtype=dtype, device=self.embed.device)
        cos, sin = self.rotary(probe, ids)
        half = self.head_dim // 2
        sin = torch.cat((-sin[0, :, :half], sin[0, :, half:]), dim=-1)
        return cos[0].to(dtype).contiguous(), sin.to(dtype).contiguous()


def _eps(norm: Any) -> float:
    return float(getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6)))


def _fuse(layer: Any) -> Layer:
    attn, mlp = layer.self_attn, layer.mlp
    return Layer(
        ln1=layer.input_layernorm.weight, ln2=layer.post_attention_layernorm.weight,
        wqkv=_stack([attn.q_proj, attn.k_proj, attn.v_proj]),
        bqkv=_stack_bias([attn.q_proj, attn.k_proj, attn.v_proj]),
        wo=_stack([attn.o_proj]), bo=_stack_bias([attn.o_proj]),
        wgu=_stack([mlp.gate_proj, mlp.up_proj]), bgu=_stack_bias([mlp.gate_proj, mlp.up_proj]),
        wd=_stack([mlp.down_proj]), bd=_stack_bias([mlp.down_proj]),
    )


def _stack(linears: list[Any]) -> torch.Tensor:
    """``[in, sum of outs]``: the linears' weights side by side, transposed, contiguous."""
    return torch.cat([m.weight for m in linears], dim=0).t().contiguous()


def _stack_bias(linears: list[Any]) -> torch.Tensor | None:
    if all(getattr(m, "bias", None) is None for m in linears):
        return None
    return torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.weight.shape[0])
                      for m in linears])


def _fingerprint(model: Any) -> tuple:
    """Changes when any parameter is replaced or written (in place or through ``.data``)."""
    params = list(model.parameters())
    ids = tuple((p.data_ptr(), p._version) for p in params)
    with torch.no_grad():
        probe = sum(float(p.detach().reshape(-1)[::4099].double().sum()) for p in params)
    return ids, probe


def fast_path_refusal(model: Any) -> str | None:
    """Why the fast path cannot run ``model`` (None when it can)."""
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", None)
    if kind not in FAST_TYPES:
        return f"model_type {kind!r} is not one of {FAST_TYPES}"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"hidden_act {config.hidden_act!r} (only silu)"
    rope = _rope_type(config)
    if rope not in STATIC_ROPE:
        return f"RoPE type {rope!r} depends on the sequence length"
    if getattr(config, "sliding_window", None) and (kind == "mistral" or getattr(
            config, "use_sliding_window", False)):
        return "sliding-window attention"
    types = set(getattr(config, "layer_types", None) or ["full_attention"])
    if types != {"full_attention"}:
        return f"layer types {sorted(types)}"
    return _structure_refusal(model)


def _structure_refusal(model: Any) -> str | None:
    body = getattr(model, "model", None)
    layers = getattr(body, "layers", None)
    if layers is None or not hasattr(body, "embed_tokens") or not hasattr(body, "rotary_emb"):
        return "no model.layers / embed_tokens / rotary_emb"
    if not hasattr(model, "lm_head") or getattr(model.config, "logit_scale", None):
        return "no plain lm_head"
    expected = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"),
                "mlp": ("gate_proj", "up_proj", "down_proj")}
    for layer in layers:
        for part, names in expected.items():
            module = getattr(layer, part, None)
            if module is None or any(not hasattr(module, n) for n in names):
                return f"layer without {part}.{'/'.join(names)}"
        if hasattr(layer.self_attn, "q_norm") or hasattr(layer.self_attn, "k_norm"):
            return "q/k norms"
        norms = (layer.input_layernorm, layer.post_attention_layernorm, body.norm)
        if any(not type(n).__name__.endswith("RMSNorm") for n in norms):
            return "norms that are not RMSNorm"
    return None


def _rope_type(config: Any) -> str:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    if not params:
        return "default"
    return params.get("rope_type", params.get("type", "default"))
