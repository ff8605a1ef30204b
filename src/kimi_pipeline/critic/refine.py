"""Closed-loop refinement: the critic is kept honest by on-policy answers whose truth is known.

K2 grounds its subjective critic in objective signal: for a gym task the policy answered both
right and wrong, the verifier says which answer is better, so every (correct, incorrect) pair of
answers to one task is a preference the critic must reproduce. ``verifier_pairs`` makes those
pairs and sets tasks aside (by a seeded hash of the task id, so a task is never both trained on
and measured); ``measure`` is the critic's agreement with the verifiers on pairs, judged in both
orders (chance is 50 %: every pair is asked as (chosen, rejected) and (rejected, chosen), and a
contradiction scores as a tie, half a point); ``refine_critic`` measures, fits, and measures
again. The ``rl`` stage calls ``refine_critic`` every N iterations with fresh rollouts.

A held-out share of a few dozen tasks leaves only a handful of them to measure on (the
default run has 20 tasks answered both right and wrong; 30 % held out were 2 tasks and 21
pairs, one standard error ≈ 10 points). ``cross_validate`` measures every task instead: the
tasks are dealt into folds, each fold is judged by the critic fitted without it, and the
out-of-fold judgements are pooled — the critic it returns is then fitted on every pair.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kimi_pipeline.critic.bootstrap import pair_id
from kimi_pipeline.critic.model import Critic
from kimi_pipeline.critic.pairwise import (
    PairOutcome,
    agreement,
    judge_both_orders,
    position_bias_rate,
)
from kimi_pipeline.records import GymResult, PreferencePair


def heldout(group_id: str, share: float, seed: int) -> bool:
    """Whether ``group_id`` is set aside for measuring (stable across runs and data sizes)."""
    digest = hashlib.sha256(f"{seed}:{group_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def verifier_pairs(rollouts: Iterable[GymResult], prompts: Mapping[str, str], share: float,
                   seed: int = 0, max_pairs_per_task: int = 12) -> list[PreferencePair]:
    """(verified-correct, verified-incorrect) answer pairs to the same gym task.

    Empty and repeated answers are skipped; a task with many pairs contributes a seeded sample
    of ``max_pairs_per_task`` so that one task cannot dominate the fit or the measurement."""
    right: dict[str, dict[str, GymResult]] = defaultdict(dict)
    wrong: dict[str, dict[str, GymResult]] = defaultdict(dict)
    for result in rollouts:
        if result.response.strip() and result.task_id in prompts:
            side = right if result.reward >= 1.0 else wrong
            side[result.task_id].setdefault(result.response, result)
    pairs = []
    for task_id in sorted(set(right) & set(wrong)):
        combos = [(a, b) for a in right[task_id].values() for b in wrong[task_id].values()]
        rng = random.Random(f"{seed}:{task_id}")
        if len(combos) > max_pairs_per_task:
            combos = rng.sample(combos, max_pairs_per_task)
        split = "heldout" if heldout(task_id, share, seed) else "train"
        pairs += [PreferencePair(
            pair_id=pair_id(task_id, "verifier", a.response, b.response), group_id=task_id,
            domain=a.domain, prompt=prompts[task_id], chosen=a.response, rejected=b.response,
            source="verifier", split=split,
            reasons=[f"verifier passed the chosen answer; rejected: {b.reason[:200]}"],
        ) for a, b in combos]
    return pairs


def judge_pairs(critic: Critic, pairs: Sequence[PreferencePair], margin: float = 0.0
                ) -> list[PairOutcome]:
    """The critic's outcome on every pair (chosen as a, rejected as b), judged in both orders."""
    items = [(p.prompt, p.chosen, p.rejected, tuple(p.rubrics), p.domain) for p in pairs]
    return judge_both_orders(critic, items, margin=margin)


def measure(critic: Critic, pairs: Sequence[PreferencePair], margin: float = 0.0
            ) -> dict[str, Any]:
    """Agreement of the critic with the pairs' preferences, overall and per domain, each pair
    judged in both orders; ``position_bias`` is the share of contradictory judgements;
    ``rubric_verdicts`` how often each rubric sided with the chosen answer, the rejected one or
    neither."""
    if not pairs:
        return {"n": 0}
    return summarise(pairs, judge_pairs(critic, pairs, margin))


