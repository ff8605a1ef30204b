"""The bundle as the offline task writer reads it, and the writer's replay of a plan.

``TaskWorld`` reads an agent's tools (``ToolView``: what each does, by ``envs.semantics``),
groups the usable ones by collection and seeds the initial state the agent's tasks start from.
``simulate`` replays one planned call on a copy of that state so ``finish`` can derive the
rubric from what the plan changes (``diff_predicates``). The replay follows the world model's
rules where the rubric depends on them, by calling the same functions of ``envs.state`` (the
filter rule, the update rule, the action log's collection); see ``simulate`` for where it
departs from the world model on purpose.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kimi_pipeline.agents.offline.task_values import (
    FAIL,
    PAGINATION_VALUES,
    gen_value,
    is_scalar,
    object_schema,
    scalar_schema,
    schema_type,
)
from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.envs.state import EVENTS_COLLECTION, ITEMS, matches, update_resource
from kimi_pipeline.text import plural, singular, split_words

if TYPE_CHECKING:
    from kimi_pipeline.agents.tasks import TaskConfig

DEFAULT_STATUSES = ("open", "pending", "active", "on_hold", "processing", "scheduled")


@dataclass(frozen=True)
class ToolView:
    """One bundle tool as the writer reads it."""

    name: str
    sem: ToolSemantics
    props: dict[str, Any]
    required: tuple[str, ...]
    targeted: bool  # acts on one existing resource named by a plain string id argument
    shaped: bool  # declares an output schema: its result layout is not the nominal one

    @property
    def op(self) -> str:
        return self.sem.operation

    @property
    def mutating(self) -> bool:
        return self.op in ("create", "update", "delete", "action")


def _stringy_id(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type", "string")
    kinds = kind if isinstance(kind, list) else [kind]
    return "string" in kinds and not ({"enum", "pattern", "format", "const"} & set(schema))


def view_of(tool: dict[str, Any]) -> ToolView:
    params = tool.get("parameters") or {}
    sem = infer_semantics(tool["name"], tool.get("description", ""), params)
    props = params.get("properties") or {}
    targeted = (
        sem.id_param is not None
        and sem.operation in ("read", "update", "delete", "action")
        and _stringy_id(props.get(sem.id_param))
    )
    return ToolView(
        tool["name"],
        sem,
        props,
        tuple(params.get("required") or ()),
        targeted,
        bool(tool.get("output_schema")),
    )


def matching(resources: dict[str, Any], tool: ToolView, args: dict[str, Any]) -> list[str]:
    """Ids of the resources a list (or read-by-fields) call with ``args`` returns, in order
    (the world model's filter rule, ``envs.state.matches``)."""
    params = tool.sem.filter_params
    return [rid for rid, res in resources.items() if matches(res, args, params)]


def simulate(
    state: dict[str, Any], tool: ToolView, args: dict[str, Any], new_ids: list[str]
) -> Any:
    """Apply one call to ``state`` as the world model does; the JSON result (None if unknown).

    It shares the world model's filter and update rules (``envs.state``) and differs on purpose
    where the writer cannot or need not know what an episode will draw:

    - a create gets a placeholder id ``<new:collection:n>`` (the world model draws the real one
      from the episode's rng, so the rubric names it by ``$ref``) and holds only the arguments'
      fields (the world model adds schema defaults, 'status' and 'created_at': a ``contains``
      predicate on the arguments' fields holds either way); no clock fields anywhere;
    - a list returns every match under ``items``, unpaged (the world model pages and puts items
      under the collection's name or the output schema's array; ``$ref:<i>.items`` reads both);
    - reads, updates and deletes by id look only in the tool's own collection, and a target it
      lacks is None (the world model also looks up the id's owner collection and answers 404 or
      an open-world record); a read by fields with no usable filter returns the first resource;
    - an action logs ``<event:n>`` with its arguments and the tool (the world model draws the
      event id and adds the time).
    """
    sem = tool.sem
    coll = state.get(sem.collection, {})
    target = args.get(sem.id_param) if sem.id_param else None
    if sem.operation == "create":
        rid = f"<new:{sem.collection}:{len(new_ids)}>"  # the world model picks the real id
        new_ids.append(rid)
        fields = {k: v for k, v in args.items() if k in sem.field_params}
        state.setdefault(sem.collection, {})[rid] = fields
        return {"id": rid, **fields}
    if sem.operation == "list":
        items = [{"id": rid, **coll[rid]} for rid in matching(coll, tool, args)]
        return {ITEMS: items, "count": len(items)}
    if sem.operation == "action":
        events = state.setdefault(EVENTS_COLLECTION, {})
        events[f"<event:{len(events)}>"] = {**args, "tool": tool.name}
        return {"status": "ok", "tool": tool.name}
    if sem.operation == "read" and target is None and coll:
        hits = matching(coll, tool, args)  # a read by fields returns the first match
        return {"id": hits[0], **coll[hits[0]]} if hits else None
    if target is None or target not in coll:
        return None
    if sem.operation == "update":
        changes = {k: v for k, v in args.items() if k in sem.field_params}  # in argument order
        update_resource(coll[target], changes, sem.status_value)
    if sem.operation == "delete":
        del coll[target]
        return {"id": target, "deleted": True}
    return {"id": target, **coll[target]}


def diff_predicates(
    before: dict[str, Any], after: dict[str, Any], collections: set[str] | None = None
) -> list[dict[str, Any]]:
    """State predicates that hold for ``after`` and tell it apart from ``before`` (looking only
    at ``collections`` when given: the ones the plan's tools act on)."""
    preds: list[dict[str, Any]] = []
    for coll in sorted(collections if collections is not None else set(before) | set(after)):
        old, new = before.get(coll, {}), after.get(coll, {})
        if coll == EVENTS_COLLECTION or not isinstance(old, dict) or not isinstance(new, dict):
            continue  # the action log is not a collection of resources
        if len(old) != len(new):
            preds.append({"path": coll, "op": "count_equals", "value": len(new)})
        preds += [{"path": f"{coll}.{rid}", "op": "absent"} for rid in old if rid not in new]
        for rid, res in new.items():
            if rid not in old:
                shown = {k: v for k, v in res.items() if is_scalar(v) or isinstance(v, bool)}
                if shown:
                    preds.append({"path": coll, "op": "contains", "value": shown})
                continue
            preds += [
                {"path": f"{coll}.{rid}", "op": "equals", "field": k, "value": v}
                for k, v in res.items()
                if old[rid].get(k, FAIL) != v
            ]
    return preds


# -------------------------------------------------------------------------------- the world


class TaskWorld:
    """An agent's bundle as the writer drafts over it: usable tools by collection, their status
    pools and the seeded initial state (no simulator: episodes run in ``envs.world.WorldModel``;
    the writer's replay is ``simulate``)."""

    def __init__(
        self,
        tools: list[dict[str, Any]],
        distractors: set[str],
        config: TaskConfig,
        rng: random.Random,
    ):
        self.views = [view_of(t) for t in tools]
        self.state_changing = sorted(v.name for v in self.views if v.mutating)
        self.core = [v for v in self.views if v.name not in distractors]
        self.by_collection: dict[str, list[ToolView]] = {}
        for view in self.core:
            self.by_collection.setdefault(view.sem.collection, []).append(view)
        self.statuses = {c: self._status_pool(ts) for c, ts in self.by_collection.items()}
        self.base = self._seed_state(config.resources_per_collection, rng)
        self.usable = [v for v in self.core if _predictable(v)]

    @staticmethod
    def _status_pool(tools: list[ToolView]) -> tuple[str, ...]:
        enum = next(
            (
                p["enum"]
                for t in tools
                for n, p in t.props.items()
                if n == "status" and isinstance(p, dict) and p.get("enum")
            ),
            None,
        )
        targets = {t.sem.status_value for t in tools}
        pool = tuple(
            s for s in (enum or DEFAULT_STATUSES) if isinstance(s, str) and s not in targets
        )
        return pool if len(pool) >= 2 else DEFAULT_STATUSES

    def fields(self, coll: str) -> dict[str, Any]:
        """Resource fields of a collection: what its creates and updates set, plus the scalar
        filters of its lists and reads (options objects and array filters are no attributes
        worth seeding)."""
        out: dict[str, Any] = {}
        for tool in self.by_collection.get(coll, ()):
            if tool.op in ("create", "update"):
                names = tuple(
                    p for p in tool.sem.field_params if not object_schema(tool.props.get(p))
                )
            elif tool.op in ("list", "read"):
                names = tuple(
                    p for p in tool.sem.filter_params if scalar_schema(tool.props.get(p))
                )
            else:
                continue
            for name in names:
                out.setdefault(name, tool.props.get(name))
        return out

    def seeded(self, coll: str) -> bool:
        """Collections some tool targets, lists or creates; the others stay an open world."""
        return any(
            t.targeted or t.op in ("list", "create") for t in self.by_collection.get(coll, ())
        )

    def _seed_state(self, n: int, rng: random.Random) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for coll in sorted(c for c in self.by_collection if self.seeded(c)):
            prefix, fields = id_prefix(self.by_collection[coll][0].sem.entity), self.fields(coll)
            resources: dict[str, Any] = {}
            while len(resources) < n:
                resources[f"{prefix}-{rng.randint(1000, 9999)}"] = self._resource(
                    coll, fields, rng, state
                )
            state[coll] = resources
        return state

    def _resource(
        self, coll: str, fields: dict[str, Any], rng: random.Random, state: dict[str, Any]
    ) -> dict[str, Any]:
        out = {}
        for name, schema in fields.items():
            value = self.value(name, schema, rng, state)
            if value is not FAIL:
                out[name] = value
        out["status"] = rng.choice(self.statuses[coll])
        return out

    def value(self, name: str, schema: Any, rng: random.Random, state: dict[str, Any]) -> Any:
        """A value for one argument; '<entity>_id' foreign keys point at seeded resources."""
        if name == "status" and not (isinstance(schema, dict) and schema.get("enum")):
            return rng.choice(DEFAULT_STATUSES)
        if (
            name in PAGINATION_VALUES
            and isinstance(schema, dict)
            and schema_type(schema) == "integer"
        ):
            return PAGINATION_VALUES[name]
        owner = _foreign_key(name)
        if owner and _stringy_id(schema or {"type": "string"}):
            known = state.get(owner[0])
            if known:
                return rng.choice(sorted(known))
            return f"{owner[1]}-{rng.randint(1000, 9999)}"
        return gen_value(name, schema if isinstance(schema, dict) else {"type": "string"}, rng)

    def arguments(
        self,
        tool: ToolView,
        rng: random.Random,
        state: dict[str, Any],
        names: list[str] | None = None,
    ) -> dict[str, Any] | None:
        """Values for the required arguments (and ``names``); None if one cannot be made."""
        out = {}
        for name in list(tool.required) + [n for n in names or () if n not in tool.required]:
            if name == tool.sem.id_param and tool.targeted:
                continue  # the target is chosen by the caller
            if name == tool.sem.id_param and tool.op == "create":
                value = self._fresh_id(tool, rng, state)  # a create naming its own new id
            else:
                value = self.value(name, tool.props.get(name), rng, state)
            if value is FAIL:
                return None
            out[name] = value
        return out

    @staticmethod
    def _fresh_id(tool: ToolView, rng: random.Random, state: dict[str, Any]) -> Any:
        if not _stringy_id(tool.props.get(tool.sem.id_param)):
            return FAIL
        taken = state.get(tool.sem.collection) or {}
        for _ in range(100):
            rid = f"{id_prefix(tool.sem.entity)}-{rng.randint(10000, 99999)}"
            if rid not in taken:
                return rid
        return FAIL


@lru_cache(maxsize=65536)
def _foreign_key(name: str) -> tuple[str, str] | None:
    """'customer_id' → ('customers', 'CST'): the collection and id prefix it points at."""
    words = split_words(name)
    if len(words) > 1 and words[-1] == "id":
        return plural(singular(words[-2])), id_prefix(words[-2])
    return None


def _predictable(tool: ToolView) -> bool:
    """Tools whose effect the writer can predict: untargeted updates and deletes, and calls by
    an id it cannot make (integers, patterns), are left out of plans. (Arguments a schema makes
    impossible to generate are found when a step is built: the builder then tries another.)"""
    if tool.op in ("update", "delete") and not tool.targeted:
        return False
    return not (tool.sem.id_param and tool.op in ("read", "action") and not tool.targeted)


@lru_cache(maxsize=65536)
def id_prefix(entity: str) -> str:
    """'order' → 'ORD', 'customer' → 'CST': a first letter and the next consonants."""
    letters = [c for c in entity.upper() if c.isalpha()] or list("RES")
    prefix = (letters[0] + "".join(c for c in letters[1:] if c not in "AEIOU"))[:3]
    return prefix if len(prefix) == 3 else "".join(letters)[:3].ljust(3, "X")
