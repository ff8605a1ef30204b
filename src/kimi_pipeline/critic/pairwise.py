"""Pairwise judging: a critic compares two answers to one prompt, and K answers get rewards.

K2 rewards subjective work (creative writing, open questions, advice) with a critic that
compares the policy's own answers under rubrics. This module is that comparison layer; the
critic model itself is anything that implements ``PairJudge`` (batched: one call judges many
pairs).

Both orders, always. A judge that reads answers in order tends to favour one position. Every
pair (a, b) is therefore judged as (a first, b second) and (b first, a second) in the same
batch. A pair is decided only when both orders agree; when one order is undecided the pair is a
tie; when the orders disagree, each preferring the answer in the same *position*, the pair is
a tie marked ``contradiction`` — the share of such pairs is the judge's position-bias rate.
Pairs the judge need not see are settled without it: identical answers (after whitespace
normalisation) tie, an empty answer loses to a non-empty one, two empty answers tie.

From pairs to K rewards. ``candidate_rewards`` judges all K(K-1)/2 pairs of K candidates in
both orders in one batch and turns the outcomes into one score per candidate with a registered
scorer (``CANDIDATE_SCORERS``):

- ``win_rate`` (the default): the share of its comparisons a candidate won, a tie counting half.
  This is what K2 describes — each answer compared against the others — and it is bounded in
  [0, 1] and needs no fit, so the reward means the same thing at every step.
- ``bradley_terry``: strengths fitted to all comparisons at once. With few comparisons per
  candidate (a sparse comparison graph) it shares evidence along the graph: beating a candidate
  that beat others counts for more. It is returned as a probability of beating an average
  opponent, also in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from kimi_pipeline.registry import registrar

Side = Literal["a", "b", "tie"]
PairItem = tuple[str, str, str, Sequence[str], str]  # prompt, a, b, rubric names, context
Comparison = tuple[int, int, "PairOutcome"]  # candidate i (as a), candidate j (as b), outcome


# ------------------------------------------------------------------------------ contracts


@dataclass(frozen=True)
class PairQuery:
    """One question to the critic: which of two answers to ``prompt`` is better."""

    prompt: str
    first: str  # the answer shown first
    second: str  # the answer shown second
    rubrics: tuple[str, ...]  # names of the rubrics to judge under
    context: str = ""  # category or domain of the prompt


@dataclass(frozen=True)
class Judgement:
    """The critic's answer to one ``PairQuery``."""

    p_first: float | None  # probability that ``first`` is better; None: the judge abstained
    per_rubric: dict[str, float] = field(default_factory=dict)  # rubric -> p_first under it
    reason: str = ""


@runtime_checkable
class PairJudge(Protocol):
    """A critic: judges a batch of pair queries, one judgement per query, in order."""

    def judge(self, queries: list[PairQuery]) -> list[Judgement]: ...


@dataclass
class PairOutcome:
    """The decision on one pair (a, b) after judging it in both orders."""

    winner: Side
    contradiction: bool  # the two orders each preferred the answer in the same position
    p_a: float  # mean probability that a is better over both orders; 0.5 when undecidable
    forward: Judgement | None  # the a-first judgement (None: settled without the judge)
    backward: Judgement | None  # the b-first judgement
    reason: str
    per_rubric: dict[str, Side] = field(default_factory=dict)

    @property
    def judged(self) -> bool:
        """Both orders gave a usable judgement (not a shortcut, no abstention)."""
        return _usable(self.forward) is None and _usable(self.backward) is None


# ------------------------------------------------------------------------- both orders


def _normalised(text: str) -> str:
    return " ".join((text or "").split())


def _shortcut(a: str, b: str) -> tuple[Side, str] | None:
    """The outcome of a pair that needs no judge, or None."""
    a, b = _normalised(a), _normalised(b)
    table: list[tuple[bool, Side, str]] = [
        (not a and not b, "tie", "both responses are empty"),
        (not a, "b", "response a is empty"),
        (not b, "a", "response b is empty"),
        (a == b, "tie", "identical responses"),
    ]
    return next(((side, why) for hit, side, why in table if hit), None)


