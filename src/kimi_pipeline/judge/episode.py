"""A trajectory read once for judging: the ``Episode`` every rubric criterion looks at.

The rule judge reads every synthesised trajectory (K2 report §3.1 keeps only the ones a judge
accepts), so reading is the hot path and is done once per trajectory: ``episode`` takes a
record, a frame row (nested fields as JSON text) or a plain dict and pairs each tool call with
its parsed result (``Call``: ok or the error's type), finds the final answer and lists the
successful results in order (what a ``$ref`` fact resolves against, by the contract in
``envs.state``). Stored rubrics are read into plain views (``RubricView``) without pydantic
validation, the stage that wrote them validated them; tools and the initial state stay JSON
text until a criterion needs them, and a tool list's inferred operations (what makes a call
state-changing) are computed once per distinct list.

``format_checks``, ``quality`` and the LLM rubric prompt read trajectories through the same
helpers (``plain_trajectory``, ``plain_messages``, ``decoded``, ``parse_result``,
``error_type``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping

from kimi_pipeline.envs.semantics import infer_semantics
from kimi_pipeline.records import ExpectedCall, Message, TaskRubric, Trajectory

NESTED = ("messages", "tools", "initial_state", "final_state", "rubric", "outcome")
READ_ONLY = ("read", "list")


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
    rubric: TaskRubric | RubricView
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
        f"{k}={short(good[-1].arguments.get(k, '<missing>'))} (expected {short(v)})"
        for k, v in expected.arguments.items()
        if not (k in good[-1].arguments and _same(good[-1].arguments[k], v))
    ]
    if not diffs:  # the matching calls all serve other requirements of the same call
        return "called fewer times than required"
    return "called with other arguments: " + ", ".join(diffs)


def short(value: Any, limit: int = 60) -> str:
    """``value`` as text (JSON unless a string), cut to ``limit`` characters with an ellipsis."""
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
    """A stored rubric with the attributes of ``records.TaskRubric``, read without validation
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


def as_rubric(rubric: TaskRubric | Mapping[str, Any]) -> TaskRubric | RubricView:
    if isinstance(rubric, TaskRubric):
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


def result_error(content: Any) -> str | None:
    """The error type of a tool result's content (None: no error); only text that mentions
    "error" is parsed."""
    if isinstance(content, str) and '"error"' not in content:
        return None
    return error_type(parse_result(content))


AGENT_ERRORS = ("invalid_arguments", "invalid_json", "unknown_tool", "not_found")  # its own doing


def corrected_calls(messages: list[dict[str, Any]]) -> set[str]:
    """Ids of the calls the agent itself corrected: a call the API refused for the agent's own
    mistake (``AGENT_ERRORS``: bad arguments, bad JSON, no such tool, no such id) whose very
    next move, with no user message between, calls the same tool with other arguments (after
    an ``unknown_tool``: any other call), and the API takes that call. A lookup that rightly
    finds nothing and is then reported to the user is not a correction; nor is a resend of the
    same call."""
    results: dict[str, str | None] = {}  # call id -> its error type (None: it went through)
    for message in messages:
        if message.get("role") == "tool":
            results[message.get("tool_call_id")] = result_error(message.get("content"))
    moves = [m.get("tool_calls") or () for m in messages if m.get("role") in ("assistant", "user")]
    corrected = set()
    for calls, after in zip(moves, moves[1:]):  # a user message is a move without calls
        taken = [c for c in after if c.get("id") in results
                 and results[c["id"]] not in AGENT_ERRORS]
        for call in calls:
            error = results.get(call.get("id"))
            if error in AGENT_ERRORS and any(
                (c.get("name") == call.get("name") or error == "unknown_tool")
                and _sent(c) != _sent(call)
                for c in taken
            ):
                corrected.add(call.get("id"))
    return corrected


def _sent(call: dict[str, Any]) -> tuple[Any, ...]:
    return call.get("name"), call.get("arguments"), call.get("raw_arguments")


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

