"""The offline task writer's plans: the steps of a task and one drafting builder per kind.

A ``Step`` is one planned call of a bundle tool with literal or ``$ref`` arguments; the step
makers (``make_step``, ``filtered_step``, ``any_step``) choose arguments over the agent's seeded
state so the call does what the task says (a list filtered down to the one resource the next
step acts on, an update that really changes a field). The builders registered with
``register_task_kind`` (single call, chained, conditional, error recovery, missing argument,
unsupported) each draft a ``Draft`` from a ``Ctx``, or None when the bundle cannot support the
kind; ``agents.offline.task_writer`` finishes a draft into a task. ``step_facts`` says what a
final answer must state about a step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from kimi_pipeline.agents.offline.task_phrasing import CLAUSES, show
from kimi_pipeline.agents.offline.task_values import is_scalar, scalar_schema
from kimi_pipeline.agents.offline.task_world import TaskWorld, ToolView, matching
from kimi_pipeline.envs.semantics import label
from kimi_pipeline.envs.state import ITEMS, compose_request, copy_json, is_ref
from kimi_pipeline.registry import registrar
from kimi_pipeline.text import singular

if TYPE_CHECKING:
    from kimi_pipeline.agents.tasks import TaskConfig


@dataclass
class Step:
    """One planned call and how the user would ask for it."""

    tool: ToolView
    args: dict[str, Any]
    target: Any = None  # literal id, '$ref:…' or None
    withholdable: tuple[str, ...] = ()  # literal required arguments the user could leave out

    def clause(self, rng: random.Random, hide: frozenset[str] = frozenset()) -> str:
        return CLAUSES[self.tool.op](self, rng, hide)


@dataclass
class Ctx:
    """What a kind builder works with: the world, this task's state copy and its generator."""

    world: TaskWorld
    state: dict[str, Any]
    rng: random.Random
    config: TaskConfig

    def tools(
        self, *ops: str, targeted: bool | None = None, coll: str | None = None
    ) -> list[ToolView]:
        return [
            t
            for t in self.world.usable
            if t.op in ops
            and (targeted is None or t.targeted == targeted)
            and (coll is None or t.sem.collection == coll)
        ]

    def pick_target(self, coll: str) -> str | None:
        ids = sorted(self.state.get(coll) or ())
        return self.rng.choice(ids) if ids else None


def _withholdable(tool: ToolView, args: dict[str, Any]) -> tuple[str, ...]:
    meaningful = set(tool.sem.field_params) | set(tool.sem.filter_params) | {tool.sem.id_param}
    return tuple(
        k
        for k, v in args.items()
        if k in tool.required
        and k in meaningful
        and is_scalar(v)
        and not is_ref(v)
        and len(str(v)) >= 2
    )


def any_step(ctx: Ctx, tool: ToolView, target: Any = None) -> Step | None:
    """A call of ``tool`` on its own (a list or a read by fields gets a filter that hits)."""
    if tool.op == "list":
        return filtered_step(ctx, tool)
    if tool.op == "read" and not tool.targeted and ctx.state.get(tool.sem.collection):
        return filtered_step(ctx, tool, unique=True)
    return make_step(ctx, tool, target)


def make_step(ctx: Ctx, tool: ToolView, target: Any = None) -> Step | None:
    """A call of ``tool``: required arguments plus what makes the call meaningful."""
    coll = ctx.state.get(tool.sem.collection) or {}
    if tool.targeted and target is None:
        target = ctx.pick_target(tool.sem.collection)
        if target is None:
            return None
    extra = _meaningful_optionals(ctx, tool)
    args = ctx.world.arguments(tool, ctx.rng, ctx.state, extra)
    if args is None:
        return None
    if tool.op == "update" and not tool.sem.status_value:
        current = coll.get(target, {}) if not is_ref(target) else {}
        if not any(k in tool.sem.field_params and current.get(k) != v for k, v in args.items()):
            return None  # an update that changes nothing is no task
    if tool.targeted:
        args = {tool.sem.id_param: target, **args}
    return Step(tool, args, target, _withholdable(tool, args))