_SHORTCUT_P = {"a": 1.0, "b": 0.0, "tie": 0.5}


def _probability(p: object) -> bool:
    return isinstance(p, (int, float)) and math.isfinite(p) and 0.0 <= p <= 1.0


def _usable(judgement: Judgement | None) -> str | None:
    """Why a judgement cannot be used, or None when it can."""
    if judgement is None:
        return "not judged"
    p = judgement.p_first
    if p is None:
        return "judge abstained" + (f": {judgement.reason}" if judgement.reason else "")
    if not _probability(p):
        return f"judge returned p_first={p!r}, not a probability"
    return None


def _vote(p_first: float | None, margin: float, a_first: bool) -> Side | None:
    """Which of a/b one order prefers (None: undecided within the margin)."""
    if not _probability(p_first) or abs(p_first - 0.5) <= margin:
        return None
    first_wins = p_first > 0.5
    return "a" if first_wins == a_first else "b"


def combine(p_forward: float | None, p_backward: float | None, margin: float) -> tuple[Side, bool]:
    """(winner, contradiction) from the a-first and b-first probabilities that the first-shown
    answer is better: agreement decides, one undecided order ties, disagreement ties with a
    contradiction. An order is decided when its probability is more than ``margin`` from 0.5."""
    forward = _vote(p_forward, margin, a_first=True)
    backward = _vote(p_backward, margin, a_first=False)
    if forward is not None and backward is not None and forward != backward:
        return "tie", True
    if forward is None or backward is None:
        return "tie", False
    return forward, False


def _per_rubric(
    forward: Judgement, backward: Judgement, rubrics: Sequence[str], margin: float
) -> dict[str, Side]:
    extra = sorted((set(forward.per_rubric) | set(backward.per_rubric)) - set(rubrics))
    out = {}
    for name in [*rubrics, *extra]:
        out[name] = combine(forward.per_rubric.get(name), backward.per_rubric.get(name), margin)[0]
    return out


def _decide(
    forward: Judgement, backward: Judgement, rubrics: Sequence[str], margin: float
) -> PairOutcome:
    """The outcome of a pair from its two judgements."""
    problems = [
        f"{order}: {why}"
        for order, j in (("a first", forward), ("b first", backward))
        if (why := _usable(j)) is not None
    ]
    if problems:
        return PairOutcome(
            "tie", False, 0.5, forward, backward, "; ".join(problems), {r: "tie" for r in rubrics}
        )
    p_f, p_b = float(forward.p_first), float(backward.p_first)
    winner, contradiction = combine(p_f, p_b, margin)
    p_a = (p_f + (1.0 - p_b)) / 2
    if contradiction:
        position = "first" if p_f > 0.5 else "second"
        verdict = f"orders disagree: the {position}-shown response was preferred both times"
    elif winner == "tie":
        verdict = f"undecided in at least one order (margin {margin})"
    else:
        verdict = f"{winner} preferred in both orders"
    reasons = [f"{verdict} (p_a={p_a:.3f})"]
    reasons += [f"{o}: {j.reason}" for o, j in (("a first", forward), ("b first", backward))
                if j.reason]
    return PairOutcome(
        winner,
        contradiction,
        p_a,
        forward,
        backward,
        "; ".join(reasons),
        _per_rubric(forward, backward, rubrics, margin),
    )


