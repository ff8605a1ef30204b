"""The rubric's rule criteria: small registered checks of one ``Episode`` each.

Each criterion is a function ``Episode -> (passed, reason)`` registered with
``@register_criterion(name, description)``; the description is what the LLM judge reads for
the same criterion, so both judges grade one list (K2 report §3.1: trajectories are kept only
when they succeed against their task's rubric). They check the rubric's state predicates on
the final snapshot, the required / forbidden tool pattern and its order, the checkpoints a
rule can read (``@register_checkpoint``: one pattern per kind of free-text milestone), that
the answers state the required facts (``$ref`` facts resolved from the successful tool
results; the final answer, or an earlier one after a successful call, since a user who asks
for one part per turn hears each part's facts when it is done) without claiming a success
that did not happen, and that the dialogue ended the way the task expects
(``@register_outcome`` per expected outcome).

The registration order is the default criteria order of every verdict. Patterns are compiled
once: the rule judge runs on every synthesised trajectory.
"""

from __future__ import annotations

import math
import re
from functools import cached_property
from typing import Any, Callable, Iterable

from kimi_pipeline.envs.state import RefError, check_predicate, is_ref, resolve_ref
from kimi_pipeline.judge.episode import Episode, PredicateView, short
from kimi_pipeline.judge.llm_judge import CriterionVerdict
from kimi_pipeline.records import StatePredicate
from kimi_pipeline.registry import registrar
from kimi_pipeline.text import says_cannot

CUT_ENDS = ("max_turns", "step_limit", "agent_error", "simulator_error")  # dialogue cut short


# --------------------------------------------------------------------------- text matching

_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w-])")
_NUMERIC = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_QUESTION = re.compile(
    r"\?|\b(?:could|can|would) you (?:please )?(?:tell|provide|share|confirm|specify|give)\b"
    r"|\bplease (?:provide|tell|share|confirm|specify|send|give)\b",
    re.I,
)
_CHANGED = (
    r"(?:created|updated|changed|modified|cancell?ed|deleted|removed|booked|scheduled|sent|"
    r"placed|submitted|registered|added|imported|exported|moved|renamed|attached|detached|"
    r"assigned|confirmed|approved|closed|archived|processed|saved|written|wrote|executed|"
    r"set up|set|ran|run|paid|transferred|refunded|uploaded|enabled|disabled|reset)"
)
# a claim that something changed (needs a successful state-changing call behind it)
_CHANGE_CLAIM = re.compile(
    rf"\b(?:i|we)(?:['’]ve| have)? (?:just |now |also |successfully )?{_CHANGED}\b"
    rf"|\b(?:has|have) (?:now )?been (?:successfully )?{_CHANGED}\b|\b(?:is|are) now\b",
    re.I,
)
# a claim that the request is done (needs the work done)
_DONE_CLAIM = re.compile(
    r"\ball done\b|\bdone[!.:]|\beverything (?:you asked for )?is done\b|\btaken care of\b"
    r"|\bwent through\b|\bsuccessfully\b",
    re.I,
)


def _float(text: str) -> float:
    return float(text.replace(",", ""))


class Text:
    """An answer prepared once for fact lookups: case-folded, spaces collapsed, numbers parsed."""

    def __init__(self, text: str):
        self.text = text
        self.lower = _SPACE.sub(" ", text).lower()

    @cached_property
    def numbers(self) -> list[float]:
        return [_float(n) for n in _NUMBER.findall(self.text)]

    def states(self, value: Any) -> bool:
        """Whether the text states ``value`` (case-insensitive, tolerant of number format)."""
        if isinstance(value, bool):
            return self._has(str(value).lower()) or self._has("yes" if value else "no")
        if isinstance(value, (int, float)):
            return self._has_number(float(value))
        fact = _SPACE.sub(" ", str(value)).strip().lower()
        if _NUMERIC.fullmatch(fact):
            return self._has_number(_float(fact)) or self._has(fact)
        return self._has(fact) or self._has(fact.rstrip(".!?,;:"))

    def _has_number(self, number: float) -> bool:
        return any(math.isclose(n, number, rel_tol=1e-9, abs_tol=1e-9) for n in self.numbers)

    def _has(self, needle: str) -> bool:
        """Substring match that does not start or end inside a word (BSK-76 is not in BSK-761)."""
        if not needle:
            return False
        text, start = self.lower, 0
        head, tail = needle[0].isalnum(), needle[-1].isalnum()
        while (at := text.find(needle, start)) >= 0:
            end = at + len(needle)
            if not (head and at > 0 and text[at - 1].isalnum()) and not (
                tail and end < len(text) and text[end].isalnum()
            ):
                return True
            start = at + 1
        return False


