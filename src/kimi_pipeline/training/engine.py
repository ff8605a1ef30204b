"""The DeepSpeed engine every trainer (SFT, critic, RL) steps: config, start-up, consolidation.

The ZeRO stage, precision and communication settings come from a DeepSpeed JSON file under
``conf/<env>/deepspeed/``: that file is what a cluster team tunes, and it is the same format
they already use elsewhere. Training-loop settings that DeepSpeed also needs (micro-batch,
accumulation, clipping) are owned by our configs and written into it here, so there is one
place to set each; values the file leaves as ``"auto"`` are filled the same way.

On a CPU-only machine DeepSpeed runs with its ``cpu`` accelerator and the ``gloo`` process
group (``DS_ACCELERATOR=cpu`` must be set before DeepSpeed is imported — the launcher does it);
on GPUs with NCCL. ``consolidated_state_dict`` gathers ZeRO-3 partitions so rank 0 can write a
plain ``save_pretrained`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

OWNED_KEYS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping")


class EngineConfig(BaseModel):
    """How training processes are started and which DeepSpeed configuration they use."""

    model_config = ConfigDict(extra="forbid")

    deepspeed_config: str = Field(
        "conf/base/deepspeed/zero2.json", description="DeepSpeed JSON (ZeRO stage, precision, "
        "offload, communication), relative to the project root."
    )
    zero_stage: int | None = Field(
        None, ge=0, le=3, description="Overrides zero_optimization.stage of the JSON when set."
    )
    num_processes: int = Field(
        1, ge=1, description="Training processes per node (GPUs per node; on CPU, processes)."
    )
    num_nodes: int = Field(1, ge=1, description="Nodes; more than one needs a hostfile.")
    hostfile: str | None = Field(
        None, description="DeepSpeed hostfile ('host slots=N' lines) for multi-node runs."
    )
    dist_backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="Process-group backend; 'auto' = nccl with CUDA, gloo without."
    )
    master_port: int | None = Field(
        None, description="Rendezvous port; null picks a free one (single node)."
    )
    launcher_args: list[str] = Field(
        default_factory=list, description="Extra arguments for the deepspeed launcher "
        "(e.g. ['--bind_cores_to_rank'] on CPU clusters)."
    )

    @property
    def world_size(self) -> int:
        return self.num_processes * self.num_nodes


def load_deepspeed_config(engine: EngineConfig, root: str | Path = ".") -> dict[str, Any]:
    """Read the DeepSpeed JSON, naming the file when it is missing or malformed."""
    path = Path(root) / engine.deepspeed_config
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"DeepSpeed config {path} does not exist "
                                "(sft.engine.deepspeed_config)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"DeepSpeed config {path} is not valid JSON: {exc}") from None
    if engine.zero_stage is not None:
        config.setdefault("zero_optimization", {})["stage"] = engine.zero_stage
    return config


def resolve_deepspeed_config(config: dict[str, Any], micro_batch_size: int,
                             accumulation: int, max_grad_norm: float,
                             optimizer_section: dict[str, Any]) -> dict[str, Any]:
    """Fill the keys our loop owns, refusing a file that sets them to something else."""
    owned = dict(zip(OWNED_KEYS, (micro_batch_size, accumulation, max_grad_norm), strict=True))
    resolved = dict(config)
    for key, value in owned.items():
        if resolved.get(key, "auto") not in ("auto", value):
            raise ValueError(
                f"DeepSpeed config sets {key}={resolved[key]!r}, but the training config says "
                f"{value!r}; set it in the training parameters and leave it 'auto' in the JSON"
            )
        resolved[key] = value
    resolved.pop("train_batch_size", None)  # derived by DeepSpeed from the three above
    if "optimizer" in resolved and optimizer_section:
        raise ValueError("DeepSpeed config has an 'optimizer' section; choose the optimizer in "
                         "the training parameters (optimizer.name) instead")
    resolved.update(optimizer_section)
    resolved.setdefault("steps_per_print", 10**9)  # our loop reports progress
    return resolved


def zero_stage(config: dict[str, Any]) -> int:
    return int(config.get("zero_optimization", {}).get("stage", 0))


def init_distributed(backend: str = "auto") -> None:
    import deepspeed

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    deepspeed.init_distributed(dist_backend=backend)


def initialize(model: torch.nn.Module, ds_config: dict[str, Any],
               optimizer: torch.optim.Optimizer | None, model_parameters: Any,
               scheduler: Callable[[torch.optim.Optimizer], Any]):
    """``deepspeed.initialize`` with our optimizer (or DeepSpeed's) and LR schedule."""
    import deepspeed

    engine, _, _, lr_scheduler = deepspeed.initialize(
        model=model, config=ds_config, optimizer=optimizer,
        model_parameters=model_parameters, lr_scheduler=scheduler,
    )
    return engine, lr_scheduler


def consolidated_state_dict(engine) -> dict[str, torch.Tensor] | None:
    """Full (unpartitioned) weights on rank 0, ``None`` on other ranks."""
    import deepspeed
    import torch.distributed as dist

    model = engine.module
    rank = dist.get_rank() if dist.is_initialized() else 0
    if engine.zero_optimization_stage() != 3:
        return {k: v.detach().clone() for k, v in model.state_dict().items()} if rank == 0 else None
    state: dict[str, torch.Tensor] = {}
    for name, param in model.named_parameters():
        with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
            if rank == 0:
                state[name] = param.detach().clone()
    return state if rank == 0 else None
