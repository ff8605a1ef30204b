"""The one reward protocol of the RL stage: K candidate answers in, K scored results out.

K2's RL mixes rewards of different kinds: verifiable answers (math, code, logic, instruction
following) checked by the gym's verifiers, tool-use episodes checked against their task's
rubric, and subjective answers ranked by a critic that compares them pairwise. The RL stage
must not care which: it builds ``RewardGroup``s (one prompt, its K candidates, whatever item
the source needs) and calls ``Reward.score`` on a batch of them, getting one ``RewardResult``
(a score in [0, 1], a reason, details) per candidate in candidate order.

Sources plug in by name (``@register_reward``) and are built with ``make_reward(name,
**options)``:

- ``verifier``: the gym domains; ``item`` is the ``GymTask``, the score the verifier's reward.
- ``rubric``: tool-use trajectories judged by ``judge.rubric`` (rule or LLM judge); the score
  is the share of criteria passed.
- ``critic``: a ``PairJudge`` compares the candidates pairwise in both orders; the score is the
  candidate's win rate (or Bradley-Terry strength) among its group.

Every source batches a whole ``score`` call into as few backend calls as it can (one
``verify_many`` per domain, one ``judge_many``, one pair-judge batch), since the RL step calls
it once per step with every group of the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kimi_pipeline.critic.pairwise import (
    CANDIDATE_SCORERS,
    PairJudge,
    PairOutcome,
    candidate_pairs,
    judge_both_orders,
    pair_items,
    score_outcomes,
    tally,
)
from kimi_pipeline.gym.registry import Domain, Verification, error_line, get_domain
from kimi_pipeline.judge.rubric import JudgeConfig, Verdict, make_judge
from kimi_pipeline.llm.base import ChatBackend
from kimi_pipeline.records import GymTask
from kimi_pipeline.registry import registrar

# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class RewardResult:
    """The reward of one candidate."""

    score: float  # in [0, 1]
    reason: str  # why, precise enough to debug the policy or the reward source
    details: dict[str, Any] = field(default_factory=dict)  # source specifics


@dataclass
class RewardGroup:
    """One prompt and the K candidates the policy sampled for it."""

    prompt: str
    candidates: list[Any]  # responses: texts; ``rubric``: trajectories (records or rows)
    item: Any = None  # what the source needs: a GymTask for ``verifier``, nothing for ``critic``
    context: str = ""  # category or domain of the prompt


@runtime_checkable
class Reward(Protocol):
    """A reward source: one result per candidate of every group, in candidate order."""

    name: str

    def score(self, groups: list[RewardGroup]) -> list[list[RewardResult]]: ...


_REWARDS: dict[str, Callable[..., Reward]] = {}
register_reward = registrar(_REWARDS)  # a reward factory (usually its class) under its name


def make_reward(name: str, **options: Any) -> Reward:
    """The reward source registered as ``name``, built with ``options``."""
    if name not in _REWARDS:
        raise ValueError(f"unknown reward {name!r}; known: {sorted(_REWARDS)}")
    return _REWARDS[name](**options)


def _clamp(score: float) -> float:
    return min(1.0, max(0.0, float(score)))


def _text(candidate: Any) -> str:
    return "" if candidate is None else str(candidate)


# ----------------------------------------------------------------------------- verifier


@register_reward("verifier")
class VerifierReward:
    """Gym verifiers: each candidate verified against the group's ``GymTask``.

    ``domains`` maps domain names to configured domain objects (e.g. a copy with an LLM judge);
    names it lacks fall back to the registered domains. A task of an unknown domain, or a
    verifier that fails, scores 0 with the reason instead of stopping the RL step."""

    name = "verifier"

    def __init__(self, domains: Mapping[str, Domain] | None = None,
                 max_workers: int | None = None):
        self.domains = dict(domains or {})
        self.max_workers = max_workers

    def domain(self, name: str) -> Domain:
        """The configured domain ``name``, else the registered one (KeyError when unknown)."""
        return self.domains[name] if name in self.domains else get_domain(name)

    def score(self, groups: list[RewardGroup]) -> list[list[RewardResult]]:
        """Verdicts of every candidate; one ``verify_many`` call per domain for the batch."""
        tasks = [_task(g.item) for g in groups]
        by_domain: dict[str, list[tuple[int, int]]] = {}
        for gi, (group, task) in enumerate(zip(groups, tasks)):
            by_domain.setdefault(task.domain, []).extend(
                (gi, ci) for ci in range(len(group.candidates))
            )
        results: list[list[RewardResult | None]] = [[None] * len(g.candidates) for g in groups]
        for name, slots in by_domain.items():
            pairs = [(tasks[gi], _text(groups[gi].candidates[ci])) for gi, ci in slots]
            for (gi, ci), verdict in zip(slots, self._verify(name, pairs)):
                results[gi][ci] = RewardResult(
                    _clamp(verdict.reward),
                    verdict.reason,
                    {"domain": name, "task_id": tasks[gi].task_id, "verification": verdict.details},
                )
        return results  # type: ignore[return-value]

    def _verify(self, name: str, pairs: list[tuple[GymTask, str]]) -> list[Verification]:
        try:
            domain = self.domain(name)
        except KeyError as exc:
            return [Verification(0.0, f"unknown gym domain {name!r}: {exc}")] * len(pairs)
        try:
            return domain.verify_many(pairs, max_workers=self.max_workers)
        except Exception as exc:  # a broken verifier must not stop the RL step
            return [Verification(0.0, f"verifier error: {error_line(exc)}")] * len(pairs)


def _task(item: Any) -> GymTask:
    if isinstance(item, GymTask):
        return item
    if isinstance(item, Mapping):
        return GymTask.model_validate(dict(item))
    raise TypeError(f"the verifier reward needs a GymTask as the group's item, got {type(item)}")


# ------------------------------------------------------------------------------- rubric


@register_reward("rubric")
class RubricReward:
    """Tool-use episodes: each candidate trajectory judged against its rubric; the score is
    the share of criteria passed, the reason names the failed ones."""

    name = "rubric"

    def __init__(self, judge: JudgeConfig | Mapping[str, Any] | None = None,
                 backend: ChatBackend | None = None):
        self.judge = make_judge(judge, backend=backend)

    def score(self, groups: list[RewardGroup]) -> list[list[RewardResult]]:
        """Verdicts of every trajectory of the batch, from one ``judge_many`` call."""
        flat = [t for g in groups for t in g.candidates]
        verdicts = iter(self.judge.judge_many(flat)) if flat else iter(())
        return [[_rubric_result(next(verdicts)) for _ in g.candidates] for g in groups]


def _rubric_result(verdict: Verdict) -> RewardResult:
    failed = [c for c in verdict.criteria if not c.passed]
    reason = (
        "failed: " + "; ".join(f"{c.name} ({c.reason})" for c in failed)
        if failed
        else "every criterion passed"
    )
    details = {
        "passed": verdict.passed,
        "judge": verdict.judge,
        "criteria": {c.name: c.passed for c in verdict.criteria},
    }
    return RewardResult(_clamp(verdict.score), reason, details)


# ------------------------------------------------------------------------------- critic


@register_reward("critic")
class CriticReward:
    """Subjective answers: a pair judge compares every two candidates of a group in both
    orders; the score is the candidate's ``method`` score among its group (``win_rate`` by
    default, see ``critic.pairwise``). All the pairs of a batch go to the judge in one call."""

    name = "critic"

    def __init__(self, judge: PairJudge, rubrics: Sequence[str] = (), method: str = "win_rate",
                 margin: float = 0.0):
        if not isinstance(judge, PairJudge):
            raise TypeError(f"the critic reward needs a PairJudge (a .judge method), got {judge!r}")
        if method not in CANDIDATE_SCORERS:
            raise ValueError(
                f"unknown candidate scorer {method!r}; known: {sorted(CANDIDATE_SCORERS)}"
            )
        self.judge, self.rubrics = judge, tuple(rubrics)
        self.method, self.margin = method, margin

    def score(self, groups: list[RewardGroup]) -> list[list[RewardResult]]:
        """Win rates (or strengths) of every candidate, each group scored on its own pairs."""
        texts = [[_text(c) for c in g.candidates] for g in groups]
        items = [
            item
            for g, t in zip(groups, texts)
            for item in pair_items(g.prompt, t, self.rubrics, g.context)
        ]
        outcomes = judge_both_orders(self.judge, items, self.margin)
        results, at = [], 0
        for t in texts:
            k, n = len(t), len(candidate_pairs(len(t)))
            results.append(self._group(k, outcomes[at : at + n]))
            at += n
        return results

    def _group(self, k: int, outcomes: list[PairOutcome]) -> list[RewardResult]:
        if k == 1:
            return [RewardResult(0.5, "no other candidate to compare", {"method": self.method})]
        scores = score_outcomes(k, outcomes, self.method)
        comparisons = [(i, j, o) for (i, j), o in zip(candidate_pairs(k), outcomes)]
        results = []
        for score, row in zip(scores, tally(k, comparisons)):
            reason = (
                f"{self.method} {score:.3f}: won {row['wins']}, lost {row['losses']}, "
                f"tied {row['ties']} of {row['compared']} comparisons"
                + (f" ({row['contradictions']} ties from orders that disagreed)"
                   if row["contradictions"] else "")
            )
            results.append(RewardResult(_clamp(score), reason, {"method": self.method, **row}))
        return results