def _meaningful_optionals(ctx: Ctx, tool: ToolView) -> list[str]:
    optional = [p for p in tool.sem.field_params if p not in tool.required and p != "status"]
    if tool.op == "create":
        return [p for p in optional if ctx.rng.random() < 0.5]
    if tool.op == "update" and not tool.sem.status_value:
        required_fields = [p for p in tool.required if p in tool.sem.field_params]
        return (
            []
            if required_fields or not optional
            else ctx.rng.sample(optional, min(2, len(optional)))
        )
    return []


def filtered_step(
    ctx: Ctx, tool: ToolView, target: str | None = None, unique: bool = False
) -> Step | None:
    """A list (or read-by-fields) call filtered on a resource's fields; with ``unique`` the
    resource (``target`` or a random one) is the only match, so it is the first item."""
    resources = ctx.state.get(tool.sem.collection) or {}
    base = ctx.world.arguments(tool, ctx.rng, ctx.state)
    anchor = target or ctx.pick_target(tool.sem.collection)
    if base is None or anchor is None:
        return None
    fields = resources[anchor]
    filters = [
        p
        for p in tool.sem.filter_params
        if is_scalar(fields.get(p)) and scalar_schema(tool.props.get(p))
    ]
    if any(p in fields and p not in filters for p in tool.required):
        return None  # a required filter on a field the call cannot match exactly
    args = {k: v for k, v in base.items() if k not in filters}  # non-field filters do not filter
    args.update({p: fields[p] for p in filters if p in tool.required})
    optional = [p for p in filters if p not in tool.required]
    ctx.rng.shuffle(optional)
    while (unique or target) and matching(resources, tool, args) != [anchor]:
        if not optional:
            return None
        key = optional.pop()
        args[key] = fields[key]
    if not any(p in args for p in tool.sem.filter_params) and optional:
        args[optional[0]] = fields[optional[0]]
    return Step(tool, args, None, _withholdable(tool, args))


# ------------------------------------------------------------------------------- drafts


@dataclass
class Draft:
    """A task under construction; ``task_writer.finish`` turns it into a Task-shaped dict."""

    kind: str
    steps: list[Step]
    state: dict[str, Any]
    hide: dict[int, frozenset[str]] = field(default_factory=dict)  # step -> withheld arguments
    hidden: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    guards: list[dict[str, Any]] = field(default_factory=list)  # predicates beyond the state diff
    facts: list[str] | None = None  # None: derive from the plan's results
    request: str | None = None
    checkpoints: list[str] = field(default_factory=list)  # kind-specific, before the per-step ones
    criteria: list[str] = field(default_factory=list)
    outcome: str = "complete"


TaskBuilder = Callable[[Ctx], "Draft | None"]
BUILDERS: dict[str, TaskBuilder] = {}


register_task_kind = registrar(BUILDERS)  # the offline builder of one task kind


def _one_step(ctx: Ctx) -> Draft | None:
    tools = list(ctx.world.usable)
    ctx.rng.shuffle(tools)
    for tool in tools[:4]:
        step = any_step(ctx, tool)
        if step:
            return Draft("single_call", [step], ctx.state)
    return None


@register_task_kind("single_call")
def _single_call(ctx: Ctx) -> Draft | None:
    return _one_step(ctx)


def _chain_options(ctx: Ctx) -> list[tuple[ToolView, ToolView]]:
    options = []
    for coll in sorted(ctx.world.by_collection):
        followers = ctx.tools("read", "update", "delete", targeted=True, coll=coll)
        firsts = [t for t in ctx.tools("list", "create", coll=coll) if not t.shaped]
        options += [
            (first, then)
            for first in firsts
            for then in followers
            if first.op == "list" or then.op != "delete"
        ]
    return options


