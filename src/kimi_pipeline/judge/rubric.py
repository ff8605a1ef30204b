"""The rubric judge: keep only trajectories that succeed against their task's rubric.

K2 filters its synthetic tool-use dialogues by rejection sampling: an LLM judge scores each
trajectory against the task rubric and only successful ones are kept (K2 report §3.1).
Two judges share one interface (``Judge.judge_many``) and one output (``Verdict``: pass/fail,
score, a verdict with its reason per criterion):

- ``rule``: deterministic criteria, each a small registered function over an ``Episode`` (the
  trajectory read once: its calls with parsed results, its final answer, its rubric). They
  check the rubric's state predicates on the final snapshot, the required / forbidden tool
  pattern and its order, the checkpoints a rule can read, that the answers state the
  required facts (``$ref`` facts resolved from the successful tool results, by the contract
  in ``envs.state``; the final answer, or an earlier one after a successful call, since a
  user who asks for one part per turn hears each part's facts when it is done) without
  claiming a success that did not happen, and that the dialogue ended the way the task
  expects.
- ``llm``: the same criteria put to a model through ``llm/`` as a rubric prompt (criteria,
  transcript, tool results, final-state diff) asking for a JSON verdict per criterion; the
  steps every LLM judge shares (criteria list, reply parsing, repeats, vote) come from the
  one LLM-judge core, ``judge.llm_judge``. Each trajectory is judged ``repeats`` times with
  the criteria in a different (seeded) order and the verdicts are voted per criterion, which
  cancels position bias and sampling noise; a malformed reply abstains, never raises. The
  offline program for the ``judge`` role runs the rule criteria over the request's context,
  so ``kind: llm`` offline equals ``kind: rule``.

The rule judge is the hot path (every synthesised trajectory goes through it): it reads
parquet rows directly (``judge_rows`` / ``judge_frame``) without validating pydantic models,
and its patterns are compiled once.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Mapping, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kimi_pipeline.envs.state import RefError, is_ref, resolve_ref
from kimi_pipeline.envs.semantics import infer_semantics
from kimi_pipeline.envs.world import check_predicate
from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.llm_judge import Abstain, CriterionVerdict, Verdicts
from kimi_pipeline.llm.base import BackendConfig, ChatBackend, ChatRequest, make_backend
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.records import ExpectedCall, Message, Rubric, StatePredicate, Trajectory
from kimi_pipeline.gcpause import gc_paused
from kimi_pipeline.registry import registrar
from kimi_pipeline.text import says_cannot

ROLE = "judge"
NESTED = ("messages", "tools", "initial_state", "final_state", "rubric", "outcome")
READ_ONLY = ("read", "list")
CUT_ENDS = ("max_turns", "step_limit", "agent_error", "simulator_error")  # dialogue cut short


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


# ---------------------------------------------------------------------------- the episode


@dataclass
class Call:
    """One tool call the agent made and what came back."""

    name: str
    arguments: dict[str, Any]
    position: int  # index of the assistant message that made it
    result: Any = None  # parsed JSON result (text when it was not JSON)
    ok: bool = False  # a result came back and it is not an error
    error_type: str | None = None


@dataclass
class Episode:
    """A trajectory read once for judging: everything the criteria look at. Tools and the
    initial state stay as stored (JSON text in frame rows) until a criterion needs them."""

    trajectory_id: str
    messages: list[dict[str, Any]]  # record-shaped dicts (records.Message fields)
    final_state: dict[str, Any]
    rubric: Rubric | RubricView
    finished: bool
    end_reason: str
    stored_tools: str | list[dict[str, Any]] = field(default_factory=list)
    stored_initial_state: str | dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)  # successful results in order: '$ref' steps
    final_answer: str = ""
    final_position: int = -1  # index of the message holding the final answer

    @cached_property
    def tools(self) -> list[dict[str, Any]]:
        return decoded(self.stored_tools) or []

    @cached_property
    def initial_state(self) -> dict[str, Any]:
        return decoded(self.stored_initial_state) or {}

    @cached_property
    def operations(self) -> dict[str, str]:
        """Tool name -> inferred operation (create, read, list, update, delete, action)."""
        if not isinstance(self.stored_tools, str):
            return _operations(self.tools)
        ops = _OPERATIONS.get(self.stored_tools)
        if ops is None:
            if len(_OPERATIONS) >= _OPERATIONS_LIMIT:
                _OPERATIONS.clear()
            ops = _OPERATIONS[self.stored_tools] = _operations(self.tools)
        return ops

    def mutating(self, name: str) -> bool:
        return self.operations.get(name, "read") not in READ_ONLY

    @cached_property
    def earlier_answers(self) -> str:
        """The assistant's texts before the final answer and after its first successful call:
        where a multi-turn dialogue reports the parts done in earlier turns."""
        first = next((c.position for c in self.calls if c.ok), None)
        if first is None:
            return ""
        return "\n".join(
            m["content"]
            for m in self.messages[first + 1 : max(self.final_position, 0)]
            if m.get("role") == "assistant" and m.get("content")
        )

    @cached_property
    def successful(self) -> list[Call]:
        return [c for c in self.calls if c.ok]

    @cached_property
    def unmatched_required(self) -> list[tuple[ExpectedCall | CallView, str]]:
        """Required calls no successful call matches (one call serves one requirement), with why."""
        free = list(self.successful)
        missing = []
        for expected in sorted(self.rubric.required_calls, key=lambda e: -len(e.arguments)):
            hit = next((i for i, c in enumerate(free) if _call_matches(expected, c)), None)
            if hit is None:
                missing.append((expected, _why_unmatched(expected, self.calls)))
            else:
                free.pop(hit)
        return missing


# tools JSON text -> operations: an agent's trajectories share one tool list
_OPERATIONS: dict[str, dict[str, str]] = {}
_OPERATIONS_LIMIT = 4096


def _operations(tools: list[dict[str, Any]]) -> dict[str, str]:
    ops = {}
    for tool in tools:
        fn = tool.get("function") or tool
        ops[fn["name"]] = infer_semantics(
            fn["name"], fn.get("description") or "", fn.get("parameters") or {}
        ).operation
    return ops


def _call_matches(expected: ExpectedCall | CallView, call: Call) -> bool:
    return call.name == expected.name and all(
        k in call.arguments and _same(call.arguments[k], v) for k, v in expected.arguments.items()
    )


def _same(actual: Any, wanted: Any) -> bool:
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return type(actual) is type(wanted) and actual == wanted
    return actual == wanted


def _why_unmatched(expected: ExpectedCall | CallView, calls: list[Call]) -> str:
    attempts = [c for c in calls if c.name == expected.name]
    if not attempts:
        return "never called"
    good = [c for c in attempts if c.ok]
    if not good:
        return f"every call failed ({attempts[-1].error_type or 'error'})"
    diffs = [
        f"{k}={_short(good[-1].arguments.get(k, '<missing>'))} (expected {_short(v)})"
        for k, v in expected.arguments.items()
        if not (k in good[-1].arguments and _same(good[-1].arguments[k], v))
    ]
    if not diffs:  # the matching calls all serve other requirements of the same call
        return "called fewer times than required"
    return "called with other arguments: " + ", ".join(diffs)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ----------------------------------------------------------------- reading a trajectory


def plain_trajectory(trajectory: Trajectory | Mapping[str, Any]) -> dict[str, Any]:
    """A trajectory as plain data: a record is read attribute by attribute (no model dump); a
    frame row (nested fields as JSON text) or an already decoded dict is decoded as needed."""
    if isinstance(trajectory, Trajectory):
        return _record_fields(trajectory)
    return {k: decoded(v) if k in NESTED else v for k, v in trajectory.items()}


def _record_fields(trajectory: Trajectory) -> dict[str, Any]:
    return {
        "trajectory_id": trajectory.trajectory_id,
        "messages": plain_messages(trajectory.messages),
        "tools": trajectory.tools,
        "initial_state": trajectory.initial_state,
        "final_state": trajectory.final_state,
        "rubric": trajectory.rubric,
        "outcome": trajectory.outcome,
    }


def plain_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Record messages as the dicts a frame row holds (attribute reads, no model dump)."""
    return [_plain_message(m) for m in messages]