def asks(text: str) -> bool:
    return bool(_QUESTION.search(text))


# ------------------------------------------------------------------------------- criteria

Result = tuple[bool, str]
Criterion = Callable[[Episode], Result]
CRITERIA: dict[str, Criterion] = {}
DESCRIPTIONS: dict[str, str] = {}  # what each criterion means, as the LLM judge reads it


def register_criterion(name: str, description: str):
    """Add a rule criterion (and its description for the LLM judge's prompt) to the registry."""

    def wrap(function: Criterion) -> Criterion:
        CRITERIA[name] = function
        DESCRIPTIONS[name] = description
        return function

    return wrap


def describe_predicate(predicate: StatePredicate | PredicateView) -> str:
    """'path.field op value': a predicate as the verdicts and the LLM judge's prompt show it."""
    where = predicate.path + (f".{predicate.field}" if predicate.field else "")
    shown = "" if predicate.op in ("exists", "absent") else " " + short(predicate.value)
    return f"{where} {predicate.op}{shown}"


@register_criterion(
    "state_predicates", "Every state predicate of the rubric holds on the final state."
)
def _state_predicates(ep: Episode) -> Result:
    predicates = ep.rubric.state_predicates
    failed = [p for p in predicates if not check_predicate(ep.final_state, p)]
    if failed:
        return False, "does not hold: " + "; ".join(describe_predicate(p) for p in failed[:3])
    return True, f"all {len(predicates)} predicates hold"


@register_criterion(
    "required_calls",
    "Each required call was made, with the listed argument values, and did not return an error.",
)
def _required_calls(ep: Episode) -> Result:
    missing = ep.unmatched_required
    if missing:
        return False, "; ".join(f"{e.name}: {why}" for e, why in missing[:3])
    return True, f"all {len(ep.rubric.required_calls)} required calls made"


@register_criterion("forbidden_calls", "No forbidden tool was called (not even unsuccessfully).")
def _forbidden_calls(ep: Episode) -> Result:
    called = {c.name for c in ep.calls}
    hits = [name for name in ep.rubric.forbidden_calls if name in called]
    return (False, "called " + ", ".join(hits)) if hits else (True, "no forbidden tool called")


def _first_success(ep: Episode, name: str) -> int | None:
    return next((i for i, c in enumerate(ep.calls) if c.ok and c.name == name), None)


@register_criterion(
    "order_constraints",
    "For each (before, after) pair, the first successful call of 'before' precedes the first "
    "successful call of 'after'.",
)
def _order_constraints(ep: Episode) -> Result:
    broken = []
    for before, after in ep.rubric.order_constraints:
        first, then = _first_success(ep, before), _first_success(ep, after)
        if first is None:
            broken.append(f"{before} never succeeded")
        elif then is not None and then < first:
            broken.append(f"{after} succeeded before {before}")
    return (False, "; ".join(broken)) if broken else (True, "order respected")


