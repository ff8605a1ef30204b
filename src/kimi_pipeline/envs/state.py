"""The contract of a task and its world, shared by the task writer, the world model, the user
simulator, the judge and the agent policy: ``$ref`` references, state predicates and their
check, the state's filter and update rules, and the grammar of a written request. One module,
so what a task promises and what the world does cannot drift apart.

``$ref`` (plan arguments and ``required_facts``): ``"$ref:<i>.<p1>.<p2>…"`` is the value
found by walking the JSON result of plan step ``i`` (0-based; the i-th *successful* result of
the plan's calls) along the dot path: a segment indexes a dict by key or a list by integer
position. One alias: a segment ``items`` that is not a key of the node names the node's first
list-valued field (or the node itself when it is a list), so ``"$ref:0.items.0.id"`` is the id
of the first item of a list result however the tool lays it out (``{"items": […]}``,
``{"orders": […], "total": n}``, a bare array). ``"$ref:0.id"`` is the id a create returned.
The whole string is the reference (never embedded in longer text); ``resolve_ref`` implements
it and raises ``RefError`` when a reference does not resolve.

``StatePredicate.path`` is a dot path into the state ``{collection: {resource_id: {…}}}``:
``"<collection>"`` or ``"<collection>.<resource_id>"`` (split at the first dot only; resource
ids never contain dots). Operators:

- ``exists`` / ``absent``: the path resolves / does not (with ``field``: the resource has /
  lacks that field).
- ``equals``: with ``field``: ``resource[field] == value``; without: the node equals ``value``.
- ``count_equals``: the path is a collection; its number of resources equals ``value`` (a
  missing collection counts 0).
- ``contains``: on a collection path, ``value`` is a dict and some resource's fields are a
  superset of it (every key present with an equal value); on a resource path with ``field``,
  ``value`` is an element of that list field or a substring of that string field.

Resources created during an episode get ids only the world model knows, so they are checked
with ``count_equals`` and ``contains`` on the collection, and facts about them use ``$ref``.
``required_calls`` hold only literal argument values (``$ref`` arguments are left out; the
state predicates check the chain).

State layout and its rules, shared by the world model (``envs.world``) and the offline task
writer's nominal replay (``agents.offline.task_world``), so a rubric written from the replay holds
in the world: actions are recorded in ``EVENTS_COLLECTION`` (not a resource collection);
``copy_json`` copies a state; a filter argument matches a resource by ``field_matches``
(case-insensitive substring for strings, membership for list fields, equality otherwise; an
argument that names no field of the resource does not filter); an update replaces the fields it
sets and then moves the resource to its verb's status (``update_resource``).
``check_predicate`` evaluates a predicate on a state (the judge, the environments' tests).

Request grammar: ``compose_request`` joins a plan's clauses into one request ("…, then …, and
finally …", a conditional's ": if it is still …"); ``request_stages`` splits it back into the
parts a user can ask for one turn at a time, each with the plan steps it covers (what the user
simulator asks turn by turn and the offline agent waits for).
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable

from kimi_pipeline.records import StatePredicate

REF = "$ref:"
ITEMS = "items"  # path segment naming the item list of a list result, whatever its key
EVENTS_COLLECTION = "_events"  # where actions are recorded (not "events": calendars own that name)


class RefError(LookupError):
    """A '$ref' that does not resolve against the results so far."""


def is_ref(value: Any) -> bool:
    return type(value) is str and value.startswith(REF)


def resolve_ref(ref: str, results: list[Any]) -> Any:
    """The value '$ref:<i>.<path>' names in ``results`` (the JSON results of plan steps)."""
    head, _, path = ref[len(REF) :].partition(".")
    try:
        value = results[int(head)]
        for part in path.split(".") if path else ():
            value = _step_into(value, part)
    except (IndexError, KeyError, ValueError, TypeError, AttributeError, StopIteration) as exc:
        raise RefError(f"{ref} does not resolve: {exc!r}") from None
    return value


def _step_into(node: Any, part: str) -> Any:
    if part == ITEMS and not (isinstance(node, dict) and ITEMS in node):
        if isinstance(node, list):  # a list result returned as a bare array
            return node
        lists = [v for v in node.values() if isinstance(v, list)]  # {"orders": [...], ...}
        # a list of records wins over a list of scalars ({"columns": [...], "rows": [{…}]})
        records = (v for v in lists if v and isinstance(v[0], dict))
        return next(records, lists[0] if lists else node[part])
    return node[int(part)] if isinstance(node, list) else node[part]


def resolve_arguments(arguments: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Resolve every '$ref' in the arguments, also inside lists and objects (e.g. SQL params)."""

    def walk(value: Any) -> Any:
        if is_ref(value):
            return resolve_ref(value, results)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(arguments)


# ---------------------------------------------------------------------- state and its rules