def _plain_message(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments, "raw_arguments": c.raw_arguments}
            for c in message.tool_calls
        ],
        "tool_call_id": message.tool_call_id,
        "name": message.name,
    }


@dataclass(slots=True)
class PredicateView:
    """A stored state predicate, read without validation (``check_predicate`` duck-types it)."""

    path: str
    op: str
    value: Any = None
    field: str | None = None


@dataclass(slots=True)
class CallView:
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class RubricView:
    """A stored rubric with the attributes of ``records.Rubric``, read without validation
    (the stage that wrote it validated it; building pydantic models is the judge's slowest step)."""

    state_predicates: list[PredicateView]
    required_facts: list[str]
    required_calls: list[CallView]
    forbidden_calls: list[str]
    order_constraints: list[tuple[str, str]]
    checkpoints: list[str]
    expected_outcome: str
    success_criteria: list[str]
    difficulty: str


def as_rubric(rubric: Rubric | Mapping[str, Any]) -> Rubric | RubricView:
    if isinstance(rubric, Rubric):
        return rubric
    get = rubric.get
    return RubricView(
        state_predicates=[
            PredicateView(p["path"], p["op"], p.get("value"), p.get("field"))
            for p in get("state_predicates") or ()
        ],
        required_facts=get("required_facts") or [],
        required_calls=[
            CallView(c["name"], c.get("arguments") or {}) for c in get("required_calls") or ()
        ],
        forbidden_calls=get("forbidden_calls") or [],
        order_constraints=[tuple(pair) for pair in get("order_constraints") or ()],
        checkpoints=get("checkpoints") or [],
        expected_outcome=get("expected_outcome") or "complete",
        success_criteria=get("success_criteria") or [],
        difficulty=get("difficulty") or "",
    )


