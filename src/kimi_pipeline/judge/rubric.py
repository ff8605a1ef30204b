"""The rubric judge: keep only trajectories that succeed against their task's rubric.

K2 filters its synthetic tool-use dialogues by rejection sampling: an LLM judge scores each
trajectory against the task rubric and only successful ones are kept (K2 report §3.1).
Two judges share one interface (``Judge.judge_many``), one configuration (``JudgeConfig``) and
one output (``Verdict``: pass/fail, score, a verdict with its reason per criterion):

- ``rule`` (``RuleJudge``, here): the registered criteria of ``judge.criteria`` run over each
  trajectory read once as an ``Episode`` (``judge.episode``). It is the hot path (every
  synthesised trajectory goes through it): it reads parquet rows directly (``judge_rows`` /
  ``judge_frame``) without validating pydantic models.
- ``llm`` (``judge.rubric_llm``, imported when first made): the same criteria put to a model
  as a rubric prompt, judged ``repeats`` times in shuffled orders and voted per criterion.
  Offline, the ``judge`` role's program (``judge.offline.judge``) runs the rule criteria, so
  ``kind: llm`` offline equals ``kind: rule``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kimi_pipeline.gcpause import gc_paused
from kimi_pipeline.judge.criteria import CRITERIA, evaluate
from kimi_pipeline.judge.episode import NESTED, episode
from kimi_pipeline.judge.llm_judge import CriterionVerdict
from kimi_pipeline.llm.base import BackendConfig, ChatBackend, OfflineBackendConfig
from kimi_pipeline.records import Trajectory
from kimi_pipeline.registry import Registry


# ---------------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """A judge's decision on one trajectory."""

    passed: bool  # all critical criteria passed
    score: float  # fraction of criteria passed
    criteria: list[CriterionVerdict]
    judge: str  # which judge decided ('rule', 'llm')

    def failed(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed]


def make_verdict(criteria: list[CriterionVerdict], critical: set[str], judge: str) -> Verdict:
    score = sum(c.passed for c in criteria) / len(criteria) if criteria else 0.0
    passed = bool(criteria) and all(c.passed for c in criteria if c.name in critical)
    return Verdict(passed, round(score, 6), criteria, judge)


# --------------------------------------------------------------------------------- config


class JudgeConfig(BaseModel):
    """Which judge decides, and how."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(
        "rule",
        description="Registered judge: 'rule' (deterministic criteria) or 'llm' "
        "(LLM-as-judge through llm/; the offline backend runs the rule criteria).",
    )
    backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="LLM backend of the 'llm' judge."
    )
    repeats: int = Field(
        3,
        ge=1,
        description="'llm': judgements per trajectory, each with the criteria in another "
        "seeded order; verdicts are voted per criterion.",
    )
    pass_threshold: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="'llm': a criterion passes when more than this share of the "
        "valid (non-abstaining) repeats found it passed; 0.5 = strict majority, ties fail.",
    )
    criteria: list[str] | None = Field(
        None, description="Criteria to evaluate, in order; null = all registered criteria."
    )
    critical: list[str] | None = Field(
        None,
        description="Criteria that must all pass for the trajectory to pass; null = all "
        "evaluated ones. The others only lower the score.",
    )
    seed: int = Field(0, description="'llm': seed of the criteria shuffles and of the requests.")
    max_result_chars: int = Field(
        1200, ge=50, description="'llm': tool results longer than this are cut in the prompt."
    )
    max_diff_lines: int = Field(
        40, ge=1, description="'llm': lines of the final-state diff shown in the prompt."
    )

    @field_validator("criteria", "critical")
    @classmethod
    def _known(cls, names: list[str] | None) -> list[str] | None:
        unknown = sorted(set(names or ()) - set(CRITERIA))
        if unknown:
            raise ValueError(f"unknown judge criteria {unknown}; known: {sorted(CRITERIA)}")
        return names

    @model_validator(mode="after")
    def _critical_are_evaluated(self) -> JudgeConfig:
        extra = sorted(set(self.critical or ()) - set(self.names))
        if extra:
            raise ValueError(f"critical criteria {extra} are not in criteria {self.names}")
        return self

    @property
    def names(self) -> list[str]:
        return list(self.criteria) if self.criteria is not None else list(CRITERIA)

    @property
    def critical_names(self) -> set[str]:
        return set(self.critical) if self.critical is not None else set(self.names)


# ------------------------------------------------------------------------------- judges


class Judge(Protocol):
    name: str

    def judge_many(self, trajectories: list[Trajectory]) -> list[Verdict]: ...


JudgeFactory = Callable[..., Judge]
_JUDGES: Registry[JudgeFactory] = Registry(
    "judge kind", lazy={"llm": "kimi_pipeline.judge.rubric_llm"}
)
register_judge = _JUDGES.register  # a judge factory under its ``kind``


def make_judge(
    config: JudgeConfig | Mapping[str, Any] | None = None, backend: ChatBackend | None = None
) -> Judge:
    """The configured judge; ``backend`` overrides the configured LLM backend (tests, reuse)."""
    if not isinstance(config, JudgeConfig):
        config = JudgeConfig.model_validate(dict(config or {}))
    return _JUDGES.lookup(config.kind)(config, backend=backend)


@register_judge("rule")
class RuleJudge:
    """Deterministic criteria over records, frame rows or plain dicts."""

    name = "rule"

    def __init__(self, config: JudgeConfig | None = None, backend: ChatBackend | None = None):
        self.config = config or JudgeConfig()
        self.names, self.critical = self.config.names, self.config.critical_names

    def judge(self, trajectory: Trajectory | Mapping[str, Any]) -> Verdict:
        return make_verdict(evaluate(episode(trajectory), self.names), self.critical, self.name)

    def judge_many(self, trajectories: Iterable[Trajectory | Mapping[str, Any]]) -> list[Verdict]:
        with gc_paused():
            return [self.judge(t) for t in trajectories]

    def judge_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[Verdict]:
        """Frame rows (nested fields as JSON text): the fast path, no pydantic validation."""
        return self.judge_many(rows)

    def judge_frame(self, frame) -> list[Verdict]:
        """A polars frame of ``Trajectory`` rows, judged row by row in order."""
        needed = [
            c for c in ("trajectory_id", *NESTED) if c in frame.columns and c != "initial_state"
        ]
        return self.judge_rows(frame.select(needed).iter_rows(named=True))