def summarise(pairs: Sequence[PreferencePair], outcomes: Sequence[PairOutcome]
              ) -> dict[str, Any]:
    """``measure``'s summary of outcomes already judged (pairs and outcomes in one order)."""
    if not pairs:
        return {"n": 0}
    summary = {**agreement(outcomes, ["a"] * len(pairs)),
               "position_bias": position_bias_rate(outcomes)}
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_domain[p.domain].append(i)
    verdicts: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in outcomes:
        for rubric, side in outcome.per_rubric.items():
            verdicts[rubric][{"a": "chosen", "b": "rejected"}.get(side, "tie")] += 1
    summary["rubric_verdicts"] = {r: dict(c) for r, c in sorted(verdicts.items())}
    summary["domains"] = {
        domain: agreement([outcomes[i] for i in rows], ["a"] * len(rows))
        for domain, rows in sorted(by_domain.items())}
    return summary


@dataclass
class RefinementResult:
    """The refined critic and its agreement on the held-out pairs before and after."""

    critic: Critic
    before: dict[str, Any]
    after: dict[str, Any]
    fit: dict[str, Any] = field(default_factory=dict)


def refine_critic(critic: Critic, fresh: Sequence[PreferencePair],
                  keep: Sequence[PreferencePair] = ()) -> RefinementResult:
    """Measure on ``fresh``'s held-out pairs, fit on its train pairs plus ``keep`` (e.g. the
    bootstrap pairs, so the prescriptive lessons are not forgotten), measure again."""
    measured = [p for p in fresh if p.split == "heldout"]
    train = [*keep, *(p for p in fresh if p.split == "train")]
    if not train:
        raise ValueError("no train pair to refine the critic on: the rollouts have no task "
                         "answered both right and wrong outside the held-out share")
    before = measure(critic, measured)
    fitted = critic.fit(train)
    return RefinementResult(critic, before, measure(critic, measured), fitted)


def folds_of(pairs: Sequence[PreferencePair], folds: int, seed: int = 0) -> list[list[int]]:
    """Pair indices dealt into ``folds`` groups by task (``group_id``): the tasks are shuffled
    by ``seed`` and dealt round-robin, so the folds differ in size by at most one task."""
    tasks = sorted({p.group_id for p in pairs})
    random.Random(f"folds:{seed}").shuffle(tasks)
    fold_of = {task: i % folds for i, task in enumerate(tasks)}
    dealt: list[list[int]] = [[] for _ in range(min(folds, len(tasks)))]
    for index, pair in enumerate(pairs):
        dealt[fold_of[pair.group_id]].append(index)
    return dealt


def cross_validate(critic: Critic, pairs: Sequence[PreferencePair],
                   keep: Sequence[PreferencePair] = (), folds: int = 5, seed: int = 0,
                   margin: float = 0.0) -> RefinementResult:
    """Agreement on every pair of ``pairs``, each judged by the critic fitted on ``keep`` and
    the pairs of the other folds' tasks; ``before`` is the critic as given, on every pair.
    The critic comes back fitted on ``keep`` and all of ``pairs``. Only for critics whose
    ``fit`` starts afresh (``refits_from_scratch``): a fine-tuned critic would carry what it
    saw of a fold into the next."""
    if not getattr(critic, "refits_from_scratch", False):
        raise ValueError(f"critic kind {critic.kind!r} fits on top of its last fit: "
                         "cross-validation needs a critic that refits from scratch")
    if not pairs:
        raise ValueError("no pair to refine the critic on: the rollouts have no task "
                         "answered both right and wrong")
    dealt = folds_of(pairs, folds, seed)
    if len(dealt) < 2:
        raise ValueError(f"cross-validation needs pairs from two tasks at least, got {len(dealt)}")
    before = measure(critic, pairs, margin)
    outcomes: list[PairOutcome | None] = [None] * len(pairs)
    for held in dealt:
        held_set = set(held)
        critic.fit([*keep, *(p for i, p in enumerate(pairs) if i not in held_set)])
        for index, outcome in zip(held, judge_pairs(critic, [pairs[i] for i in held], margin)):
            outcomes[index] = outcome
    after = {**summarise(pairs, outcomes), "folds": len(dealt)}
    return RefinementResult(critic, before, after, critic.fit([*keep, *pairs]))