def judge_both_orders(
    judge: PairJudge, items: Sequence[PairItem], margin: float = 0.0
) -> list[PairOutcome]:
    """Outcomes of pairs ``(prompt, a, b, rubrics, context)``, in item order.

    Every pair the judge must see is asked a-first and b-first, all in ONE ``judge.judge``
    call; shortcuts (identical or empty responses) never reach the judge. An order prefers a
    response when its probability is more than ``margin`` away from 0.5."""
    if margin < 0 or margin >= 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    outcomes: list[PairOutcome | None] = []
    queries: list[PairQuery] = []
    for prompt, a, b, rubrics, context in items:
        rubrics = tuple(rubrics)
        settled = _shortcut(a, b)
        if settled is not None:
            side, why = settled
            outcomes.append(
                PairOutcome(side, False, _SHORTCUT_P[side], None, None, why,
                            {r: side for r in rubrics})
            )
            continue
        outcomes.append(None)
        queries += [
            PairQuery(prompt, a, b, rubrics, context),
            PairQuery(prompt, b, a, rubrics, context),
        ]
    judgements = judge.judge(queries) if queries else []
    if len(judgements) != len(queries):
        raise ValueError(
            f"pair judge returned {len(judgements)} judgements for {len(queries)} queries"
        )
    at = 0
    for index, (_, _, _, rubrics, _) in enumerate(items):
        if outcomes[index] is None:
            outcomes[index] = _decide(judgements[at], judgements[at + 1], tuple(rubrics), margin)
            at += 2
    return outcomes  # type: ignore[return-value]


# --------------------------------------------------------------------------- metrics


def position_bias_rate(outcomes: Sequence[PairOutcome]) -> float:
    """Share of contradictions among the pairs judged in both orders (shortcuts and
    abstentions excluded); 0.0 when no pair was judged."""
    judged = [o for o in outcomes if o.judged]
    return sum(o.contradiction for o in judged) / len(judged) if judged else 0.0


def agreement(outcomes: Sequence[PairOutcome], truth: Sequence[Literal["a", "b"]]) -> dict:
    """How the outcomes agree with known winners: ``accuracy`` (a tie earns half credit),
    ``strict_accuracy`` (a tie earns none), ``tie_rate`` and ``n``; rates are 0.0 when n = 0."""
    if len(outcomes) != len(truth):
        raise ValueError(f"{len(outcomes)} outcomes but {len(truth)} true winners")
    n = len(outcomes)
    if not n:
        return {"accuracy": 0.0, "strict_accuracy": 0.0, "tie_rate": 0.0, "n": 0}
    ties = sum(o.winner == "tie" for o in outcomes)
    right = sum(o.winner == t for o, t in zip(outcomes, truth))
    return {
        "accuracy": (right + 0.5 * ties) / n,
        "strict_accuracy": right / n,
        "tie_rate": ties / n,
        "n": n,
    }


# ------------------------------------------------------------------ pairs to K rewards

CandidateScorer = Callable[[int, Sequence[Comparison]], list[float]]
CANDIDATE_SCORERS: dict[str, CandidateScorer] = {}
register_scorer = registrar(CANDIDATE_SCORERS)  # a scorer of K candidates under its method name

_CREDIT = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5)}  # (credit of i, credit of j)


def _check(k: int, comparisons: Sequence[Comparison]) -> None:
    for i, j, _ in comparisons:
        if not (0 <= i < k and 0 <= j < k) or i == j:
            raise ValueError(f"comparison ({i}, {j}) is not a pair of distinct candidates of {k}")


@register_scorer("win_rate")
def win_rates(k: int, comparisons: Sequence[Comparison]) -> list[float]:
    """Per candidate, its share of won comparisons (a tie is half a win); 0.5 when a candidate
    was never compared. ``comparisons`` holds ``(i, j, outcome)`` with i as a and j as b."""
    _check(k, comparisons)
    wins, games = [0.0] * k, [0] * k
    for i, j, outcome in comparisons:
        credit_i, credit_j = _CREDIT[outcome.winner]
        wins[i] += credit_i
        wins[j] += credit_j
        games[i] += 1
        games[j] += 1
    return [w / g if g else 0.5 for w, g in zip(wins, games)]


