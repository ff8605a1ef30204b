"""LoRA adapters for SFT: train low-rank updates of a frozen checkpoint, save it merged.

Full fine-tuning of a small pretrained model at the high rate a short CPU run needs rewrites
what the checkpoint knew beyond the new task (instruction following, code); LoRA (Hu et al.
2021) trains a rank-r update ``B·A`` beside each chosen weight and leaves the weight itself
frozen, which learns the new format with less damage to the rest (Biderman et al. 2024, "LoRA
learns less and forgets less"). It is also cheaper per step: the frozen weights need no weight
gradients, so backward costs ~2 FLOPs per weight instead of ~4.

Built on ``peft``. Training sees a ``PeftModel``; the saved model is the checkpoint with the
update merged into its weights (``merge_and_unload``), a plain ``save_pretrained`` folder that
every later stage loads as before. The merge reloads the initial model on rank 0 and loads the
consolidated state (adapters included) into it, so it works under every ZeRO stage.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field


class LoraConfig(BaseModel):
    """Which weights get a low-rank update, and its size."""

    model_config = ConfigDict(extra="forbid")

    rank: int = Field(32, ge=1, description="Rank r of each update B·A.")
    alpha: float = Field(
        32.0, gt=0, description="The update is scaled by alpha / rank (alpha = rank: scale 1)."
    )
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Module names to adapt (e.g. [q_proj, v_proj]); 'all-linear' "
        "adapts every linear layer of the decoder blocks (not the output head)."
    )


def attach_lora(model: torch.nn.Module, config: LoraConfig) -> torch.nn.Module:
    """Wrap ``model`` so that only fresh adapters are trainable (B starts at zero, so the
    wrapped model computes exactly what the checkpoint did)."""
    import peft

    settings = peft.LoraConfig(
        r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
        target_modules=config.target_modules, task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, settings)


def merge_lora(initial: torch.nn.Module, config: LoraConfig,
               state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """The initial model with the trained adapters in ``state`` (a ``PeftModel`` state dict)
    merged into its weights: a plain model of the checkpoint's own class."""
    wrapped = attach_lora(initial, config)
    wrapped.load_state_dict(state)
    return wrapped.merge_and_unload()


def unwrapped(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a ``PeftModel`` (the model itself otherwise)."""
    base = getattr(model, "get_base_model", None)
    return base() if callable(base) else model
