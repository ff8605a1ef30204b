"""The gym's domains plug in through one registry (``@register_domain("math")``).

A domain generates seeded ``GymTask``s at a difficulty level and verifies a policy's response
to one of them with a binary reward (1 correct, 0 not) and a reason. Verifiers never raise on
model output: a malformed answer is a 0 with its reason. Domains that verify in bulk more
cheaply (the code sandbox runs many tests in parallel) override ``verify_many``.

A domain with an LLM judge (``judge_role`` set) judges offline by its code or rule judge until
``with_judge(backend)`` hands out a copy judging through that backend: the instance registered
here is shared by every caller of ``get_domain`` and is never changed, so one run's judge
backend cannot leak into another's.
"""

from __future__ import annotations

import copy
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from kimi_pipeline.records import GymTask
from kimi_pipeline.registry import Registry

if TYPE_CHECKING:
    from kimi_pipeline.llm.base import ChatBackend


@dataclass(frozen=True)
class Verification:
    """A verifier's decision on one response."""

    reward: float  # 1.0 correct, 0.0 not
    reason: str  # why, precise enough to debug the task or the policy
    details: dict[str, Any] = field(default_factory=dict)  # verifier specifics (parsed answer …)


class Domain(ABC):
    """Base class of a gym domain; subclasses set the class attributes and implement
    ``generate`` and ``verify``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one sentence, shown by `kimi-gym domains`
    levels: ClassVar[tuple[int, ...]] = (1, 2, 3)  # difficulty levels the generator knows
    judge_role: ClassVar[str | None] = None  # the llm/ role of the domain's LLM judge, if any
    judge_backend: ChatBackend | None = None  # None: the offline code/rule judge

    def with_judge(self, backend: ChatBackend | None) -> Domain:
        """A shallow copy of this domain judging through ``backend`` (None: the offline judge);
        this instance, maybe the registered one, is left unchanged."""
        if self.judge_role is None:
            raise ValueError(f"gym domain {self.name!r} has no LLM judge")
        clone = copy.copy(self)
        clone.judge_backend = backend
        return clone

    @abstractmethod
    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        """``n`` tasks at ``difficulty``, every choice drawn from ``rng`` (never global random)."""

    @abstractmethod
    def verify(self, task: GymTask, response: str) -> Verification:
        """The binary reward of ``response`` to ``task``; never raises on model output."""

    def verify_many(self, pairs: list[tuple[GymTask, str]],
                    max_workers: int | None = None) -> list[Verification]:
        """Verdicts in pair order; ``max_workers`` bounds the parallel work of a domain that
        verifies in a pool (the coding sandbox) and is ignored by the others."""
        return [self.verify(task, response) for task, response in pairs]


def error_line(exc: BaseException) -> str:
    """An exception as one line of at most 500 characters (a failure reason)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


# where each built-in domain is defined: imported on first use
DOMAIN_MODULES: dict[str, str] = {
    "coding": "kimi_pipeline.gym.coding",
    "safety": "kimi_pipeline.gym.safety",
    "math": "kimi_pipeline.gym.math_domain",
    "logic": "kimi_pipeline.gym.logic_domain",
    "instruction_following": "kimi_pipeline.gym.instructions",
    "faithfulness": "kimi_pipeline.gym.faithfulness",
}
_DOMAINS: Registry[Domain] = Registry("gym domain", lazy=DOMAIN_MODULES)


def register_domain(name: str):
    """Class decorator: instantiate the domain once and register it under ``name``."""

    def wrap(cls: type[Domain]) -> type[Domain]:
        cls.name = name
        _DOMAINS.add(name, cls())
        return cls

    return wrap


def get_domain(name: str) -> Domain:
    return _DOMAINS.lookup(name)


def all_domains() -> dict[str, Domain]:
    return _DOMAINS.load_all()
