"""The world model: one stateful, seeded simulator for any tool spec in the repository.

K2's tool simulator "behaves as a world model": it keeps persistent state across calls and
injects controlled randomness. Here it is a deterministic program rather than an LLM, so tens of
thousands of episodes run in seconds and replay bit for bit:

- every call is validated against the tool's input schema and refused the way a real API
  refuses it (the step pipeline of :class:`~kimi_pipeline.envs.base.ToolEnvironment`, which the
  real-execution environments share);
- what the tool does (create / read / list / update / delete / action, on which collection, by
  which id) comes from :mod:`kimi_pipeline.envs.semantics`, and is executed against per-episode
  state in the canonical form ``{collection: {resource_id: {field: value}}}`` by the rules of
  :mod:`kimi_pipeline.envs.state` (filters, updates, the action log);
- results are JSON text and conform to the tool's output schema when it declares one (generated
  from the schema, filled from state: :mod:`kimi_pipeline.envs.values`);
- randomness comes from one ``random.Random(seed)`` per episode: transient failures, partial or
  empty lists and edge-case values at the configured rates, plus the task's scripted faults.

Collections the task did not seed are an open world: reading or listing them generates
plausible resources and keeps them, so later calls see the same ones. A collection present in
the state is closed: an id it lacks is a 404. Mutations always need an existing resource.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from kimi_pipeline.envs.base import (
    CompiledTool,
    FaultConfig,
    StepResult,
    ToolEnvironment,
    error_result,
    ok_result,
    register_environment,
)
from kimi_pipeline.envs.semantics import ToolSemantics
from kimi_pipeline.envs.state import (
    EVENTS_COLLECTION,
    copy_json,
    filter_fields,
    matches,
    update_resource,
)
from kimi_pipeline.envs.values import (
    DEFAULT_FIELDS,
    Gen,
    make_id,
    named_value,
    shape_output,
    typical_fields,
    zone_info,
)
from kimi_pipeline.text import plural, singular, split_words

BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
_SECONDS_PER_CALL = 7  # the episode clock advances this much per executed call

QUERY_KEYS = {"query", "q", "search", "keyword", "keywords", "text", "term", "contains"}
LIMIT_KEYS = ("limit", "page_size", "max_results", "per_page", "top_k", "max_items")


@dataclass
class _Call:
    """One call being executed: its tool, reading, arguments, generator and shaping fault."""

    env: WorldModel
    tool: CompiledTool
    sem: ToolSemantics
    args: dict[str, Any]
    gen: Gen
    fault: str | None

    @property
    def target_id(self) -> str | None:
        value = self.args.get(self.sem.id_param) if self.sem.id_param else None
        return None if value is None else str(value)

    def fields(self) -> dict[str, Any]:
        return {k: copy_json(self.args[k]) for k in self.sem.field_params if k in self.args}

    def respond(self, payload: Any, gen: Gen | None = None, fault: str | None = None) -> StepResult:
        gen = gen or self.gen
        payload = shape_output(self.tool, payload, gen)
        fault = fault or ("edge_case" if gen.edge_used or self.gen.edge_used else None)
        return ok_result(payload, fault=fault)

    def not_found(self, rid: str) -> StepResult:
        return error_result(404, "not_found", f"{self.sem.entity} {rid!r} not found")


@register_environment("simulated")
class WorldModel(ToolEnvironment):
    """The simulated world: any tool spec, persistent per-episode state, seeded randomness."""

    kind = "simulated"

    def __init__(self, faults: FaultConfig | None = None):
        super().__init__(faults)
        self._load_state({})

    def _load_state(self, initial_state: dict[str, Any]) -> None:
        self.state: dict[str, Any] = copy_json(initial_state)
        self.access_log: list[tuple[str, str, str, str | None]] = []  # reads; not in snapshot
        self.clock = BASE_TIME + timedelta(minutes=self.rng.randrange(525_600))

    def snapshot(self) -> dict[str, Any]:
        return copy_json(self.state)

    def _draw_fault(self, tool: CompiledTool) -> str | None:
        rates = self.faults
        draws = [("transient", rates.transient_error_rate)]
        if tool.semantics.operation == "list":
            draws += [("empty", rates.empty_result_rate), ("partial", rates.partial_result_rate)]
        draws.append(("edge_case", rates.edge_case_rate))
        for kind, rate in draws:
            if rate and self.rng.random() < rate:
                return kind
        return None

    def _execute(self, tool: CompiledTool, args: dict[str, Any], fault: str | None) -> StepResult:
        self.clock += timedelta(seconds=_SECONDS_PER_CALL)
        sem = tool.semantics
        gen = Gen(self.rng, self.clock, _zone_arg(args), sem.entity, edge=fault == "edge_case")
        call = _Call(self, tool, sem, args, gen, fault)
        return OPERATIONS[sem.operation](call)

    # -- helpers the operations share

    def new_id(self, entity: str, collection: dict[str, Any]) -> str:
        rid = make_id(self.rng, entity)
        while rid in collection:
            rid = make_id(self.rng, entity)
        return rid

    def resource_gen(self, call: _Call, collection: str, rid: str) -> Gen:
        """Generator seeded by the resource, so fields filled in are the same on every read."""
        rng = random.Random(f"{self.seed}/{collection}/{rid}")
        return Gen(rng, self.clock, call.gen.zone, call.sem.entity)

    def collections_for(self, sem: ToolSemantics) -> list[str]:
        """Collections an id argument may point into: the tool's own, and the id's entity
        (get_account_balance(account_id) looks into 'accounts')."""
        names = [sem.collection]
        if sem.id_param and sem.id_param.lower().endswith("_id") and len(sem.id_param) > 3:
            owner = plural(singular(split_words(sem.id_param[:-3])[-1]))
            names += [owner] if owner not in names else []
        return names

    def find(self, sem: ToolSemantics, rid: str) -> tuple[str, str, dict[str, Any]] | None:
        for name in self.collections_for(sem):
            resources = self.state.get(name)
            if not isinstance(resources, dict):
                continue
            if isinstance(resources.get(rid), dict):
                return name, rid, resources[rid]
            for key, record in resources.items():
                if isinstance(record, dict) and rid in (record.get("id"), record.get(sem.id_param)):
                    return name, key, record
        return None

    def known(self, sem: ToolSemantics) -> bool:
        return any(isinstance(self.state.get(n), dict) for n in self.collections_for(sem))

    def plausible(self, call: _Call, gen: Gen) -> dict[str, Any]:
        """A generated record consistent with the call's arguments (open-world reads)."""
        record = {name: named_value(gen, name) for name in typical_fields(call.tool.spec.name)}
        record.update(
            {
                k: copy_json(v)
                for k, v in call.args.items()
                if k in call.sem.filter_params and k not in QUERY_KEYS
            }
        )
        return record