@register_criterion(
    "required_facts",
    "The assistant's answers state every required fact ('$ref:<i>.<path>': that field of the "
    "i-th successful tool result, 0-based): the final message, or an earlier answer given after "
    "a successful tool call (a user who asks for one part per turn hears each part's facts "
    "when it is done); case and number format do not matter.",
)
def _required_facts(ep: Episode) -> Result:
    facts = ep.rubric.required_facts
    if not facts:
        return True, "no facts required"
    answer, earlier, missing = Text(ep.final_answer), None, []
    for fact in facts:
        try:
            value = resolve_ref(fact, ep.results) if is_ref(fact) else fact
        except RefError:
            missing.append(f"{fact} (does not resolve: no such successful result)")
            continue
        if answer.states(value):
            continue
        earlier = earlier or Text(ep.earlier_answers)
        if not earlier.states(value):
            missing.append(short(value) + (f" ({fact})" if is_ref(fact) else ""))
    if missing:
        return False, "the final answer, like the earlier ones, does not state: " + "; ".join(
            missing[:4]
        )
    return True, f"all {len(facts)} facts stated"


@register_criterion(
    "no_false_success_claim",
    "The final answer does not claim a success that did not happen: no claim of having done or "
    "changed something without a successful state-changing call behind it, while a required "
    "call never succeeded, or right after a failed call.",
)
def _no_false_success_claim(ep: Episode) -> Result:
    text = ep.final_answer
    change, done = _CHANGE_CLAIM.search(text), _DONE_CLAIM.search(text)
    if not (change or done):
        return True, "no success claimed"
    if says_cannot(text):
        return True, "the answer admits what was not done"
    claim = (change or done).group(0)
    if not ep.successful:
        return False, f"claims success ({claim!r}) but no tool call succeeded"
    if change and not any(ep.mutating(c.name) for c in ep.successful):
        return False, f"claims a change ({claim!r}) but no state-changing call succeeded"
    if ep.unmatched_required:
        expected, why = ep.unmatched_required[0]
        return False, f"claims success ({claim!r}) but required {expected.name} {why}"
    last = ep.calls[-1]
    if not last.ok:
        return False, f"claims success ({claim!r}) right after {last.name} failed"
    return True, f"success claim ({claim!r}) backed by successful calls"


# expected outcome -> check of how the dialogue ended
OUTCOMES: dict[str, Criterion] = {}


register_outcome = registrar(OUTCOMES)


@register_outcome("complete")
def _complete(ep: Episode) -> Result:
    if ep.end_reason != "satisfied":
        return False, f"the user was not satisfied (end: {ep.end_reason})"
    return True, "the user ended satisfied"


@register_outcome("refuse_unsupported")
def _refuse(ep: Episode) -> Result:
    if not says_cannot(ep.final_answer):
        return False, "the final answer does not refuse the unsupported request"
    changed = [c.name for c in ep.calls if ep.mutating(c.name)]
    forbidden = [c.name for c in ep.calls if c.name in ep.rubric.forbidden_calls]
    if changed or forbidden:
        return False, "refused but called " + ", ".join(sorted(set(changed + forbidden)))
    return True, "refused without calling a state-changing tool"


@register_outcome("ask_user")
def _ask(ep: Episode) -> Result:
    if not asks(ep.final_answer):
        return False, "the final answer asks the user nothing"
    return True, "the agent asks the user"


@register_criterion(
    "outcome",
    "The dialogue ends the way the task expects: 'complete' with the user satisfied, "
    "'refuse_unsupported' with a clear refusal and no state-changing or forbidden call, "
    "'ask_user' with a question to the user.",
)
def _outcome(ep: Episode) -> Result:
    expected = ep.rubric.expected_outcome
    check = OUTCOMES.get(expected)
    if check is None:
        return False, f"unknown expected outcome {expected!r}"
    return check(ep)


@register_criterion(
    "dialogue_finished", "The dialogue ended normally, not cut by turn or step limits or errors."
)
def _dialogue_finished(ep: Episode) -> Result:
    if not ep.finished or ep.end_reason in CUT_ENDS:
        return False, f"dialogue cut ({ep.end_reason})"
    if not ep.final_answer:
        return False, "the assistant never answered"
    return True, f"ended normally ({ep.end_reason})"


