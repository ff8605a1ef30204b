"""Which matmul precision this machine runs fast: one decision for training, sampling, embedding.

bf16 pays only where the hardware multiplies in bf16: CUDA devices that support it, and CPUs
with AMX or AVX512-BF16 (torch reports ``AVX512`` capability there, and the CPU flags say which).
On a CPU with AVX2 only, torch emulates bf16 matmuls: measured 0.8 GFLOP/s against 90 GFLOP/s
in fp32 on an AMD EPYC (110x slower), which turns a 19-minute SFT run into 11 hours. So every
place that picks a precision takes ``"auto"`` by default and asks ``resolve`` here; an explicit
``bf16`` on a CPU without bf16 units still runs (someone may want to compare), but warns once
with the measured slowdown.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)

NAMES = {"float32": torch.float32, "fp32": torch.float32, "none": torch.float32,
         "bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
         "fp16": torch.float16}
# CPU flags (Linux /proc/cpuinfo) that mean a native bf16 dot product.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is not readable)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AMX or AVX512-BF16)."""
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def fast_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether bf16 matmuls on ``device`` are at least as fast as fp32 ones."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()


def describe(device: str | torch.device = "cpu") -> str:
    """One line for logs: the device, its capability and the precision ``auto`` picks."""
    device = torch.device(device)
    if device.type == "cuda":
        capability = torch.cuda.get_device_name(device) if torch.cuda.is_available() else "absent"
    else:
        capability = torch.backends.cpu.get_cpu_capability()
        present = [f for f in BF16_CPU_FLAGS if f in cpu_flags()]
        capability += f" ({', '.join(present) or 'no bf16 units'})"
    chosen = "bfloat16" if fast_bf16(device) else "float32"
    return f"{device.type}: {capability}; auto precision = {chosen}"


def resolve(choice: str, device: str | torch.device = "cpu") -> torch.dtype:
    """The dtype for a configured precision: ``auto`` asks the hardware, names map directly.

    ``auto`` is bf16 where ``fast_bf16(device)``, fp32 otherwise. A bf16 choice on a device
    that emulates it is honoured but logged as a warning with the measured slowdown."""
    if choice == "auto":
        return torch.bfloat16 if fast_bf16(device) else torch.float32
    if choice not in NAMES:
        raise ValueError(f"unknown precision {choice!r}; use 'auto' or one of {sorted(NAMES)}")
    dtype = NAMES[choice]
    if dtype == torch.bfloat16 and not fast_bf16(device):
        _warn_slow_bf16(str(torch.device(device)))
    return dtype


@lru_cache(maxsize=None)
def _warn_slow_bf16(device: str) -> None:
    ratio = slowdown(device)
    log.warning(
        "precision: bf16 was asked for on %s, which has no bf16 matmul units (%s); bf16 "
        "matmuls run %.0fx slower than fp32 here. Use 'auto' to pick fp32 on this machine.",
        device, describe(device), ratio,
    )


def slowdown(device: str = "cpu", size: int = 256) -> float:
    """fp32 matmul speed over bf16 matmul speed on ``device`` (a quick measurement, > 1 = bf16
    is slower)."""
    return _seconds(torch.bfloat16, device, size) / _seconds(torch.float32, device, size)


def _seconds(dtype: torch.dtype, device: str, size: int) -> float:
    a = torch.randn(size, size, device=device).to(dtype)
    a @ a
    start, n = time.perf_counter(), 0
    while n < 3 or time.perf_counter() - start < 0.05:
        a @ a
        n += 1
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / n