def copy_json(value: Any) -> Any:
    """Deep copy of plain JSON data (much faster than copy.deepcopy for small states)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_json(v) for v in value]
    return value


def field_matches(value: Any, wanted: Any) -> bool:
    """Whether a resource field ``value`` matches a filter argument ``wanted``."""
    if isinstance(value, str) and isinstance(wanted, str):
        return wanted.lower() in value.lower()
    if isinstance(value, list) and not isinstance(wanted, list):
        return wanted in value
    return value == wanted


def matches(record: dict[str, Any], args: dict[str, Any], params: tuple[str, ...]) -> bool:
    """Whether ``record`` passes every filter argument in ``params`` that names one of its
    fields; an argument that is no field of the record does not filter."""
    return all(field_matches(record[k], args[k]) for k in params if k in args and k in record)


def filter_fields(
    args: dict[str, Any], params: tuple[str, ...], resources: dict[str, Any]
) -> tuple[str, ...]:
    """Arguments that name a field of the stored resources (those that can filter them)."""
    fields = {k for r in resources.values() if isinstance(r, dict) for k in r}
    return tuple(p for p in params if p in args and p in fields)


def update_resource(record: dict[str, Any], changes: dict[str, Any], status: str | None) -> None:
    """An update's effect: the fields it sets replaced, then the status its verb moves the
    resource to (``cancel_order`` → 'cancelled'), if any."""
    record.update(changes)
    if status:
        record["status"] = status


_MISSING = object()


def check_predicate(state: dict[str, Any], predicate: StatePredicate) -> bool:
    """Evaluate a rubric predicate on a snapshot, by the contract above: ``path`` is
    '<collection>' or '<collection>.<resource_id>' (split at the first dot, so file paths work
    as ids); ``field`` selects a field of the resource. exists / absent: the path (and field)
    resolves or not; equals: ``==``; count_equals: number of resources (a missing collection
    counts 0); contains: on a collection, some resource has all of ``value``'s fields; on a
    field, substring of a string or element of a list."""
    collection, _, rid = predicate.path.partition(".")
    node: Any = state.get(collection, _MISSING)
    if rid:
        node = node.get(rid, _MISSING) if isinstance(node, dict) else _MISSING
    if predicate.field is not None:
        node = node.get(predicate.field, _MISSING) if isinstance(node, dict) else _MISSING
    whole_collection = not rid and predicate.field is None
    if predicate.op == "contains" and whole_collection:
        return isinstance(node, dict) and any(_superset(r, predicate.value) for r in node.values())
    return PREDICATE_OPS[predicate.op](node, predicate.value)


def _superset(resource: Any, wanted: Any) -> bool:
    return (
        isinstance(resource, dict)
        and isinstance(wanted, dict)
        and all(k in resource and resource[k] == v for k, v in wanted.items())
    )


def _contains(node: Any, value: Any) -> bool:
    if isinstance(node, list):
        return value in node
    if isinstance(node, str):
        return isinstance(value, str) and value in node
    return _superset(node, value)


def _count(node: Any) -> int | None:
    if node is _MISSING:
        return 0
    return len(node) if isinstance(node, (dict, list, str)) else None


PREDICATE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "exists": lambda node, value: node is not _MISSING,
    "absent": lambda node, value: node is _MISSING,
    "equals": lambda node, value: node is not _MISSING and node == value,
    "count_equals": lambda node, value: _count(node) == value,
    "contains": lambda node, value: node is not _MISSING and _contains(node, value),
}


# ------------------------------------------------------------------------ request grammar

_OPENERS = ("", "", "Hi! ", "Hello. ", "Hey there. ", "Good morning. ")
_ASKS = (
    ("Please ", "."),
    ("Could you ", "?"),
    ("I need you to ", "."),
    ("Can you ", "?"),
    ("I'd like you to ", "."),
)
_CLOSERS = ("", "", " Thanks!", " Thank you.", " Thanks in advance.")


def compose_request(rng: random.Random, clauses: list[str]) -> str:
    body = clauses[0]
    if len(clauses) == 2:
        body += f", then {clauses[1]}"
    elif len(clauses) > 2:
        body += ", then " + ", then ".join(clauses[1:-1]) + f", and finally {clauses[-1]}"
    ask, end = rng.choice(_ASKS)
    return f"{rng.choice(_OPENERS)}{ask}{body}{end}{rng.choice(_CLOSERS)}"


_STEP_JOINS = re.compile(r", then |, and finally ")
_CONDITION = ": if it is still "
_ENDING = re.compile(r"(?P<end>[.?])(?P<closer>" + "|".join(re.escape(c) for c in _CLOSERS if c)
                     + r")?$")


def request_stages(kind: str, request: str, plan_steps: int) -> list[tuple[str, int]]:
    """The request as parts a user can ask for one turn at a time, each with the number of plan
    steps done once it is served (counted from the start). Inverts ``compose_request``: a
    chain's clauses (one per plan step), or a conditional's check (step 0) and then its
    condition (the rest). A request that does not split this way is one part."""
    whole = [(request, plan_steps)]
    ending = _ENDING.search(request)
    if ending is None or plan_steps < 1:
        return whole
    core, tail = request[: ending.start()], ending["end"] + (ending["closer"] or "")
    if kind == "conditional":
        check, found, condition = core.partition(_CONDITION)
        return [(check + tail, 1), ("if it is still " + condition, plan_steps)] if found else whole
    clauses = _STEP_JOINS.split(core)
    if len(clauses) < 2 or len(clauses) != plan_steps:
        return whole
    return [(clauses[0] + tail, 1)] + [(c, i) for i, c in enumerate(clauses[1:], 2)]