@register_scorer("bradley_terry")
def bradley_terry(
    k: int, comparisons: Sequence[Comparison], iterations: int = 100, prior: float = 1.0
) -> list[float]:
    """Bradley-Terry strengths by MM (Zermelo) iterations, as probabilities in [0, 1].

    A tie counts as half a win for each side. Every candidate also plays ``prior`` pseudo-games
    against a virtual opponent of strength 1, all tied: this anchors the scale and keeps the
    fit finite when a candidate wins (or loses) everything. A strength ``s`` is returned as
    ``s / (s + 1)``, the modelled probability of beating that average opponent, so all ties or
    no comparisons give 0.5 and the order of the strengths is kept."""
    if prior <= 0:
        raise ValueError(f"prior must be > 0 (it keeps the fit finite), got {prior}")
    _check(k, comparisons)
    wins = [prior / 2] * k
    games: dict[tuple[int, int], float] = {}
    for i, j, outcome in comparisons:
        credit_i, credit_j = _CREDIT[outcome.winner]
        wins[i] += credit_i
        wins[j] += credit_j
        key = (min(i, j), max(i, j))
        games[key] = games.get(key, 0.0) + 1.0
    opponents: list[list[tuple[int, float]]] = [[] for _ in range(k)]
    for (i, j), n in games.items():
        opponents[i].append((j, n))
        opponents[j].append((i, n))
    strength = [1.0] * k
    for _ in range(iterations):
        new = [
            wins[i]
            / (prior / (strength[i] + 1.0) + sum(n / (strength[i] + strength[j])
                                                  for j, n in opponents[i]))
            for i in range(k)
        ]
        change = max((abs(math.log(x / y)) for x, y in zip(new, strength)), default=0.0)
        strength = new
        if change < 1e-10:
            break
    return [s / (s + 1.0) for s in strength]


def candidate_pairs(k: int) -> list[tuple[int, int]]:
    """The K(K-1)/2 pairs ``(i, j)``, i < j, in the order ``candidate_rewards`` judges them."""
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def score_outcomes(
    k: int, outcomes: Sequence[PairOutcome], method: str = "win_rate"
) -> list[float]:
    """Scores of K candidates from the outcomes of ``candidate_pairs(k)``, by a registered
    scorer."""
    if method not in CANDIDATE_SCORERS:
        raise ValueError(f"unknown candidate scorer {method!r}; known: {sorted(CANDIDATE_SCORERS)}")
    pairs = candidate_pairs(k)
    if len(outcomes) != len(pairs):
        raise ValueError(f"{len(outcomes)} outcomes for the {len(pairs)} pairs of {k} candidates")
    return CANDIDATE_SCORERS[method](k, [(i, j, o) for (i, j), o in zip(pairs, outcomes)])


def tally(k: int, comparisons: Sequence[Comparison]) -> list[dict[str, int]]:
    """Per candidate: ``wins``, ``losses``, ``ties``, ``contradictions`` (ties from orders that
    disagreed) and ``compared`` (comparisons it took part in)."""
    _check(k, comparisons)
    rows = [dict(wins=0, losses=0, ties=0, contradictions=0, compared=0) for _ in range(k)]
    for i, j, outcome in comparisons:
        for me, side in ((i, "a"), (j, "b")):
            row = rows[me]
            row["compared"] += 1
            if outcome.winner == "tie":
                row["ties"] += 1
                row["contradictions"] += outcome.contradiction
            else:
                row["wins" if outcome.winner == side else "losses"] += 1
    return rows


def pair_items(
    prompt: str, candidates: Sequence[str], rubrics: Sequence[str], context: str = ""
) -> list[PairItem]:
    """The items of ``candidate_pairs(len(candidates))`` for ``judge_both_orders``."""
    rubrics = tuple(rubrics)
    return [
        (prompt, candidates[i], candidates[j], rubrics, context)
        for i, j in candidate_pairs(len(candidates))
    ]


def candidate_rewards(
    judge: PairJudge,
    prompt: str,
    candidates: Sequence[str],
    rubrics: Sequence[str],
    context: str = "",
    method: str = "win_rate",
    margin: float = 0.0,
) -> tuple[list[float], list[PairOutcome]]:
    """One score per candidate and the outcomes of ``candidate_pairs(K)``: every pair judged
    in both orders in one batch, then scored with ``CANDIDATE_SCORERS[method]``."""
    if method not in CANDIDATE_SCORERS:
        raise ValueError(f"unknown candidate scorer {method!r}; known: {sorted(CANDIDATE_SCORERS)}")
    outcomes = judge_both_orders(judge, pair_items(prompt, candidates, rubrics, context), margin)
    return score_outcomes(len(candidates), outcomes, method), outcomes