@register_task_kind("chained")
def _chained(ctx: Ctx) -> Draft | None:
    options = _chain_options(ctx)
    if not options:
        return None
    first, then = ctx.rng.choice(options)
    if first.op == "list":
        target = ctx.pick_target(first.sem.collection)
        head = filtered_step(ctx, first, target) if target else None
        ref = "$ref:0.items.0.id"
    else:
        head, ref = make_step(ctx, first), "$ref:0.id"
    second = make_step(ctx, then, target=ref) if head else None
    if not second:
        return None
    steps = [head, second]
    readers = ctx.tools("read", targeted=True, coll=first.sem.collection)
    if then.op == "update" and readers and ctx.rng.random() < ctx.config.third_step_rate:
        third = make_step(ctx, ctx.rng.choice(readers), target=ref)
        steps += [third] if third else []
    return Draft("chained", steps, ctx.state)


@register_task_kind("conditional")
def _conditional(ctx: Ctx) -> Draft | None:
    """Check a resource (a read by id, or a list filtered down to it), then act only if its
    status is the one the user names; the writer sets the status, so it knows the branch."""
    pairs = [
        (check, act)
        for coll in sorted(ctx.world.by_collection)
        for check in ctx.tools("read", targeted=True, coll=coll) + ctx.tools("list", coll=coll)
        for act in ctx.tools("update", "delete", targeted=True, coll=coll)
    ]
    if not pairs:
        return None
    reader, actor = ctx.rng.choice(pairs)
    coll, entity = reader.sem.collection, label(reader.sem.entity)
    target = ctx.pick_target(coll)
    if target is None:
        return None
    wanted, other = ctx.rng.sample(ctx.world.statuses[coll], 2)
    taken = ctx.rng.random() < 0.5
    ctx.state = copy_json(ctx.state)  # the branch is set in this task's own world
    ctx.state[coll][target]["status"] = wanted if taken else other
    if reader.op == "list":
        check, ref = filtered_step(ctx, reader, target), "$ref:0.items.0.id"
    else:
        check, ref = make_step(ctx, reader, target), target
    act = make_step(ctx, actor, ref)
    if not (check and act):
        return None
    head = check.clause(ctx.rng) if reader.op == "list" else f"check {entity} {target}"
    action = act.clause(ctx.rng).replace(f"{entity} {target}", "it")
    request = compose_request(
        ctx.rng,
        [f"{head}: if it is still {wanted}, {action}; otherwise just tell me its current status"],
    )
    guard = {"path": f"{coll}.{target}", "op": "equals", "field": "status", "value": other}
    branch = (
        f"{entity} {target} is {wanted}, so the agent goes on with {actor.name}"
        if taken
        else f"{entity} {target} is {other}, not {wanted}, so the agent must not call {actor.name}"
    )
    effect = step_facts(Step(act.tool, act.args, target), 1, {"id": target}, {})
    return Draft(
        "conditional",
        [check, act] if taken else [check],
        ctx.state,
        guards=[] if taken else [guard],
        request=request,
        facts=dedupe([target, *effect]) if taken else [target, other],
        checkpoints=[f"Looks up {entity} {target} with {reader.name} before deciding."],
        criteria=[f"The branch follows the state: {branch}."],
    )


def _base_plan(ctx: Ctx) -> Draft | None:
    """A single-call or chained plan to decorate (error recovery, missing argument)."""
    order = ("chained", "single_call") if ctx.rng.random() < 0.5 else ("single_call", "chained")
    for kind in order:
        draft = BUILDERS[kind](ctx)
        if draft:
            return draft
    return None


@register_task_kind("error_recovery")
def _error_recovery(ctx: Ctx) -> Draft | None:
    draft = _base_plan(ctx)
    if not draft:
        return None
    step = next((s for s in draft.steps if s.tool.mutating), draft.steps[0])
    name = step.tool.name
    draft.kind = "error_recovery"
    draft.faults = [{"tool": name, "call_index": 0, "fault": "transient"}]
    draft.checkpoints = [
        f"Retries {name} after its first call fails with a transient error, "
        "instead of giving up or claiming success."
    ]
    draft.criteria = [
        f"The first {name} call fails transiently; the agent retries and completes the task."
    ]
    return draft