def decoded(value: Any) -> Any:
    """A stored nested field: JSON text in frame rows, already a value elsewhere."""
    return json.loads(value) if isinstance(value, str) else value


def parse_result(content: Any) -> Any:
    if not isinstance(content, str):
        return content
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return content


def error_type(result: Any) -> str | None:
    """The error kind of a tool result, or None when it is not an error."""
    if isinstance(result, dict) and "error" in result:
        error = result["error"]
        return str(error.get("type") or "error") if isinstance(error, dict) else "error"
    return None


def episode(trajectory: Trajectory | Mapping[str, Any]) -> Episode:
    """Read a trajectory (record, frame row or plain dict) once for the criteria."""
    data = _record_fields(trajectory) if isinstance(trajectory, Trajectory) else trajectory
    outcome = decoded(data["outcome"])
    if not isinstance(outcome, Mapping):  # a TrajectoryOutcome record
        outcome = {"finished": outcome.finished, "end_reason": outcome.end_reason}
    ep = Episode(
        trajectory_id=data.get("trajectory_id", ""),
        messages=decoded(data["messages"]),
        final_state=decoded(data.get("final_state")) or {},
        rubric=as_rubric(decoded(data["rubric"])),
        finished=bool(outcome.get("finished")),
        end_reason=str(outcome.get("end_reason")),
        stored_tools=data.get("tools") or [],
        stored_initial_state=data.get("initial_state") or {},
    )
    _read_messages(ep)
    return ep


def _read_messages(ep: Episode) -> None:
    pending: dict[str, Call] = {}
    for index, message in enumerate(ep.messages):
        role = message.get("role")
        if role == "assistant":
            if message.get("content"):
                ep.final_answer, ep.final_position = message["content"], index
            for raw in message.get("tool_calls") or ():
                call = Call(raw.get("name", ""), raw.get("arguments") or {}, index)
                ep.calls.append(call)
                pending[raw.get("id")] = call
        elif role == "tool":
            call = pending.pop(message.get("tool_call_id"), None)
            if call is None:
                continue
            call.result = parse_result(message.get("content"))
            call.error_type = error_type(call.result)
            call.ok = call.error_type is None
            if call.ok:
                ep.results.append(call.result)


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


def _describe(predicate: StatePredicate | PredicateView) -> str:
    where = predicate.path + (f".{predicate.field}" if predicate.field else "")
    shown = "" if predicate.op in ("exists", "absent") else " " + _short(predicate.value)
    return f"{where} {predicate.op}{shown}"


