"""Max attention logits per layer and head, and Kimi K2's QK-Clip (the "Clip" in MuonClip).

Why: Muon lets query/key weights grow until attention logits explode (K2 saw logits above
1000 in mid-scale runs). K2 caps them without touching the forward pass: after an optimizer
step, every head whose largest pre-softmax logit ``S_max_h`` exceeded ``tau`` has its query and
key projections rescaled so that the logit it produced would have been ``tau``.

Recording. ``S_max_h`` is measured during the ordinary forward pass by a transformers attention
function registered as ``"sdpa_max_logit"`` (:data:`ATTN_IMPLEMENTATION`). It runs the normal
SDPA attention and, while recording is switched on for that module, also computes (under
``no_grad``, chunked over queries to bound memory) ``max over allowed positions of
q·kᵀ·scaling`` per head, from the post-RoPE queries and keys SDPA receives. "Allowed" is exactly
SDPA's mask: the boolean/additive mask transformers built (padding, sliding window, and the
block-diagonal mask of packed sequences found from reset ``position_ids``), or the causal
triangle when transformers passed no mask and relied on ``is_causal``. Key/value heads are
repeated for GQA. The per-head maximum is kept on the attention module as a tensor (no host
sync per layer) and accumulates (``max``) across forwards until read and reset, so gradient
accumulation micro-batches all count.

Use it: build or load the model with ``attn_implementation="sdpa_max_logit"`` or call
:func:`enable_max_logit_attention` on a model/config, then wrap training forwards in
``with record_max_logits(model):`` (or call :func:`set_max_logit_recording`). Read
:func:`max_logit_stats` for MLflow; call :meth:`QKClip.apply` after ``engine.step()``.

Clipping rule (K2 report, §2.1 "MuonClip", multi-head case): ``γ_h = min(1, τ / S_max_h)``;
``W_q^h ← sqrt(γ_h)·W_q^h`` and ``W_k^h ← sqrt(γ_h)·W_k^h`` (rows of the head, bias too).
The logit is bilinear in the two, so it scales by exactly ``γ_h`` and lands on ``τ``; heads at or
below ``τ`` are untouched. K2 uses MLA and scales only head-specific parts; the models here
(Llama/Qwen2/Mistral-style ``q_proj``/``k_proj``) have per-head keys or GQA-shared keys.

GQA (a key head ``g`` shared by the query heads of its group) — ``gqa_rule``:

* ``"balanced"`` (default): ``γ_g = min_{h∈g} γ_h``; ``W_k^g ← sqrt(γ_g)·W_k^g`` and
  ``W_q^h ← (γ_h / sqrt(γ_g))·W_q^h``. Every head's logit scales by exactly ``γ_h`` (clipped
  heads land on ``τ``, the others keep their logits), and it reduces to K2's rule when each
  group has one head. Unclipped query heads of a clipped group get their rows scaled up by
  ``1/sqrt(γ_g)`` to compensate for the shared key.
* ``"query"``: keys are never touched, ``W_q^h ← γ_h·W_q^h``. Same logits afterwards; every
  unclipped head's weights stay bitwise identical.

Distributed. ``S_max`` is all-reduced (MAX) over the default process group before clipping, so
every data-parallel rank applies the same scaling (replicas must not diverge); all ranks must
call :meth:`QKClip.apply` (and :func:`max_logit_stats` with ``reduce=True``) together. Under
DeepSpeed the fp32 master weights live in the ZeRO/bf16 optimizer, not in the module: the
module (low-precision) weights are rescaled in place, and the master copy through
``deepspeed.utils.safe_get/set_full_fp32_param`` (ZeRO 1/2/3 and the bf16 optimizer), otherwise
the next step would overwrite the clip. ZeRO-3 parameters are gathered first (``gather``,
default ``deepspeed.zero.GatheredParameters(params, modifier_rank=0)``). Not covered: fp16
without ZeRO (DeepSpeed's FP16_Optimizer keeps masters outside that API) and models that
normalise q/k after projection (``q_norm``/``k_norm``: rescaling ``q_proj`` would do nothing;
such models do not need QK-Clip) — :meth:`QKClip.apply` raises for the latter.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ContextManager, Literal

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTN_IMPLEMENTATION = "sdpa_max_logit"
GqaRule = Literal["balanced", "query"]
GatherFn = Callable[[list[nn.Parameter]], ContextManager[Any]]

_RECORD = "_kimi_record_max_logit"
_MAX_LOGIT = "_kimi_max_logit"
_CHUNK_ELEMENTS = 1 << 24  # scores computed per query chunk: at most ~16M floats at a time


# --- recording ------------------------------------------------------------------------------


def sdpa_max_logit_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA attention that also records the per-head max logit while recording is on."""
    if getattr(module, _RECORD, False):
        _record(module, head_max_logits(module, query, key, attention_mask, scaling, is_causal))
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
        is_causal=is_causal, **kwargs,
    )