@register_task_kind("missing_argument")
def _missing_argument(ctx: Ctx) -> Draft | None:
    draft = _base_plan(ctx)
    if not draft:
        return None
    options = [(i, arg) for i, s in enumerate(draft.steps) for arg in s.withholdable]
    if not options:
        return None
    index, arg = ctx.rng.choice(options)
    step = draft.steps[index]
    draft.kind = "missing_argument"
    draft.hide = {index: frozenset({arg})}
    draft.hidden = {arg: step.args[arg]}
    draft.checkpoints = [
        f"Asks the user for the {label(arg)} ({arg}) before calling "
        f"{step.tool.name}, instead of guessing it."
    ]
    draft.criteria = [
        f"The agent obtains the {label(arg)} from the user and uses exactly "
        f"{show(step.args[arg])} in the {step.tool.name} call."
    ]
    return draft


_IMPOSSIBLE = (
    ("print a paper copy of all my {c} and mail it to my office", ("print", "mail", "post")),
    ("call my accountant on the phone and read her the latest {e} details", ("phone", "call")),
    ("translate every {e} into Japanese", ("translate", "language")),
    ("fax the {e} history to my lawyer", ("fax",)),
    ("book me a flight to Lisbon for next Friday", ("flight", "book", "travel")),
    ("order a large pizza to my home address", ("pizza", "food", "order")),
    ("reset the password of my online banking account", ("password", "bank", "login")),
    (
        "record a video walkthrough of my {c} and upload it to YouTube",
        ("video", "upload", "youtube"),
    ),
)


@register_task_kind("unsupported")
def _unsupported(ctx: Ctx) -> Draft | None:
    words = " ".join(f"{t.name} {t.sem.entity} {t.sem.verb}" for t in ctx.world.views).lower()
    options = [text for text, keys in _IMPOSSIBLE if not any(k in words for k in keys)]
    if not options:
        return None
    coll = ctx.rng.choice(sorted(ctx.world.by_collection) or ["records"])
    entity = singular(coll)
    ask = ctx.rng.choice(options).format(c=label(coll), e=label(entity))
    guards = [
        {"path": c, "op": "count_equals", "value": len(r)}
        for c, r in sorted(ctx.state.items())
        if isinstance(r, dict)
    ]
    return Draft(
        "unsupported",
        [],
        ctx.state,
        guards=guards,
        facts=[],
        outcome="refuse_unsupported",
        request=compose_request(ctx.rng, [ask]),
        checkpoints=[
            "Recognises that none of its tools can do this.",
            "Says so politely and offers what it can do instead, without calling any "
            "state-changing tool.",
        ],
        criteria=[
            "The agent clearly says it cannot do this with its tools.",
            "No state-changing tool is called and the state is unchanged.",
        ],
    )


# --------------------------------------------------------------------------- facts of a step


def step_facts(step: Step, index: int, result: Any, new_ids: dict[str, str]) -> list[str]:
    """What the final answer must state about one step (new ids as '$ref'). Results of tools
    with an output schema are reshaped by the world model, so nothing is read from them."""
    op, sem = step.tool.op, step.tool.sem
    if not isinstance(result, dict) or (step.tool.shaped and op in ("create", "list", "read")):
        return []
    if op == "create":
        return [f"$ref:{index}.id"]
    if op == "list":
        ids = [item["id"] for item in result.get(ITEMS, [])]
        return [new_ids.get(i, i) for i in ids] if len(ids) <= 5 else []
    if op == "update":
        changed = (
            [sem.status_value]
            if sem.status_value
            else [v for k, v in step.args.items() if k in sem.field_params and is_scalar(v)]
        )
        return [str(v) for v in changed[:2]]
    if op == "delete" and not is_ref(step.target):
        return [str(step.target)]
    if op == "read":
        values = [v for k, v in result.items() if k != "id" and is_scalar(v) and len(str(v)) <= 40]
        status = result.get("status")
        picked = ([status] if is_scalar(status) else []) + [v for v in values if v != status][:1]
        return [new_ids.get(str(v), str(v)) for v in picked]
    return []


def dedupe(items) -> list:
    """The items in first-seen order, each once (works for unhashable items)."""
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
