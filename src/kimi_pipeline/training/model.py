"""Model building, loading and FLOP accounting shared by every trainer.

``ModelConfig`` describes a small Llama-style decoder that ``build_model`` creates with seeded
initialisation and the vocabulary of a tokenizer trained on the corpus (the ``config`` source of
``base_model.py``: the test suite's tiny model). Pretrained checkpoints come in as
``save_pretrained`` folders that every training process loads the same way (``load_model``).

FLOP accounting for MFU lives here too: ``flops_per_token`` is the usual 6·N (forward +
backward over the non-embedding weights and the output head) plus the attention score and
value products, 12·layers·hidden·context per token (PaLM appendix B; for a packed row the
context is the mean example length, since attention does not cross examples).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from kimi_pipeline.training import qk_clip  # noqa: F401  (registers "sdpa_max_logit")


class ModelConfig(BaseModel):
    """The sizes of a decoder built from scratch (``base_model.source: config``)."""

    model_config = ConfigDict(extra="forbid")

    vocab_size: int = Field(4096, ge=300, description="Tokenizer vocabulary trained on the corpus.")
    hidden_size: int = Field(256, ge=8, description="Model width.")
    intermediate_size: int = Field(688, ge=8, description="MLP width (SwiGLU).")
    num_layers: int = Field(4, ge=1, description="Decoder blocks.")
    num_heads: int = Field(4, ge=1, description="Attention (query) heads.")
    num_kv_heads: int = Field(4, ge=1, description="Key/value heads (< num_heads: GQA).")
    max_position_embeddings: int = Field(2048, ge=16, description="Longest context (RoPE).")
    rope_theta: float = Field(10000.0, gt=0, description="RoPE base frequency.")
    tie_word_embeddings: bool = Field(False, description="Share input embedding and output head.")
    init_seed: int = Field(0, description="Seed of the from-scratch initialisation.")
    attn_implementation: str = Field(
        "sdpa_max_logit", description="transformers attention kernel. 'sdpa_max_logit' is SDPA "
        "that also records the max attention logit per head (for logging and QK-Clip); "
        "'flash_attention_2' or 'sdpa' on GPU when QK-Clip and max-logit logging are off."
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Parameter dtype of the saved initial model."
    )


def build_model(config: ModelConfig, vocab_size: int, pad_token_id: int | None,
                bos_token_id: int | None, eos_token_id: int | None) -> PreTrainedModel:
    """A freshly initialised Llama-style decoder of the configured size (seeded)."""
    if config.hidden_size % config.num_heads or config.num_heads % config.num_kv_heads:
        raise ValueError(
            "model: hidden_size must be divisible by num_heads, and num_heads by num_kv_heads "
            f"(got {config.hidden_size}, {config.num_heads}, {config.num_kv_heads})"
        )
    llama = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=config.max_position_embeddings,
        rope_theta=config.rope_theta,
        tie_word_embeddings=config.tie_word_embeddings,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(config.init_seed)
        model = LlamaForCausalLM._from_config(llama, attn_implementation=config.attn_implementation)
    return model.to(getattr(torch, config.dtype))


def load_model(path: str | Path, attn_implementation: str = "sdpa_max_logit",
               dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Load a ``save_pretrained`` folder (ours or any local causal-LM checkpoint)."""
    return AutoModelForCausalLM.from_pretrained(
        str(path), attn_implementation=attn_implementation, dtype=dtype or "auto"
    )


def parameter_counts(model: torch.nn.Module) -> dict[str, int]:
    """Total, input-embedding and trained-matmul parameter counts (tied head counted once)."""
    embedding = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "embedding": embedding.numel(),
            "non_embedding": total - embedding.numel()}


def flops_per_token(model: PreTrainedModel, context: float, adapters: bool = False) -> float:
    """Training FLOPs per token: 6·(non-embedding params [+ head if tied]) + attention.

    Frozen blocks (``TrainConfig.trainable_layers``) sit below the trained ones, so they run
    forward only: 2 FLOPs per weight instead of 6, and their attention a third as much. With
    ``adapters`` (LoRA: every weight frozen, adapters in every block) backward still runs
    through every block but computes no weight gradients: 4 FLOPs per weight, attention in full
    (the adapters' own small matmuls are left out)."""
    cfg = model.config
    counts = parameter_counts(model)
    matmul = counts["non_embedding"]
    if getattr(cfg, "tie_word_embeddings", False):
        matmul += counts["embedding"]  # the head still multiplies by the (shared) matrix
    blocks = model.get_decoder().layers
    attention = 12 * cfg.hidden_size * context / 2  # per block, causal: half
    if adapters:
        return 4.0 * matmul + attention * len(blocks)
    frozen = [b for b in blocks if not any(p.requires_grad for p in b.parameters())]
    frozen_weights = sum(p.numel() for b in frozen for p in b.parameters())
    return (6.0 * (matmul - frozen_weights) + 2.0 * frozen_weights
            + attention * (len(blocks) - len(frozen) + len(frozen) / 3))


def measure_peak_flops(dtype: torch.dtype = torch.float32, device: str = "cpu",
                       size: int = 2048, seconds: float = 1.0) -> float:
    """Sustained matmul FLOP/s of this machine in ``dtype`` (the MFU denominator)."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    _sync(device)
    a @ b  # warm-up
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    _sync(device)
    return 2.0 * size**3 * n / (time.perf_counter() - start)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