@register_criterion(
    "state_predicates", "Every state predicate of the rubric holds on the final state."
)
def _state_predicates(ep: Episode) -> Result:
    predicates = ep.rubric.state_predicates
    failed = [p for p in predicates if not check_predicate(ep.final_state, p)]
    if failed:
        return False, "does not hold: " + "; ".join(_describe(p) for p in failed[:3])
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
            missing.append(_short(value) + (f" ({fact})" if is_ref(fact) else ""))
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
        default_factory=BackendConfig, description="LLM backend of the 'llm' judge."
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
_JUDGES: dict[str, JudgeFactory] = {}


register_judge = registrar(_JUDGES)  # a judge factory under its ``kind``


def make_judge(
    config: JudgeConfig | Mapping[str, Any] | None = None, backend: ChatBackend | None = None
) -> Judge:
    """The configured judge; ``backend`` overrides the configured LLM backend (tests, reuse)."""
    if not isinstance(config, JudgeConfig):
        config = JudgeConfig.model_validate(dict(config or {}))
    if config.kind not in _JUDGES:
        raise ValueError(f"unknown judge kind {config.kind!r}; known: {sorted(_JUDGES)}")
    return _JUDGES[config.kind](config, backend=backend)


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


# ------------------------------------------------------------------------------ LLM judge

SYSTEM_PROMPT = (
    "You are a strict grader of dialogues between a user and a tool-using AI assistant. You "
    "receive the task's rubric, the criteria to judge, the dialogue with every tool call and "
    "result, and how the environment state changed. Judge each criterion independently, from "
    "the evidence only; a claim in the assistant's words is not evidence that something "
    "happened. Reply with JSON only, no prose around it: "
    '{"criteria": [{"name": "<criterion>", "passed": true|false, "reason": "<one sentence>"}], '
    '"passed": true|false} with one entry per criterion, in the order given.'
)


def _rubric_lines(rubric: Rubric | RubricView) -> list[str]:
    calls = [
        f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in rubric.required_calls
    ]
    sections = [
        ("Success criteria", rubric.success_criteria),
        ("Checkpoints", rubric.checkpoints),
        ("State predicates on the final state", [_describe(p) for p in rubric.state_predicates]),
        ("Required calls (listed arguments must match)", calls),
        ("Forbidden tools", rubric.forbidden_calls),
        ("Order (before -> after)", [f"{a} -> {b}" for a, b in rubric.order_constraints]),
        ("Facts the final answer must state", rubric.required_facts),
    ]
    lines = [f"Expected outcome: {rubric.expected_outcome}"]
    for title, items in sections:
        lines += [f"{title}:"] + [f"- {item}" for item in items or ["(none)"]]
    return lines


def transcript(ep: Episode, max_chars: int) -> list[str]:
    """The dialogue as the grader reads it: speakers, tool calls, (cut) tool results."""
    lines = []
    for message in ep.messages:
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            lines.append(
                f"[tool result: {message.get('name')}] "
                + _short(message.get("content") or "", max_chars)
            )
            continue
        if message.get("content"):
            lines.append(f"[{role}] {message['content']}")
        for call in message.get("tool_calls") or ():
            args = call.get("raw_arguments") or json.dumps(
                call.get("arguments") or {}, ensure_ascii=False
            )
            lines.append(f"[assistant calls] {call.get('name')}({args})")
    lines.append(f"[end: finished={ep.finished}, reason={ep.end_reason}]")
    return lines


def state_diff(before: dict[str, Any], after: dict[str, Any], limit: int) -> list[str]:
    """'+ added', '- removed', '~ changed field: old -> new' per resource of the state."""
    lines = []
    for coll in sorted(set(before) | set(after)):
        old, new = before.get(coll) or {}, after.get(coll) or {}
        if not (isinstance(old, dict) and isinstance(new, dict)):
            if old != new:
                lines.append(f"~ {coll}: {_short(old)} -> {_short(new)}")
            continue
        for rid in sorted(set(old) | set(new), key=str):
            if rid not in old:
                lines.append(f"+ {coll}.{rid} {_short(new[rid], 200)}")
            elif rid not in new:
                lines.append(f"- {coll}.{rid}")
            elif old[rid] != new[rid]:
                lines.append(f"~ {coll}.{rid} {_field_changes(old[rid], new[rid])}")
    return (
        (lines[:limit] + [f"… {len(lines) - limit} more"])
        if len(lines) > limit
        else lines or ["(no change)"]
    )