def _zone_arg(args: dict[str, Any]) -> str:
    for key in ("timezone", "tz", "time_zone", "zone"):
        value = args.get(key)
        if isinstance(value, str) and zone_info(value) is not None:
            return value
    return "UTC"


def _view(call: _Call, rid: str, record: dict[str, Any]) -> dict[str, Any]:
    """A resource as results show it: its id (as 'id' and as the tool's id argument, else
    '<entity>_id', so plans can chain on either) then its fields."""
    return {"id": rid, _id_alias(call.sem): rid, **copy_json(record)}


def _id_alias(sem: ToolSemantics) -> str:
    return sem.id_param or f"{sem.entity}_id"


# ----------------------------------------------------------------------------------- operations


def _create(call: _Call) -> StepResult:
    env, sem = call.env, call.sem
    resources = env.state.setdefault(sem.collection, {})
    rid = call.target_id
    if rid is not None and rid in resources:
        return error_result(409, "already_exists", f"{sem.entity} {rid!r} already exists")
    rid = rid or env.new_id(sem.entity, resources)
    record = {**copy_json(call.tool.defaults), **call.fields()}
    record.setdefault("status", "active")
    record.setdefault("created_at", env.clock.isoformat(timespec="seconds"))
    resources[rid] = record
    return call.respond(_view(call, rid, record), env.resource_gen(call, sem.collection, rid))


def _read(call: _Call) -> StepResult:
    env, sem, rid = call.env, call.sem, call.target_id
    if rid is None:
        return _read_by_fields(call)
    env.access_log.append((sem.tool_name, "read", sem.collection, rid))
    hit = env.find(sem, rid)
    if hit is None and env.known(sem):
        return call.not_found(rid)
    if hit is None:  # open world: the resource comes into being, and stays
        hit = (
            sem.collection,
            rid,
            call.env.plausible(call, env.resource_gen(call, sem.collection, rid)),
        )
        env.state.setdefault(sem.collection, {})[rid] = hit[2]
    name, key, record = hit
    return call.respond(_view(call, key, record), env.resource_gen(call, name, key))


def _read_by_fields(call: _Call) -> StepResult:
    env, sem = call.env, call.sem
    resources = env.state.get(sem.collection)
    env.access_log.append((sem.tool_name, "read", sem.collection, None))
    if isinstance(resources, dict) and resources:
        usable = filter_fields(call.args, sem.filter_params, resources)
        if usable:
            for key, record in resources.items():
                if isinstance(record, dict) and matches(record, call.args, usable):
                    return call.respond(
                        _view(call, key, record), env.resource_gen(call, sem.collection, key)
                    )
            return error_result(
                404,
                "not_found",
                f"no {sem.entity} matches {dict((k, call.args[k]) for k in usable)}",
            )
    return call.respond(call.env.plausible(call, call.gen))


