"""The offline program of the ``agent`` role: a deterministic planner that plays a task's plan.

The agent's request (``agents.policy.policy_request``) carries the task, the seed, the
imperfection rates and the user's script in its context. Without a model, this program solves
the task from its reference plan — asking for a withheld argument first, chaining '$ref' values
from earlier tool results, retrying a retryable error once, stating the facts in its final
answer, refusing unsupported requests. At a configured rate it makes a mistake and corrects it
(``CORRECTIONS``): one call first goes out without a required argument or with an argument named
as in another tool (the API answers 400), under a near-miss of the tool's name, or with an id
that is not in the world (404), and the next call, having read the error, is the right one —
the recovery a tool-using model has to learn (a small one resends the refused call until the
step limit), while the flawed call itself is kept out of SFT's labels
(``curation.sft_format``). And, at the configured rates drawn once per episode from
the seed, it errs: a wrong argument value, an omitted required argument, a skipped clarification
(a guessed value), giving up midway, or claiming success without making the call. Each injected
imperfection is reported once, in ``ChatResponse.meta["imperfections"]`` of the turn where it
happens: the ground truth the judge's verdicts are checked against (K2 report §3.1 keeps only
the trajectories a judge accepts, so the filter needs failures to reject).

The program is stateless: every turn it re-reads the dialogue (OpenAI-format messages: the
assistant's tool calls and the tool results) to find where the plan stands. It acts only on
what the user has said: a user may ask for its request one part per turn (the episode's
``user`` context gives the plan steps each part covers), so the agent answers once the parts
asked so far are done and goes on when the next part comes; it asks the user to be more
specific when the next call needs an id or value of the request the user has not said yet (a
vague user), and it checks with a user who will correct the opening before acting on it.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from kimi_pipeline.agents.policy import IMPERFECTIONS, ROLE
from kimi_pipeline.envs.semantics import label
from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.envs.state import ITEMS, RefError, is_ref, resolve_arguments, resolve_ref
from kimi_pipeline.llm.base import ChatRequest, ChatResponse, Usage
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.records import ToolCall

MAX_QUESTIONS = 2  # clarifying questions asked before the agent stops waiting for a value


# ------------------------------------------------------------------ reading the dialogue


@dataclass
class History:
    """Where the plan stands, read back from the dialogue."""

    results: list[Any] = field(default_factory=list)  # parsed result of each completed step
    attempts: dict[int, int] = field(default_factory=dict)  # plan step -> calls made
    retried: set[int] = field(default_factory=set)  # plan steps whose one retry is used
    mistake_made: bool = False  # the corrected mistake was sent and refused (or answered)
    mistake_retried: bool = False  # ... and its one retry after a 503 is used
    failure: tuple[str, dict[str, Any]] | None = None  # (tool, error) that ended the plan
    calls: int = 0
    said: list[str] = field(default_factory=list)  # assistant texts so far
    user_after_question: list[str] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)  # one line per completed step
    user_texts: list[str] = field(default_factory=list)  # every user message
    user_marks: list[int] = field(default_factory=list)  # steps done when each one came
    said_marks: list[int] = field(default_factory=list)  # steps done at each text in ``said``


def _parse(content: Any) -> Any:
    try:
        return json.loads(content) if isinstance(content, str) else content
    except json.JSONDecodeError:
        return content


def _error(result: Any) -> dict[str, Any] | None:
    if isinstance(result, dict) and isinstance(result.get("error"), dict):
        return result["error"]
    if isinstance(result, dict) and "error" in result:
        return {"message": str(result["error"])}
    return None


def _retryable(error: dict[str, Any]) -> bool:
    return error.get("retryable") is True or error.get("type") in (
        "transient",
        "timeout",
        "rate_limit",
    )


def read_history(
    messages: list[dict[str, Any]],
    semantics: dict[str, ToolSemantics],
    corrected_step: int | None = None,
) -> History:
    """``corrected_step``: the plan step whose first call is the episode's corrected mistake
    (its refusal, or any answer but a 503, does not count: the next call redoes the step)."""
    history = History()
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    for message in messages:
        role = message.get("role")
        if role == "assistant":
            if message.get("content"):
                history.said.append(message["content"])
                history.said_marks.append(len(history.results))
            for call in message.get("tool_calls") or ():
                history.calls += 1
                function = call.get("function") or {}
                args = _parse(function.get("arguments") or "{}")
                pending[call.get("id")] = (
                    function.get("name", ""),
                    args if isinstance(args, dict) else {},
                )
        elif role == "tool" and history.failure is None:
            name, args = pending.pop(message.get("tool_call_id"), (message.get("name", ""), {}))
            _record(history, name, args, _parse(message.get("content")), semantics,
                    corrected_step)
        elif role == "user":
            history.user_texts.append(message.get("content") or "")
            history.user_marks.append(len(history.results))
            if history.said:
                history.user_after_question.append(message.get("content") or "")
    return history


def _record(
    history: History,
    name: str,
    args: dict[str, Any],
    result: Any,
    semantics: dict[str, ToolSemantics],
    corrected_step: int | None = None,
) -> None:
    step = len(history.results)
    history.attempts[step] = history.attempts.get(step, 0) + 1
    error = _error(result)
    if step == corrected_step and not history.mistake_made:
        # the deliberate mistake: once the API has answered it (a 503 first: resent as it was),
        # the next call is the corrected one
        if error is not None and _retryable(error):
            if history.mistake_retried:
                history.failure = (name, error)
            history.mistake_retried = True
        else:
            history.mistake_made = True
        return
    if error is None:
        history.results.append(result)
        history.summaries.append(summarise(semantics.get(name), name, args, result))
    elif _retryable(error) and step not in history.retried:
        history.retried.add(step)
    else:
        history.failure = (name, error)


# ------------------------------------------------------------------------ final answers


def _items(result: Any) -> list[Any]:
    try:
        items = resolve_ref(f"$ref:0.{ITEMS}", [result])
    except RefError:
        return []
    return items if isinstance(items, list) else []


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _scalars(record: dict[str, Any], skip: set[str]) -> str:
    """'status: open, product: Mug, …': the scalar fields (and lists of scalars) of a record,
    status first."""
    keys = sorted(record, key=lambda k: k != "status")
    parts = []
    for k in keys:
        value = record[k]
        if k in skip:
            continue
        if isinstance(value, list) and value and all(_scalar(v) for v in value):
            value = ", ".join(map(str, value))
        if _scalar(value):
            parts.append(f"{label(k)}: {str(value)[:160]}")
    return ", ".join(parts[:16])


def summarise(sem: ToolSemantics | None, name: str, args: dict[str, Any], result: Any) -> str:
    """One sentence on what a successful call did, with the ids and values it returned."""
    if sem is None:
        return f"{name} returned {json.dumps(result, ensure_ascii=False)[:300]}."
    entity = label(sem.entity)
    record = result if isinstance(result, dict) else {}
    rid = record.get("id") or record.get(f"{sem.entity}_id") or args.get(sem.id_param or "")
    if not rid and sem.operation in ("read", "update", "delete"):  # e.g. delete_file(path)
        rid = next((v for v in args.values() if isinstance(v, str) and _identifier_like(v)), None)
    skip = {"id", f"{sem.entity}_id"}
    if sem.operation == "create":
        return f"I created {entity} {rid} ({_scalars(record, skip)})."
    if sem.operation == "read":
        return f"Details of {entity}{f' {rid}' if rid else ''}: {_scalars(record, skip)}."
    if sem.operation == "list":
        items = _items(result)
        if not items:
            return f"I found no matching {label(sem.collection)}."
        shown = "; ".join(
            (f"{i['id']} ({_scalars(i, skip)})" if "id" in i else _scalars(i, skip))
            if isinstance(i, dict) else str(i)
            for i in items[:10]
        )
        return f"I found {len(items)} {label(sem.collection)}: {shown}."
    if sem.operation == "update":
        if sem.status_value:
            return f"{entity.capitalize()} {rid} is now {sem.status_value}."
        changes = ", ".join(f"{label(k)}: {v}" for k, v in args.items() if k in sem.field_params)
        return f"I updated {entity} {rid}: {changes}."
    if sem.operation == "delete":
        return f"{entity.capitalize()} {rid} has been deleted."
    done = f"Done: {label(name)} went through"
    values = _scalars({k: v for k, v in args.items() if _identifier_like(v)}, set())
    fields = _scalars(record, set())
    return f"{done} with {values} ({fields})." if values else f"{done} ({fields})."


def _identifier_like(value: Any) -> bool:
    """Ids, codes, numbers and lists of them; not free text (a SQL statement, a message)."""
    if isinstance(value, list):
        return bool(value) and all(_identifier_like(v) for v in value)
    if isinstance(value, str):
        return 0 < len(value) <= 64 and not any(c.isspace() or c == "?" for c in value)
    return _scalar(value)


def capabilities(semantics: dict[str, ToolSemantics]) -> str:
    verbs = {
        "create": "create",
        "read": "look up",
        "list": "search",
        "update": "update",
        "delete": "delete",
        "action": "run",
    }
    phrases = []
    for sem in semantics.values():
        phrase = (
            f"{verbs[sem.operation]} {label(sem.collection)}"
            if sem.operation != "action"
            else label(sem.tool_name)
        )
        if phrase not in phrases:
            phrases.append(phrase)
    return ", ".join(phrases[:6]) or "answer questions"


# --------------------------------------------------------------------------- imperfections


@dataclass(frozen=True)
class Mistake:
    """The mistake an episode's agent makes once and corrects: at plan ``step``, ``kind`` (one of
    ``CORRECTIONS``) strikes argument ``arg`` (or the tool name), ``replacement`` being the
    wrong argument name or tool name it sends instead."""

    step: int
    kind: str
    arg: str | None = None
    replacement: str | None = None


@dataclass
class Flaws:
    """The imperfections drawn for one episode: name -> (plan step, argument) it strikes; and
    the mistake the agent corrects, if it makes one."""

    chosen: dict[str, tuple[int, str | None]]
    corrected: Mistake | None = None

    @property
    def corrected_step(self) -> int | None:
        return self.corrected.step if self.corrected else None

    def at(self, name: str, step: int) -> str | None | bool:
        hit = self.chosen.get(name)
        return False if hit is None or hit[0] != step else (hit[1] or True)


def draw_flaws(
    task: dict[str, Any],
    seed: int,
    rates: dict[str, float],
    semantics: dict[str, ToolSemantics],
    required: dict[str, tuple[str, ...]],
    tools: list[dict[str, Any]] | None = None,
) -> Flaws:
    """Each imperfection is drawn with its rate (always consuming the same randomness, so one
    rate never shifts another's draw) and placed on a step where it can happen; then the
    corrected mistake (``tools``: the offered tools, OpenAI format)."""
    rng = random.Random(f"agent:{task.get('task_id')}:{seed}")
    plan = task.get("plan") or []
    literal = [
        (i, k) for i, c in enumerate(plan) for k, v in c["arguments"].items() if not is_ref(v)
    ]
    omittable = [
        (i, k)
        for i, c in enumerate(plan)
        for k in c["arguments"]
        if k in required.get(c["name"], ())
    ]
    mutating = [
        i
        for i, c in enumerate(plan)
        if c["name"] in semantics and semantics[c["name"]].operation not in ("read", "list")
    ] or list(range(len(plan)))
    places: dict[str, list[tuple[int, str | None]]] = {
        "wrong_argument": literal,
        "missing_argument": omittable,
        "skip_clarification": [(0, None)] if task.get("hidden_info") else [],
        "give_up": [(i, None) for i in range(len(plan))],
        "hallucinated_success": [(mutating[-1], None)]
        if plan
        else [(0, None)]
        if task.get("kind") == "unsupported"
        else [],
    }
    chosen = {}
    for name in IMPERFECTIONS:
        roll, pick = rng.random(), rng.random()
        options = places[name]
        if options and roll < rates.get(f"{name}_rate", 0.0):
            chosen[name] = options[int(pick * len(options))]
    struck = {step for step, _ in chosen.values()}
    mistake = _draw_mistake(task, seed, rates, semantics, omittable, struck, tools or [])
    return Flaws(chosen, mistake)


# mistakes the agent makes and then corrects, each with the API's answer to it
CORRECTIONS = {
    "missing_argument": "400: a required property is missing",
    "unexpected_argument": "400: an argument named as in another tool of the bundle",
    "unknown_tool": "404: a near-miss of the tool's name (singular/plural, another verb)",
    "unknown_id": "404: an id that is not in the world, on a read, update or delete",
}
_OTHER_VERB = {"get": "fetch", "list": "search", "search": "find", "create": "add",
               "update": "edit", "delete": "remove", "fetch": "get", "find": "search"}


def _near_miss(name: str, offered: set[str]) -> str | None:
    """A tool name a model might write for ``name``: singular/plural swapped, or another verb."""
    verb, _, rest = name.partition("_")
    candidates = [name[:-1] if name.endswith("s") else name + "s"]
    if rest and verb in _OTHER_VERB:
        candidates.append(f"{_OTHER_VERB[verb]}_{rest}")
    return next((c for c in candidates if c not in offered), None)


def _draw_mistake(
    task: dict[str, Any],
    seed: int,
    rates: dict[str, float],
    semantics: dict[str, ToolSemantics],
    omittable: list[tuple[int, str]],
    struck: set[int],
    tools: list[dict[str, Any]],
) -> Mistake | None:
    """Where the episode's corrected mistake goes, if it has one (own randomness, so the rate
    shifts no other draw): a kind of ``CORRECTIONS`` that some step allows, then one of its
    places. Only mistakes the API is sure to refuse are drawn (an extra argument only where the
    schema forbids additional properties); a step struck by an imperfection is left alone."""
    rng = random.Random(f"correction:{task.get('task_id')}:{seed}")
    if rng.random() >= rates.get("corrected_mistake_rate", 0.0):
        return None
    plan = [(i, c) for i, c in enumerate(task.get("plan") or []) if i not in struck]
    params = {fn["name"]: fn.get("parameters") or {} for fn in (t.get("function") or t
                                                                 for t in tools)}
    names = sorted({k for p in params.values() for k in p.get("properties") or ()})

    def foreign(call: dict[str, Any]) -> list[str]:  # argument names of other tools only
        schema = params.get(call["name"], {})
        if schema.get("additionalProperties") is not False:
            return []  # the API would take an extra argument without a word
        own = schema.get("properties") or {}
        return [n for n in names if n not in own and n not in call["arguments"]]

    # kind -> places: (step, argument, what may replace it)
    places: dict[str, list[tuple[int, str | None, list[str]]]] = {
        "missing_argument": [(i, k, []) for i, k in omittable if i not in struck],
        "unexpected_argument": [
            (i, k, others) for i, c in plan for others in [foreign(c)] if others
            for k in c["arguments"]
        ],
        "unknown_tool": [
            (i, None, [miss]) for i, c in plan for miss in [_near_miss(c["name"], set(params))]
            if miss
        ],
        "unknown_id": [
            (i, sem.id_param, [])
            for i, c in plan
            for sem in [semantics.get(c["name"])]
            if sem and sem.operation in ("read", "update", "delete")
            and sem.id_param in c["arguments"]
        ],
    }
    kinds = [kind for kind in CORRECTIONS if places[kind]]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    step, arg, options = rng.choice(places[kind])
    return Mistake(step, kind, arg, rng.choice(options) if options else None)


def unknown_id(value: Any, known: str, rng: random.Random) -> Any:
    """An id like ``value`` that occurs nowhere in ``known`` (the world's JSON text)."""
    candidate = value
    for _ in range(20):
        candidate = wrong_value(candidate, None, rng)
        if str(candidate) not in known:
            return candidate
    return f"{value}-x{rng.randint(100, 999)}"


_ID_LIKE = re.compile(r"^(.*?)(\d+)$")


def wrong_value(value: Any, schema: dict[str, Any] | None, rng: random.Random) -> Any:
    """A plausible but wrong replacement for ``value``."""
    enum = [e for e in (schema or {}).get("enum") or () if e != value]
    if enum:
        return rng.choice(enum)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice((1, 2, 3))
    if isinstance(value, float):
        return round(value * 1.5 + 1, 2)
    if isinstance(value, str):
        match = _ID_LIKE.match(value)
        if match:
            digits = match.group(2)
            return match.group(1) + str(int(digits) + rng.randint(1, 9)).zfill(len(digits))
        words = value.split()
        return " ".join(words[:-1]) if len(words) > 1 else value + "x"
    return value


# --------------------------------------------------------------------------------- a turn


@dataclass
class Turn:
    """Everything the program knows when it picks the next move."""

    task: dict[str, Any]
    semantics: dict[str, ToolSemantics]
    schemas: dict[str, dict[str, Any]]
    history: History
    flaws: Flaws
    episode: str  # '<task_id>:<seed>': seeds the values a flaw invents, the same every turn
    user: dict[str, Any] = field(default_factory=dict)  # the user's script (policy_request)

    @property
    def plan(self) -> list[dict[str, Any]]:
        return self.task.get("plan") or []


def _text(content: str, imperfections: list[str] | None = None) -> ChatResponse:
    return ChatResponse(
        content=content,
        meta={"imperfections": imperfections or []},
        usage=Usage(completion_tokens=len(content.split())),
    )


def _once(turn: Turn, text: str, flaw: str) -> ChatResponse:
    """Say ``text``, reporting ``flaw`` only the first time it is said."""
    repeated = text in turn.history.said
    return _text(("To recap: " + text) if repeated else text, [] if repeated else [flaw])


def _final(turn: Turn) -> ChatResponse:
    """What was done: the steps not reported yet, then a recap of the ones answered in earlier
    turns, so the last answer holds the facts of every step."""
    lines = turn.history.summaries or ["Everything you asked for is done."]
    told = [line for line in lines if any(line in said for said in turn.history.said)]
    new = [line for line in lines if line not in told]
    if not new:
        return _text("To recap: " + " ".join(lines))
    recap = (" To recap the earlier steps: " + " ".join(told)) if told else ""
    return _text(" ".join(new) + recap)


def _failure(turn: Turn) -> ChatResponse:
    tool, error = turn.history.failure
    done = (" So far: " + " ".join(turn.history.summaries)) if turn.history.summaries else ""
    text = (
        f"I'm sorry, I'm unable to complete your request: {tool} failed "
        f"({error.get('type', 'error')}: {error.get('message', 'no details')}).{done}"
    )
    return _text(("To recap: " + text) if text in turn.history.said else text)


def _refusal(turn: Turn) -> ChatResponse:
    if turn.flaws.at("hallucinated_success", 0):
        return _once(turn, "Done! I've taken care of that for you.", "hallucinated_success")
    text = (
        "I'm sorry, but I can't do that: none of the tools I have access to can handle this "
        f"request. I can, however, help you {capabilities(turn.semantics)}."
    )
    if text in turn.history.said:  # the user pushed back: hold the refusal
        text = (
            "I understand, but I can't do that: it is outside what my tools can do. What I can "
            f"do is {capabilities(turn.semantics)}."
        )
    return _text(text)


# ------------------------------------------------------------- missing information


def _withheld(turn: Turn) -> dict[str, Any] | ChatResponse:
    """Values for the task's withheld arguments: from the user, guessed, or a question."""
    hidden = turn.task.get("hidden_info") or {}
    if not hidden:
        return {}
    if turn.flaws.at("skip_clarification", 0):
        return {
            k: wrong_value(v, None, random.Random(f"guess:{turn.episode}:{k}"))
            for k, v in hidden.items()
        }
    found = {k: _find_value(v, turn.history.user_after_question) for k, v in hidden.items()}
    if all(v is not None for v in found.values()):
        return found
    missing = [k for k, v in found.items() if v is None]
    asked = sum(1 for s in turn.history.said if s.startswith(_QUESTION_HEAD))
    if asked >= MAX_QUESTIONS:
        names = " and ".join(label(k) for k in missing)
        return _text(f"I'm sorry, I can't go ahead without the {names}.")
    names = " and ".join(f"the {label(k)} ({k})" for k in missing)
    return _text(f"{_QUESTION_HEAD} could you tell me {names}?")


_QUESTION_HEAD = "Before I go ahead,"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _find_value(expected: Any, replies: list[str]) -> Any:
    """The value the user gave in their replies: the expected value if a reply states it (a
    later message may hold other numbers, e.g. a restated request), else the first number of
    the latest reply that has one."""
    if any(str(expected).lower() in text.lower() for text in replies):
        return expected
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        for text in reversed(replies):
            numbers = _NUMBER.findall(text)
            if numbers:
                return (
                    type(expected)(float(numbers[0]))
                    if isinstance(expected, int)
                    else float(numbers[0])
                )
    return None


# ------------------------------------------------------------------ what the user asked

_CLARIFY_HEAD = "Could you be more specific"
_CONFIRM = "Sure. Before I start, can you confirm that this is exactly what you need?"


def asked_steps(turn: Turn) -> int:
    """Plan steps the user has asked for so far. The user's ``stages`` are the plan steps
    served once each part of the request is done; a user message that comes after the agent
    finished the parts asked before it brings the next part (a reply to a question inside a
    part does not)."""
    bounds = turn.user.get("stages") or [len(turn.plan)]
    stage = 0
    for done in turn.history.user_marks[1:]:
        if stage + 1 < len(bounds) and done >= bounds[stage]:
            stage += 1
    return bounds[stage]


def _in_token(char: str) -> bool:
    return char.isalnum() or char in "_-"


def _mentions(text: str, value: Any) -> bool:
    """``value`` occurs in ``text`` (both lower-cased) as a whole token: 'ord-7' is not in
    'ord-71'."""
    needle = str(value).lower()
    if isinstance(value, str) and len(needle) < 2:
        return False
    at = text.find(needle)
    while at >= 0:
        end = at + len(needle)
        if not (at and _in_token(text[at - 1])) and not (end < len(text) and _in_token(text[end])):
            return True
        at = text.find(needle, at + 1)
    return False


def _unsaid(turn: Turn, step: int) -> list[str]:
    """Literal arguments of the next call that the task's request states but that no user
    message has said (a vague user leaves ids and numbers out until asked)."""
    request = (turn.task.get("request") or "").lower()
    hidden = turn.task.get("hidden_info") or {}
    said = "\n".join(turn.history.user_texts).lower()
    return [
        k
        for k, value in turn.plan[step]["arguments"].items()
        if k not in hidden
        for v in (value if isinstance(value, list) else [value])  # e.g. SQL parameters
        if _scalar(v) and not is_ref(v) and _mentions(request, v) and not _mentions(said, v)
    ]


def _before_acting(turn: Turn, step: int) -> ChatResponse | None:
    """A question before the next call, or None: check with a user whose opening will be
    corrected, or ask once per step for the ids and values the user has not said yet."""
    history = turn.history
    if turn.user.get("corrects") and len(history.user_texts) == 1 and not history.calls:
        return _text(_CONFIRM)
    missing = _unsaid(turn, step)
    asked = any(
        said.startswith(_CLARIFY_HEAD) and mark == step
        for said, mark in zip(history.said, history.said_marks)
    )
    if not missing or asked:
        return None
    names = " and ".join(dict.fromkeys(label(k) for k in missing))
    return _text(f"{_CLARIFY_HEAD} about what you need? I need the exact {names} to go ahead.")


# ------------------------------------------------------------------------ next call


def _next_call(turn: Turn, step: int, values: dict[str, Any]) -> ChatResponse:
    planned = turn.plan[step]
    name = planned["name"]
    hidden = turn.task.get("hidden_info") or {}
    args = {
        k: values[k] if k in values and v == hidden.get(k) else v
        for k, v in planned["arguments"].items()
    }
    try:
        args = resolve_arguments(args, turn.history.results)  # also nested, e.g. SQL params
    except RefError:
        entity = label(turn.semantics[name].entity) if name in turn.semantics else "item"
        return _text(
            f"I'm sorry, I'm unable to continue: the previous result had no usable {entity}. "
            + " ".join(turn.history.summaries)
        )
    first_try = turn.history.attempts.get(step, 0) == 0
    reported = []
    if first_try and hidden and step == 0 and turn.flaws.at("skip_clarification", 0):
        reported.append("skip_clarification")
    arg = turn.flaws.at("wrong_argument", step)
    if arg and arg in args:
        args[arg] = wrong_value(
            args[arg],
            turn.schemas.get(name, {}).get(arg),
            random.Random(f"wrong:{turn.episode}:{arg}"),
        )
        reported += ["wrong_argument"] if first_try else []
    arg = turn.flaws.at("missing_argument", step)
    if arg and arg in args:
        del args[arg]
        reported += ["missing_argument"] if first_try else []
    mistake = None
    if not turn.history.mistake_made:
        name, mistake = _mistake(turn, step, name, args)
    call = ToolCall(id=f"call_{turn.history.calls}", name=name, arguments=args)
    return ChatResponse(
        content=None,
        tool_calls=[call],
        meta={
            "imperfections": reported,
            "corrections": [mistake] if mistake and first_try else [],
        },
        usage=Usage(completion_tokens=len(json.dumps(args)) // 4 + 8),
    )


def _mistake(turn: Turn, step: int, name: str, args: dict[str, Any]) -> tuple[str, str | None]:
    """The tool name to call and the kind of mistake made, if the episode's corrected mistake
    belongs to this call (``args`` altered in place)."""
    mistake = turn.flaws.corrected
    if mistake is None or mistake.step != step:
        return name, None
    if mistake.kind == "unknown_tool":
        return mistake.replacement or name, mistake.kind
    if mistake.arg not in args:
        return name, None
    if mistake.kind == "missing_argument":
        del args[mistake.arg]
    elif mistake.kind == "unexpected_argument":
        args[mistake.replacement] = args.pop(mistake.arg)
    else:
        world = json.dumps([turn.task.get("initial_state"), turn.history.results], default=str)
        args[mistake.arg] = unknown_id(
            args[mistake.arg], world, random.Random(f"unknown:{turn.episode}")
        )
    return name, mistake.kind


def _hallucination(turn: Turn, step: int) -> ChatResponse:
    """A success claim for the steps never executed."""
    claims = []
    for planned in turn.plan[step:]:
        sem = turn.semantics.get(planned["name"])
        args = {k: v for k, v in planned["arguments"].items() if not is_ref(v)}
        claims.append(
            summarise(
                sem,
                planned["name"],
                args,
                {**args, "id": args.get(sem.id_param if sem and sem.id_param else "", "")},
            ).replace("  ", " ")
        )
    text = "All done! " + " ".join(turn.history.summaries + claims)
    return _once(turn, text, "hallucinated_success")


def next_move(turn: Turn) -> ChatResponse:
    if turn.task.get("kind") == "unsupported" or not turn.plan:
        return _refusal(turn)
    if turn.history.failure:
        return _failure(turn)
    step = len(turn.history.results)
    if step >= min(len(turn.plan), asked_steps(turn)):
        return _final(turn)
    values = _withheld(turn)
    if isinstance(values, ChatResponse):
        return values
    if turn.history.attempts.get(step, 0) == 0:
        pause = _before_acting(turn, step)
        if pause:
            return pause
        if turn.flaws.at("give_up", step):
            text = (
                "I'm sorry, I'm not able to finish this right now. "
                + " ".join(turn.history.summaries)
            ).strip()
            return _once(turn, text, "give_up")
        if turn.flaws.at("hallucinated_success", step):
            return _hallucination(turn, step)
    return _next_call(turn, step, values)


def _tool_maps(
    tools: list[dict[str, Any]] | None,
) -> tuple[dict[str, ToolSemantics], dict[str, Any], dict[str, tuple[str, ...]]]:
    semantics, schemas, required = {}, {}, {}
    for tool in tools or ():
        fn = tool.get("function") or tool
        params = fn.get("parameters") or {}
        semantics[fn["name"]] = infer_semantics(fn["name"], fn.get("description", ""), params)
        schemas[fn["name"]] = params.get("properties") or {}
        required[fn["name"]] = tuple(params.get("required") or ())
    return semantics, schemas, required


@offline_role(ROLE)
def offline_agent(request: ChatRequest) -> ChatResponse:
    """The next assistant move: one tool call, a question, a refusal or the final answer."""
    ctx = request.context
    task, seed = ctx["task"], int(ctx.get("seed", 0))
    semantics, schemas, required = _tool_maps(request.tools)
    flaws = draw_flaws(
        task, seed, ctx.get("imperfections") or {}, semantics, required, request.tools
    )
    turn = Turn(
        task,
        semantics,
        schemas,
        read_history(request.messages, semantics, flaws.corrected_step),
        flaws,
        f"{task.get('task_id')}:{seed}",
        ctx.get("user") or {},
    )
    reply = next_move(turn)
    reply.usage.prompt_tokens = sum(
        len(str(m.get("content") or "").split()) for m in request.messages
    )
    return reply