def _field_changes(old: Any, new: Any) -> str:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{_short(old)} -> {_short(new)}"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys)


def judge_prompt(ep: Episode, names: list[str], config: JudgeConfig) -> str:
    """The rubric prompt's user message: rubric, criteria in the given order, transcript,
    state diff."""
    return "\n".join(
        [
            "## Rubric",
            *_rubric_lines(ep.rubric),
            "",
            "## Criteria to judge, in this order",
            llm_judge.criteria_block((n, DESCRIPTIONS[n]) for n in names),
            "",
            "## Dialogue",
            *transcript(ep, config.max_result_chars),
            "",
            "## Final state compared with the initial state",
            *state_diff(ep.initial_state, ep.final_state, config.max_diff_lines),
        ]
    )


def _json_trajectory(trajectory: Trajectory | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(trajectory, Trajectory):
        return trajectory.model_dump(mode="json")
    data = plain_trajectory(trajectory)
    if isinstance(data.get("rubric"), Rubric):
        data["rubric"] = data["rubric"].model_dump(mode="json")
    return data


def vote(
    names: list[str], judgements: list[Verdicts | Abstain], critical: set[str], threshold: float
) -> Verdict:
    """Per-criterion vote over the repeats (``llm_judge.vote``); abstaining repeats are
    recorded, never counted, and when all abstain the trajectory fails with their reasons."""
    voted = llm_judge.vote(names, judgements, threshold)
    if isinstance(voted, Abstain):
        return Verdict(False, 0.0, [CriterionVerdict("judge_replies", False, voted.reason)], "llm")
    return make_verdict(voted, critical, "llm")


@register_judge("llm")
class LlmJudge:
    """LLM-as-judge: rubric prompt, JSON verdict per criterion, shuffled repeats, vote."""

    name = "llm"

    def __init__(self, config: JudgeConfig | None = None, backend: ChatBackend | None = None):
        self.config = config or JudgeConfig(kind="llm")
        self.backend = backend or make_backend(self.config.backend)
        self.names, self.critical = self.config.names, self.config.critical_names

    def requests(self, trajectory: Trajectory | Mapping[str, Any]) -> list[ChatRequest]:
        """One request per repeat, the criteria shuffled by a seed of the trajectory and repeat."""
        data = _json_trajectory(trajectory)
        ep = episode(data)
        orders = llm_judge.shuffled_orders(
            self.names, ep.trajectory_id, self.config.repeats, self.config.seed
        )
        return [
            llm_judge.json_request(
                ROLE,
                SYSTEM_PROMPT,
                judge_prompt(ep, order, self.config),
                {"trajectory": data, "criteria": order, "critical": sorted(self.critical)},
                seed=self.config.seed * 1000 + repeat,
            )
            for repeat, order in enumerate(orders)
        ]

    def judge_many(self, trajectories: Iterable[Trajectory | Mapping[str, Any]]) -> list[Verdict]:
        batches = [self.requests(t) for t in trajectories]
        replies = llm_judge.ask(self.backend, [r for batch in batches for r in batch])
        verdicts, at = [], 0
        for batch in batches:
            batch_replies = replies[at : at + len(batch)]
            judgements = [llm_judge.verdicts_of(j, self.names) for j in batch_replies]
            verdicts.append(vote(self.names, judgements, self.critical, self.config.pass_threshold))
            at += len(batch)
        return verdicts


@offline_role(ROLE)
def offline_judge(request: ChatRequest) -> dict[str, Any]:
    """The offline judge model: the rule criteria over the context, in the requested order."""
    ctx = request.context
    criteria = evaluate(episode(ctx["trajectory"]), ctx["criteria"])
    critical = set(ctx.get("critical") or ctx["criteria"])
    return {
        "criteria": [asdict(c) for c in criteria],
        "passed": all(c.passed for c in criteria if c.name in critical),
    }