# checkpoints: the rubric's free-text milestones a rule can read, one pattern each

Checkpoint = Callable[[Episode, re.Match], Result]
CHECKPOINTS: list[tuple[re.Pattern, Checkpoint]] = []
_ANY_CHECKPOINT = [re.compile("(?!)")]  # all patterns in one: most checkpoints match none
_GROUP_NAME = re.compile(r"\(\?P<\w+>")


def register_checkpoint(pattern: str):
    def wrap(function: Checkpoint) -> Checkpoint:
        CHECKPOINTS.append((re.compile(pattern, re.I), function))
        plain = (_GROUP_NAME.sub("(?:", p.pattern) for p, _ in CHECKPOINTS)
        _ANY_CHECKPOINT[0] = re.compile("|".join(f"(?:{p})" for p in plain), re.I)
        return function

    return wrap


@register_checkpoint(r"^asks the user for .*?before calling (?P<tool>[\w.-]+)")
def _asks_first(ep: Episode, match: re.Match) -> Result:
    tool = match["tool"]
    first = next((c.position for c in ep.calls if c.name == tool), None)
    if first is None:
        return False, f"never calls {tool}"
    asked = any(
        m.get("role") == "assistant" and asks(m.get("content") or "") for m in ep.messages[:first]
    )
    return (
        (True, f"asks before calling {tool}") if asked else (False, f"calls {tool} without asking")
    )


@register_checkpoint(r"^retries (?P<tool>[\w.-]+) after")
def _retries(ep: Episode, match: re.Match) -> Result:
    tool = match["tool"]
    failed = next((i for i, c in enumerate(ep.calls) if c.name == tool and not c.ok), None)
    if failed is None:
        return True, f"{tool} never failed"
    if any(c.name == tool for c in ep.calls[failed + 1 :]):
        return True, f"retries {tool}"
    return False, f"does not retry {tool} after it failed"


@register_checkpoint(r"^calls (?P<tool>[\w.-]+)")
def _calls(ep: Episode, match: re.Match) -> Result:
    tool = match["tool"]
    if any(c.name == tool for c in ep.successful):
        return True, f"calls {tool}"
    return False, f"no successful call of {tool}"


@register_checkpoint(r"^recognises that none of its tools")
def _recognises(ep: Episode, match: re.Match) -> Result:
    return (
        (True, "says it cannot") if says_cannot(ep.final_answer)
        else (False, "does not say it cannot")
    )


@register_checkpoint(r"without calling any state-changing tool")
def _no_change(ep: Episode, match: re.Match) -> Result:
    changed = sorted({c.name for c in ep.calls if ep.mutating(c.name)})
    return (False, "calls " + ", ".join(changed)) if changed else (True, "no state-changing call")


@register_criterion(
    "checkpoints",
    "Each checkpoint of the rubric is reached, in the dialogue's order (asks before guessing, "
    "retries after a transient failure, makes the listed calls, refuses when it cannot).",
)
def _checkpoints(ep: Episode) -> Result:
    checked, failed = 0, []
    for text in ep.rubric.checkpoints:
        if not _ANY_CHECKPOINT[0].search(text):
            continue
        for pattern, check in CHECKPOINTS:
            match = pattern.search(text)
            if match:
                ok, why = check(ep, match)
                checked += 1
                if not ok:
                    failed.append(why)
                break
    if failed:
        return False, "; ".join(failed[:3])
    rest = len(ep.rubric.checkpoints) - checked
    return True, f"{checked} checkpoints reached" + (
        f", {rest} covered by other criteria" if rest else ""
    )


def evaluate(ep: Episode, names: Iterable[str]) -> list[CriterionVerdict]:
    """Run the named rule criteria on one episode."""
    return [CriterionVerdict(name, *CRITERIA[name](ep)) for name in names]

