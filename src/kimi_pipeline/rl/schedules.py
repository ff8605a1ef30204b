"""Sampling-temperature decay: explore early, exploit later (K2 §3.2).

A high temperature early in RL keeps the K samples of a prompt different, so their rewards
differ and the group baseline has something to compare; later a lower temperature lets the
policy use what it learnt. The schedule is a function of the iteration only, so a resumed run
samples exactly as the uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TemperatureSchedule(BaseModel):
    """Sampling temperature by iteration."""

    model_config = ConfigDict(extra="forbid")

    start: float = Field(1.0, gt=0, description="Temperature of the first iteration.")
    end: float = Field(0.7, gt=0, description="Temperature from ``decay_iterations`` on.")
    decay_iterations: int = Field(
        10, ge=0, description="Iterations over which it goes from start to end (0: always end)."
    )
    shape: Literal["linear", "cosine", "exponential"] = Field(
        "cosine", description="Path between the two: straight, cosine half-wave, or geometric."
    )

    def at(self, iteration: int) -> float:
        if self.decay_iterations == 0 or iteration >= self.decay_iterations:
            return self.end
        progress = iteration / self.decay_iterations
        if self.shape == "linear":
            return self.start + (self.end - self.start) * progress
        if self.shape == "cosine":
            return self.end + (self.start - self.end) * 0.5 * (1 + math.cos(math.pi * progress))
        return self.start * (self.end / self.start) ** progress
