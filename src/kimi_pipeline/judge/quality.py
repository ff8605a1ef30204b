"""How good is the judge? Its verdicts against the outcomes the generator knows.

The offline agent records every imperfection it injected (``outcome.agent_imperfections``)
and the user simulator records how the dialogue ended, so for synthetic trajectories there is
a ground truth to hold the rule judge's "success" against: its precision (kept trajectories
that really succeeded) and recall (real successes that were kept), per-imperfection pass
rates, and, when an LLM judge is configured too, how often the two agree (Cohen's kappa).

Ground truth: a trajectory *truly succeeded* when all of these hold.

1. The dialogue ended the way the task expects, by the user simulator's verdict: ``satisfied``
   for ``complete`` tasks, ``satisfied_with_refusal`` for ``refuse_unsupported`` tasks, an
   un-cut end for ``ask_user`` tasks.
2. No imperfection that breaks the task by construction was injected: ``give_up`` (the agent
   stops before a plan step), ``missing_argument`` (a required argument is left out; the schema
   refuses the call and the plan cannot finish), ``hallucinated_success`` (the answer claims a
   step that never ran).
3. The gold outcome was reached, τ-bench style: the rubric's state predicates (the state
   difference of replaying the reference plan) hold on the final state, and the facts the gold
   answer carries are said verbatim (case-insensitive; ``$ref`` facts resolved) in the final
   answer. This also covers environment faults: a fault counts only if it was not recovered.
4. Value imperfections (``wrong_argument``, ``skip_clarification``) break the task unless every
   gold call still ran successfully with its gold argument values (an imperfection can be a
   no-op, e.g. a "wrong" value equal to the right one).

Only the imperfection records are hidden from the judge. The end reason (the user
simulator's stop is part of the dialogue) and the gold data (predicates, facts, calls) are read
by both, the facts matched more strictly here (verbatim) than by the judge (tolerant of case
and number format). Precision therefore measures above all whether the judge sees, from the
dialogue alone, the failures the generator injected and the user accepted: a hallucinated
success, a wrong value that went through, a skipped clarification.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Iterable, Mapping

from kimi_pipeline.envs.state import RefError, check_predicate, is_ref, resolve_ref
from kimi_pipeline.judge.criteria import CUT_ENDS
from kimi_pipeline.judge.episode import Episode, episode, plain_trajectory
from kimi_pipeline.judge.rubric import Verdict
from kimi_pipeline.records import Trajectory

BREAKING = ("give_up", "missing_argument", "hallucinated_success")
VALUE_FLAWS = ("wrong_argument", "skip_clarification")
EXPECTED_ENDS: dict[str, Callable[[str], bool]] = {
    "complete": lambda end: end == "satisfied",
    "refuse_unsupported": lambda end: end == "satisfied_with_refusal",
    "ask_user": lambda end: end not in CUT_ENDS,
}


def _said(ep: Episode, fact: str) -> bool:
    try:
        value = resolve_ref(fact, ep.results) if is_ref(fact) else fact
    except RefError:
        return False
    return str(value).lower() in ep.final_answer.lower()


def ground_truth(trajectory: Trajectory | Mapping[str, Any]) -> tuple[bool, str]:
    """(truly succeeded, why not) by the definition in the module docstring."""
    data = plain_trajectory(trajectory)
    ep = episode(data)
    outcome = _outcome(data["outcome"])
    flaws = set(outcome.get("agent_imperfections") or ())
    expected = EXPECTED_ENDS.get(ep.rubric.expected_outcome, lambda end: False)
    if not (ep.finished and expected(ep.end_reason)):
        return False, f"dialogue ended {ep.end_reason!r}"
    broken = sorted(flaws.intersection(BREAKING))
    if broken:
        return False, f"breaking imperfection {broken[0]}"
    failed = [p for p in ep.rubric.state_predicates if not check_predicate(ep.final_state, p)]
    if failed:
        return False, "gold state not reached"
    if not all(_said(ep, fact) for fact in ep.rubric.required_facts):
        return False, "gold facts not said"
    if flaws.intersection(VALUE_FLAWS) and ep.unmatched_required:
        return False, "a wrong value reached a gold call"
    return True, "succeeded"


def _outcome(outcome: Any) -> dict[str, Any]:
    if isinstance(outcome, Mapping):
        return outcome
    return {
        "agent_imperfections": outcome.agent_imperfections,
        "injected_faults": outcome.injected_faults,
    }


# (truly succeeded, judge passed) -> confusion cell
_CELLS = {
    (True, True): "true_positive",
    (False, True): "false_positive",
    (True, False): "false_negative",
    (False, False): "true_negative",
}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def judge_quality(
    trajectories: Iterable[Trajectory | Mapping[str, Any]], verdicts: list[Verdict]
) -> dict[str, Any]:
    """Precision / recall of the verdicts' "success" against the ground truth, confusion
    counts, pass rate per injected imperfection, and failing-criterion counts."""
    trajectories = list(trajectories)
    if len(trajectories) != len(verdicts):
        raise ValueError(f"{len(trajectories)} trajectories but {len(verdicts)} verdicts")
    confusion = Counter()
    per_flaw: dict[str, Counter] = {}
    failed_criteria, why_not = Counter(), Counter()
    false_pos, false_neg = [], []
    for trajectory, verdict in zip(trajectories, verdicts):
        data = plain_trajectory(trajectory)
        truth, why = ground_truth(data)
        cell = _CELLS[truth, verdict.passed]
        confusion[cell] += 1
        failed_criteria.update(verdict.failed())
        tid = data.get("trajectory_id", "")
        if cell == "false_positive":
            false_pos.append({"trajectory_id": tid, "truth": why})
        elif cell == "false_negative":
            false_neg.append({"trajectory_id": tid, "failed": verdict.failed()})
        elif cell == "true_negative":
            why_not[why] += 1
        outcome = _outcome(data["outcome"])
        clean = not outcome.get("agent_imperfections") and not outcome.get("injected_faults")
        confusion["clean"] += clean
        confusion["clean_passed"] += clean and verdict.passed
        for flaw in sorted(set(outcome.get("agent_imperfections") or ())) or ["none"]:
            counts = per_flaw.setdefault(flaw, Counter())
            counts.update(count=1, passed=int(verdict.passed), truly_succeeded=int(truth))
    tp, fp, fn = (confusion[k] for k in ("true_positive", "false_positive", "false_negative"))
    return {
        "trajectories": len(trajectories),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "confusion": {cell: confusion[cell] for cell in _CELLS.values()},
        "pass_rate": _ratio(tp + fp, len(trajectories)),
        # no imperfection and no environment fault: what a good agent would always get kept
        "clean_pass_rate": _ratio(confusion["clean_passed"], confusion["clean"]),
        "per_imperfection": {
            flaw: {**c, "pass_rate": _ratio(c["passed"], c["count"])}
            for flaw, c in sorted(per_flaw.items())
        },
        "failed_criteria": dict(failed_criteria.most_common()),
        "true_negatives_by_cause": dict(why_not.most_common()),
        "false_positives": false_pos[:20],
        "false_negatives": false_neg[:20],
    }


def judge_agreement(verdicts_a: list[Verdict], verdicts_b: list[Verdict]) -> dict[str, Any]:
    """How often two judges agree on pass/fail (rate and Cohen's kappa), and per criterion."""
    if len(verdicts_a) != len(verdicts_b):
        raise ValueError(f"{len(verdicts_a)} verdicts against {len(verdicts_b)}")
    overall = _agreement([v.passed for v in verdicts_a], [v.passed for v in verdicts_b])
    per_criterion = {}
    for name in _shared_criteria(verdicts_a, verdicts_b):
        pairs = [
            (ca[name], cb[name])
            for a, b in zip(verdicts_a, verdicts_b)
            for ca, cb in [
                ({c.name: c.passed for c in a.criteria}, {c.name: c.passed for c in b.criteria})
            ]
            if name in ca and name in cb
        ]
        per_criterion[name] = _agreement([p[0] for p in pairs], [p[1] for p in pairs])
    return {**overall, "per_criterion": per_criterion}


def _shared_criteria(verdicts_a: list[Verdict], verdicts_b: list[Verdict]) -> list[str]:
    names_a = {c.name for v in verdicts_a for c in v.criteria}
    names_b = {c.name for v in verdicts_b for c in v.criteria}
    return sorted(names_a & names_b)


def _agreement(a: list[bool], b: list[bool]) -> dict[str, Any]:
    """Agreement rate and Cohen's kappa of two binary label lists."""
    n = len(a)
    if not n:
        return {"n": 0, "agreement": None, "kappa": None}
    observed = sum(x == y for x, y in zip(a, b)) / n
    yes_a, yes_b = sum(a) / n, sum(b) / n
    chance = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    kappa = 1.0 if chance == 1 else (observed - chance) / (1 - chance)
    return {"n": n, "agreement": round(observed, 6), "kappa": round(kappa, 6)}
