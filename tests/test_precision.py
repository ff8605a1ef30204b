"""The one precision decision: bf16 only where the hardware multiplies bf16 natively."""

from __future__ import annotations

import logging

import pytest
import torch

from kimi_pipeline import precision
from kimi_pipeline.training.loop import TrainConfig, autocast_dtype


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))


@pytest.fixture
def cpu_with_amx(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))


def test_auto_is_fp32_on_a_cpu_without_bf16_units(cpu_without_bf16):
    assert precision.resolve("auto", "cpu") == torch.float32
    assert autocast_dtype(TrainConfig(), "cpu") == torch.float32  # the SFT loop's default
    assert "no bf16 units" in precision.describe("cpu")


def test_auto_is_bf16_on_a_cpu_with_amx(cpu_with_amx):
    assert precision.resolve("auto", "cpu") == torch.bfloat16
    assert autocast_dtype(TrainConfig(), "cpu") == torch.bfloat16
    assert autocast_dtype(TrainConfig(autocast="none"), "cpu") == torch.float32


def test_forced_bf16_without_units_runs_but_warns_with_the_slowdown(cpu_without_bf16, caplog):
    precision._warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="kimi_pipeline.precision"):
        assert precision.resolve("bf16", "cpu") == torch.bfloat16
    assert "no bf16 matmul units" in caplog.text and "slower than fp32" in caplog.text


def test_named_precisions_map_directly_and_unknown_ones_are_refused(cpu_with_amx):
    assert precision.resolve("float32") == torch.float32
    assert precision.resolve("float16") == torch.float16
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        precision.resolve("fp8")


def test_cpu_flags_are_read_from_this_machine():
    precision.cpu_flags.cache_clear()
    flags = precision.cpu_flags()
    assert isinstance(flags, frozenset)
    assert precision.cpu_has_fast_bf16() == any(f in flags for f in precision.BF16_CPU_FLAGS)