def _list(call: _Call) -> StepResult:
    env, sem, args = call.env, call.sem, call.args
    env.access_log.append((sem.tool_name, "list", sem.collection, None))
    resources = env.state.get(sem.collection)
    if not isinstance(resources, dict):
        resources = env.state[sem.collection] = _materialise(call)
    items = [
        _view(call, k, r)
        for k, r in resources.items()
        if isinstance(r, dict) and matches(r, args, sem.filter_params)
    ]
    total = len(items)
    items = _page(items, args)
    fault = call.fault if call.fault in ("partial", "empty") else None
    if fault == "empty":
        items, total = [], 0
    elif fault == "partial":
        items = items[: len(items) // 2]
    return call.respond(_list_payload(call, items, total, fault == "partial"), fault=fault)


def _materialise(call: _Call) -> dict[str, Any]:
    """An unseeded collection being listed: 1–3 plausible resources matching the filters."""
    resources: dict[str, Any] = {}
    queries = [v for k, v in call.args.items() if k in QUERY_KEYS and isinstance(v, str)]
    for _ in range(call.env.rng.randint(1, 3)):
        record = call.env.plausible(call, call.gen)
        if queries:  # a search finds what it searched for
            record["snippet"] = f"… {' '.join(queries)} …"
        resources[call.env.new_id(call.sem.entity, resources)] = record
    return resources


def _page(items: list[Any], args: dict[str, Any]) -> list[Any]:
    limit = next(
        (
            args[k]
            for k in LIMIT_KEYS
            if isinstance(args.get(k), int) and not isinstance(args.get(k), bool)
        ),
        None,
    )
    start = args.get("offset") if isinstance(args.get("offset"), int) else 0
    if isinstance(args.get("page"), int) and limit:
        start = max(args["page"] - 1, 0) * limit
    start = max(start, 0)
    return items[start : start + limit] if limit is not None and limit >= 0 else items[start:]


def _list_payload(call: _Call, items: list[Any], total: int, partial: bool) -> Any:
    key = _items_key(call.tool.spec.output_schema, call.sem.collection)
    if key is None:
        return items
    payload: dict[str, Any] = {key: items, "count": len(items), "total": total}
    if partial:
        payload.update(
            partial=True,
            warning="upstream timed out; results are incomplete",
            next_cursor=make_id(call.env.rng, "cur"),
        )
    return payload


def _items_key(schema: Any, collection: str) -> str | None:
    """Where a list goes in the result: the root (array schema) or an array property."""
    if not isinstance(schema, dict):
        return collection
    if schema.get("type") == "array":
        return None
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    arrays = [k for k, s in props.items() if isinstance(s, dict) and s.get("type") == "array"]
    for key in (collection, "items", "results", "data", "records", "entries"):
        if key in arrays:
            return key
    return arrays[0] if arrays else collection


def _update(call: _Call) -> StepResult:
    env, sem = call.env, call.sem
    hit = _target(call)
    if isinstance(hit, StepResult):
        return hit
    name, key, record = hit
    update_resource(record, call.fields(), sem.status_value)
    record["updated_at"] = env.clock.isoformat(timespec="seconds")
    return call.respond(_view(call, key, record), env.resource_gen(call, name, key))


def _target(call: _Call) -> tuple[str, str, dict[str, Any]] | StepResult:
    """The resource an update acts on: by id (404 if absent), the only one, or a singleton."""
    env, sem, rid = call.env, call.sem, call.target_id
    if rid is not None:
        return env.find(sem, rid) or call.not_found(rid)
    resources = env.state.setdefault(sem.collection, {})
    if len(resources) == 1:
        key = next(iter(resources))
        if isinstance(resources[key], dict):
            return sem.collection, key, resources[key]
    return sem.collection, "default", resources.setdefault("default", {})


def _delete(call: _Call) -> StepResult:
    env, sem, rid = call.env, call.sem, call.target_id
    if rid is not None:
        hit = env.find(sem, rid)
        if hit is None:
            return call.not_found(rid)
        del env.state[hit[0]][hit[1]]
        return call.respond({"id": hit[1], _id_alias(sem): hit[1], "deleted": True})
    resources = env.state.get(sem.collection)
    usable = filter_fields(call.args, sem.filter_params + sem.field_params, resources or {})
    if not usable:
        return error_result(400, "missing_target", f"say which {sem.entity} to delete")
    doomed = [
        k for k, r in resources.items() if isinstance(r, dict) and matches(r, call.args, usable)
    ]
    for key in doomed:
        del resources[key]
    return call.respond({"deleted": len(doomed), "ids": doomed})


def _action(call: _Call) -> StepResult:
    env, sem, rid = call.env, call.sem, call.target_id
    if rid is not None and env.known(sem) and env.find(sem, rid) is None:
        return call.not_found(rid)
    events = env.state.setdefault(EVENTS_COLLECTION, {})
    event_id = env.new_id("evt", events)
    events[event_id] = {
        **copy_json(call.args),
        "tool": sem.tool_name,
        "at": env.clock.isoformat(timespec="seconds"),
    }
    payload = {
        "status": "ok",
        "event_id": event_id,
        "tool": sem.tool_name,
        "message": f"{sem.tool_name} accepted",
    }
    if typical_fields(sem.tool_name) is not DEFAULT_FIELDS:
        payload.update(env.plausible(call, call.gen))
    return call.respond(payload)


OPERATIONS: dict[str, Callable[[_Call], StepResult]] = {
    "create": _create,
    "read": _read,
    "list": _list,
    "update": _update,
    "delete": _delete,
    "action": _action,
}