AttentionInterface.register(ATTN_IMPLEMENTATION, sdpa_max_logit_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, sdpa_mask)


@torch.no_grad()
def head_max_logits(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    is_causal: bool | None = None,
) -> torch.Tensor:
    """Max over batch and allowed (query, key) pairs of ``q·kᵀ·scaling``, one value per head.

    ``query`` is ``(batch, heads, q_len, dim)``, ``key`` ``(batch, kv_heads, kv_len, dim)``;
    the mask follows SDPA (boolean: True = attend; float: additive).
    """
    q_len = query.shape[2]
    key = repeat_kv(key, query.shape[1] // key.shape[1])
    scaling = scaling if scaling is not None else 1.0 / math.sqrt(query.shape[-1])
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    causal = bool(q_len > 1 and attention_mask is None and causal)
    if causal:
        key = key[:, :, :q_len]  # as SDPA: upper-left aligned causal mask
    step = max(1, _CHUNK_ELEMENTS // max(1, query.shape[0] * query.shape[1] * key.shape[2]))
    chunks = [
        _chunk_max(query, key, attention_mask, scaling, causal, start, min(start + step, q_len))
        for start in range(0, q_len, step)
    ]
    return torch.stack(chunks).amax(dim=0)


def _chunk_max(query, key, mask, scaling, causal, start, end) -> torch.Tensor:
    scores = torch.matmul(query[:, :, start:end].float(), key.float().transpose(2, 3)) * scaling
    allowed = _allowed(mask, causal, start, end, key.shape[2], scores.device)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.amax(dim=(0, 2, 3))


def _allowed(mask, causal, start, end, kv_len, device) -> torch.Tensor | None:
    if causal:
        rows = torch.arange(start, end, device=device)[:, None]
        return rows >= torch.arange(kv_len, device=device)[None, :]
    if mask is None:
        return None
    chunk = mask[..., start:end, :] if mask.shape[-2] > 1 else mask
    if chunk.dtype == torch.bool:
        return chunk
    return chunk > torch.finfo(chunk.dtype).min / 2  # additive mask: large negatives = blocked


def _record(module: nn.Module, values: torch.Tensor) -> None:
    previous = getattr(module, _MAX_LOGIT, None)
    setattr(module, _MAX_LOGIT, values if previous is None else torch.maximum(previous, values))


def enable_max_logit_attention(model_or_config: Any) -> Any:
    """Switch a transformers model (or config, before building) to ``"sdpa_max_logit"``.

    Equivalent to ``from_pretrained(..., attn_implementation="sdpa_max_logit")``. Returns its
    argument. Recording itself stays off until :func:`record_max_logits` turns it on.
    """
    if hasattr(model_or_config, "set_attn_implementation"):
        model_or_config.set_attn_implementation(ATTN_IMPLEMENTATION)
    else:
        model_or_config._attn_implementation = ATTN_IMPLEMENTATION
    return model_or_config


def attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    """Attention modules (those with ``q_proj`` and ``k_proj``) by qualified name, in order."""
    return {
        name: m
        for name, m in model.named_modules()
        if hasattr(m, "q_proj") and hasattr(m, "k_proj")
    }


def set_max_logit_recording(model: nn.Module, enabled: bool) -> None:
    """Turn recording on/off on every attention module (values already recorded are kept)."""
    _check_implementation(model)
    for module in attention_modules(model).values():
        setattr(module, _RECORD, enabled)


@contextlib.contextmanager
def record_max_logits(model: nn.Module) -> Iterator[None]:
    """Record per-head max logits for the forwards run inside the block."""
    set_max_logit_recording(model, True)
    try:
        yield
    finally:
        set_max_logit_recording(model, False)


def _check_implementation(model: nn.Module) -> None:
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", ATTN_IMPLEMENTATION)
    if implementation != ATTN_IMPLEMENTATION:
        raise ValueError(
            f"the model uses attn_implementation={implementation!r}; max logits are only recorded "
            f"with {ATTN_IMPLEMENTATION!r}: call enable_max_logit_attention(model) or load it with "
            f'attn_implementation="{ATTN_IMPLEMENTATION}"'
        )


def max_logits(model: nn.Module) -> dict[str, torch.Tensor]:
    """Recorded per-head max logits (1-D tensor of heads) per attention module name."""
    return {
        name: getattr(m, _MAX_LOGIT)
        for name, m in attention_modules(model).items()
        if getattr(m, _MAX_LOGIT, None) is not None
    }


def reset_max_logits(model: nn.Module) -> None:
    """Forget recorded values (QKClip.apply does this after clipping)."""
    for module in attention_modules(model).values():
        setattr(module, _MAX_LOGIT, None)


def max_logit_stats(model: nn.Module, reduce: bool = True) -> dict[str, float]:
    """``{"max_logit": overall, "max_logit/<layer>": per layer}`` for logging; {} if nothing.

    With ``reduce`` and an initialised multi-rank process group, values are the max over ranks
    (a collective: call on every rank).
    """
    recorded = max_logits(model)
    if not recorded:
        return {}
    table = _all_reduce_max(torch.stack(list(recorded.values())), reduce)
    return _stats(list(recorded), table)


def _stats(names: list[str], table: torch.Tensor) -> dict[str, float]:
    per_layer = table.amax(dim=1).tolist()
    stats = {"max_logit": max(per_layer)}
    stats.update({f"max_logit/{_short(n)}": v for n, v in zip(names, per_layer, strict=True)})
    return stats


def _short(name: str) -> str:
    parts = [p for p in name.split(".") if p.isdigit()]
    return f"layer_{int(parts[-1]):03d}" if parts else name


def _all_reduce_max(table: torch.Tensor, reduce: bool = True) -> torch.Tensor:
    import torch.distributed as dist

    if reduce and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        table = table.clone()
        dist.all_reduce(table, op=dist.ReduceOp.MAX)
    return table


# --- clipping -------------------------------------------------------------------------------


def head_scales(
    gamma: torch.Tensor, num_kv_heads: int, rule: GqaRule = "balanced"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-head factors ``(query_scale[heads], key_scale[kv_heads])`` with product ``γ_h``."""
    groups = gamma.view(num_kv_heads, -1)  # heads of one kv group are contiguous (repeat_kv)
    if rule == "query":
        return gamma.clone(), torch.ones(num_kv_heads, dtype=gamma.dtype, device=gamma.device)
    if rule != "balanced":
        raise ValueError(f"unknown gqa_rule {rule!r}; use 'balanced' or 'query'")
    key_scale = groups.amin(dim=1).sqrt()
    return (groups / key_scale[:, None]).reshape(-1), key_scale


@dataclass
class QKClip:
    """K2's QK-Clip: cap every head's max attention logit at ``tau`` by rescaling W_q / W_k.

    Call :meth:`apply` after each optimizer step, with the max logits of that step's forwards
    recorded (see module docstring). K2 uses ``tau=100``.
    """

    tau: float = 100.0
    gqa_rule: GqaRule = "balanced"

    def __post_init__(self) -> None:
        if not self.tau > 0:
            raise ValueError(f"QK-Clip tau must be positive, got {self.tau}")
        if self.gqa_rule not in ("balanced", "query"):
            raise ValueError(f"unknown gqa_rule {self.gqa_rule!r}; use 'balanced' or 'query'")

    def apply(self, model: nn.Module, gather: GatherFn | None = None) -> dict[str, float]:
        """Clip the heads above ``tau``, reset the record, return stats (pre-clip max logits)."""
        recorded = max_logits(model)
        if not recorded:
            return {}
        modules = attention_modules(model)
        table = _all_reduce_max(torch.stack(list(recorded.values())))
        clipped = 0
        for name, s_max in zip(recorded, table, strict=True):
            clipped += self._clip_layer(modules[name], s_max, gather)
        reset_max_logits(model)
        stats = _stats(list(recorded), table)
        stats.update({"qk_clip/heads_clipped": float(clipped), "qk_clip/tau": self.tau})
        return stats

    def _clip_layer(self, module: nn.Module, s_max: torch.Tensor, gather: GatherFn | None) -> int:
        over = s_max > self.tau
        if not bool(over.any()):
            return 0
        _check_clippable(module)
        gamma = torch.where(over, self.tau / s_max.clamp_min(1e-30), torch.ones_like(s_max))
        num_kv = s_max.numel() // getattr(module, "num_key_value_groups", 1)
        q_scale, k_scale = head_scales(gamma.double(), num_kv, self.gqa_rule)
        head_dim = _head_dim(module, s_max.numel())
        targets = _projection_targets(module.q_proj, q_scale.repeat_interleave(head_dim))
        if self.gqa_rule != "query":
            targets += _projection_targets(module.k_proj, k_scale.repeat_interleave(head_dim))
        _scale_rows(targets, gather)
        return int(over.sum())


def _check_clippable(module: nn.Module) -> None:
    if getattr(module, "q_norm", None) is not None or getattr(module, "k_norm", None) is not None:
        raise ValueError(
            f"{type(module).__name__} normalises queries/keys after projection (q_norm/k_norm), "
            "so rescaling q_proj/k_proj cannot lower its logits; QK-norm already bounds them — "
            "set qk_clip_tau to null for this model"
        )


def _head_dim(module: nn.Module, num_heads: int) -> int:
    head_dim = getattr(module, "head_dim", None)
    if head_dim is None:
        head_dim = _rows(module.q_proj.weight) // num_heads
    return int(head_dim)


def _rows(param: nn.Parameter) -> int:
    return int(getattr(param, "ds_shape", param.shape)[0])


def _projection_targets(linear: nn.Module, row_scale: torch.Tensor) -> list[tuple]:
    params = [linear.weight] + ([linear.bias] if getattr(linear, "bias", None) is not None else [])
    return [(p, row_scale) for p in params]


def _scale_rows(targets: list[tuple[nn.Parameter, torch.Tensor]], gather: GatherFn | None) -> None:
    params = [p for p, _ in targets]
    context = (gather or _default_gather)(params)
    with context:
        for param, row_scale in targets:
            _scale_param(param, row_scale)


def _scale_param(param: nn.Parameter, row_scale: torch.Tensor) -> None:
    shape = (-1,) + (1,) * (param.dim() - 1)
    with torch.no_grad():
        param.data.mul_(row_scale.to(param.device, param.dtype).view(shape))
        if _has_master(param):
            from deepspeed.utils import safe_get_full_fp32_param, safe_set_full_fp32_param

            master = safe_get_full_fp32_param(param)
            if master is not None:
                scaled = master * row_scale.to(master.device, master.dtype).view(shape)
                safe_set_full_fp32_param(param, scaled)


def _has_master(param: nn.Parameter) -> bool:
    # Attribute presence, not value: get_full_hp_param is a collective on every rank, also on
    # ranks whose partition does not hold this parameter (_hp_mapping None there).
    return hasattr(param, "ds_id") or hasattr(param, "_hp_mapping")


def _default_gather(params: list[nn.Parameter]) -> ContextManager[Any]:
    if any(hasattr(p, "ds_id") for p in params):
        import deepspeed

        return deepspeed.zero.GatheredParameters(params, modifier_rank=0)
    return contextlib.nullcontext()
