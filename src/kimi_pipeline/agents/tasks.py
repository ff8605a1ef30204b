"""Tasks with rubrics for an agent's tool bundle (K2 stage 2, K2 report §3.1).

Per agent, the ``task_writer`` role writes tasks of six kinds, from one call to chained calls
where an output feeds the next, conditionals, errors to recover from, a missing argument the
agent must ask for, and requests the tools cannot serve. Every task carries the world it
starts from (``initial_state``), a reference plan and a rubric. An LLM writes them from the
prompt messages as JSON; the offline program below writes them from the same structured
context by reading each tool with ``envs.semantics`` and replaying its plan on the nominal
world-model semantics, so the rubric's state predicates hold exactly for the plan. Either
reply is validated the same way (``records.Task`` plus plan checks); a malformed task becomes
a quarantine record (``Rejection``), never an exception.

A written request can be asked for one part per turn (``envs.state.request_stages``).

The contracts of ``$ref`` and state predicates, and the request grammar, live in
``kimi_pipeline.envs.state`` (the judge, the world model and the agent policy follow them too).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kimi_pipeline.agents.bundles import Rejection, reject
from kimi_pipeline.envs.state import (
    ITEMS,
    REF,
    compose_request,
    is_ref,
    resolve_arguments,
)
from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.records import Agent, Task, ToolSpec
from kimi_pipeline.gcpause import gc_paused
from kimi_pipeline.registry import registrar
from kimi_pipeline.text import plural, singular, split_words

ROLE = "task_writer"
EVENTS = "_events"  # where the world model records actions (not a resource collection)
KINDS = (
    "single_call",
    "chained",
    "conditional",
    "error_recovery",
    "missing_argument",
    "unsupported",
)
DEFAULT_STATUSES = ("open", "pending", "active", "on_hold", "processing", "scheduled")


class TaskConfig(BaseModel):
    """How many tasks each agent gets, of which kinds, over how large a world."""

    model_config = ConfigDict(extra="forbid")

    tasks_per_agent: int = Field(5, ge=1, description="Tasks written per agent.")
    kind_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "single_call": 0.2,
            "chained": 0.25,
            "conditional": 0.15,
            "error_recovery": 0.15,
            "missing_argument": 0.15,
            "unsupported": 0.1,
        },
        description="Relative frequency of each task kind; a kind the bundle cannot support "
        "(e.g. chained without two tools on one collection) is replaced by a feasible one.",
    )
    resources_per_collection: int = Field(
        4, ge=1, le=50, description="Resources seeded per collection in a task's initial_state."
    )
    third_step_rate: float = Field(
        0.35, ge=0, le=1, description="Chance a chained task adds a third step (a confirming read)."
    )
    attempts_per_kind: int = Field(
        4, ge=1, description="Offline writer: tries per kind before falling back to another kind."
    )

    @field_validator("kind_weights")
    @classmethod
    def _known_kinds(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown task kinds {sorted(unknown)}; known: {list(KINDS)}")
        if not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
            raise ValueError("kind_weights must be non-negative with at least one positive weight")
        return weights




# ---------------------------------------------------------------------- values from schemas

_FAIL = object()  # a schema no value could be generated for
_FIRST = tuple(
    "Alice Bruno Chen Dana Elif Farah Goran Hana Ivan Jonas Keiko Luis Mira Omar".split()
)
_LAST = tuple("Novak Silva Okafor Lindqvist Tanaka Moreau Rossi Kowalski Haddad Costa".split())
_CITIES = tuple(
    "Lisbon Oslo Nairobi Montreal Osaka Valencia Krakow Austin Porto Seoul Lyon".split()
)
_NOUNS = tuple(
    "budget review launch migration audit onboarding renewal inventory roadmap workshop shipment "
    "invoice".split()
)
_ORGS = tuple("Northwind Bluefin Harborview Lumen Cobalt Evergreen Meridian Quartz".split())
_ADJ = tuple("quarterly urgent annual weekly regional internal priority draft".split())
_PRODUCTS = tuple(
    "Trail Runner 2|Desk Lamp Pro|Ceramic Mug|Noise-Cancelling Headphones|Standing Desk|"
    "Wool Scarf|USB-C Hub|Espresso Grinder".split("|")
)
_SENTENCES = tuple(
    "Customer asked for an update before Friday.|Please handle with care.|"
    "Requested by the finance team.|Follow-up from last week's call.|"
    "Needed for the upcoming audit.|Duplicate entry, see previous record.".split("|")
)


def _date(rng: random.Random) -> str:
    return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _datetime(rng: random.Random) -> str:
    return f"{_date(rng)}T{rng.randint(8, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}:00Z"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date-time": _datetime,
    "date": _date,
    "time": lambda r: f"{r.randint(8, 18):02d}:{r.choice((0, 30)):02d}:00",
    "email": lambda r: f"{r.choice(_FIRST).lower()}.{r.choice(_LAST).lower()}@example.com",
    "uri": lambda r: f"https://example.com/{r.choice(_NOUNS)}/{r.randint(10, 999)}",
    "uuid": lambda r: (
        "%08x-%04x-4%03x-a%03x-%012x"
        % (
            r.getrandbits(32),
            r.getrandbits(16),
            r.getrandbits(12),
            r.getrandbits(12),
            r.getrandbits(48),
        )
    ),
    "ipv4": lambda r: f"10.0.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "hostname": lambda r: f"{r.choice(_NOUNS)}.example.com",
}
_FORMATS["uri-reference"] = _FORMATS["url"] = _FORMATS["iri"] = _FORMATS["uri"]
_FORMATS["idn-email"] = _FORMATS["email"]
_FORMATS.update(
    {
        "duration": lambda r: f"PT{r.randint(1, 90)}M",
        "ipv6": lambda r: "2001:db8::1",
        "regex": lambda r: "^[a-z]+$",
        "json-pointer": lambda r: "/items/0",
        "relative-json-pointer": lambda r: "0/id",
        "idn-hostname": _FORMATS["hostname"],
    }
)

# (words in the parameter name, generator); the first hint whose word occurs wins
_STRING_HINTS: tuple[tuple[frozenset[str], Callable[[random.Random], str]], ...] = tuple(
    (frozenset(words.split()), gen)
    for words, gen in (
        ("email mail", _FORMATS["email"]),
        (
            "phone mobile telephone",
            lambda r: f"+1-555-{r.randint(100, 999)}-{r.randint(1000, 9999)}",
        ),
        ("url link website uri homepage", _FORMATS["uri"]),
        ("product item sku_name", lambda r: r.choice(_PRODUCTS)),
        ("first given", lambda r: r.choice(_FIRST)),
        ("last surname family", lambda r: r.choice(_LAST)),
        ("currency", lambda r: r.choice(("USD", "EUR", "GBP", "JPY"))),
        ("country", lambda r: r.choice(("US", "DE", "FR", "JP", "BR", "KE"))),
        ("language lang locale", lambda r: r.choice(("en", "fr", "de", "es"))),
        (
            "city location address destination origin place venue region",
            lambda r: r.choice(_CITIES),
        ),
        ("date day deadline due birthday", _date),
        ("time datetime start end until since timestamp", _datetime),
        ("symbol ticker", lambda r: r.choice(("AAPL", "MSFT", "NVDA", "TSLA", "AMZN"))),
        ("priority severity", lambda r: r.choice(("low", "medium", "high"))),
        ("color colour", lambda r: r.choice(("red", "blue", "green", "black"))),
        (
            "hotel company business organization organisation store shop restaurant team "
            "project brand vendor supplier merchant airline bank",
            lambda r: f"{r.choice(_ORGS)} {r.choice(('Group', 'Labs', 'House', 'Partners'))}",
        ),
        (
            "name owner customer assignee author user recipient contact attendee member person",
            _person,
        ),
        (
            "title summary subject headline topic",
            lambda r: f"{r.choice(_ADJ).title()} {r.choice(_NOUNS)}",
        ),
        (
            "description note notes reason message comment body content text feedback instructions "
            "query keyword keywords search",
            lambda r: r.choice(_SENTENCES),
        ),
        ("tag tags label category type kind", lambda r: r.choice(_NOUNS)),
        (
            "code sku reference ref",
            lambda r: f"{r.choice(_NOUNS)[:3].upper()}-{r.randint(100, 999)}",
        ),
    )
)
_NUMBER_HINTS: tuple[tuple[frozenset[str], tuple[float, float]], ...] = tuple(
    (frozenset(words.split()), bounds)
    for words, bounds in (
        ("quantity qty count units seats guests nights items copies", (1, 5)),
        ("price amount cost total balance budget salary fee value", (5, 500)),
        ("year", (2024, 2026)),
        ("minutes duration seconds hours days timeout", (15, 120)),
        ("percent percentage rate discount", (1, 50)),
        ("lat latitude", (-60, 60)),
        ("lon lng longitude", (-150, 150)),
        ("rating score stars", (1, 5)),
        ("age", (18, 80)),
    )
)
_PAGINATION_VALUES = {
    "limit": 10,
    "max_results": 10,
    "page_size": 10,
    "per_page": 10,
    "offset": 0,
    "page": 1,
}


@lru_cache(maxsize=65536)
def name_words(name: str) -> frozenset[str]:
    return frozenset(split_words(name))


@lru_cache(maxsize=65536)
def label(name: str) -> str:
    """A parameter name as words: 'customer_email' → 'customer email'."""
    return " ".join(split_words(name)) or name


def _phrase(rng: random.Random) -> str:
    return f"{rng.choice(_ADJ)} {rng.choice(_NOUNS)}"


@lru_cache(maxsize=65536)
def _string_hint(name: str) -> Callable[[random.Random], str]:
    words = name_words(name)
    return next((gen for hint, gen in _STRING_HINTS if words & hint), _phrase)


def _hinted_string(name: str, rng: random.Random) -> str:
    return _string_hint(name)(rng)


@lru_cache(maxsize=4096)
def _pattern(pattern: str) -> re.Pattern | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _fit_pattern(pattern: str, value: str, rng: random.Random) -> str | None:
    compiled = _pattern(pattern)
    if compiled is None:
        return None
    candidates = (
        value,
        value.lower(),
        value.upper(),
        str(rng.randint(10000, 99999)),
        f"ABC-{rng.randint(1000, 9999)}",
        "ABC123",
        "abc",
        _date(rng),
        "A",
        "1",
    )
    return next((c for c in candidates if compiled.search(c)), None)


def _string(name: str, schema: dict[str, Any], rng: random.Random, depth: int) -> Any:
    fmt = schema.get("format")
    value = _FORMATS[fmt](rng) if fmt in _FORMATS else _hinted_string(name, rng)
    if schema.get("pattern"):
        value = _fit_pattern(str(schema["pattern"]), value, rng)
        if value is None:
            return _FAIL
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        value += "x" * (low - len(value))
    if isinstance(high, int) and len(value) > high:
        value = value[:high]
    return value if len(value) >= (low if isinstance(low, int) else 0) else _FAIL


@lru_cache(maxsize=65536)
def _number_hint(name: str) -> tuple[float, float]:
    words = name_words(name)
    return next((b for hint, b in _NUMBER_HINTS if words & hint), (1, 100))


def _bounds(name: str, schema: dict[str, Any]) -> tuple[float, float]:
    low, high = _number_hint(name)
    smin, smax = schema.get("minimum"), schema.get("maximum")
    emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    lo = max(
        x
        for x in (smin, emin, -math.inf)
        if isinstance(x, (int, float)) and not isinstance(x, bool)
    )
    hi = min(
        x for x in (smax, emax, math.inf) if isinstance(x, (int, float)) and not isinstance(x, bool)
    )
    if lo > -math.inf or hi < math.inf:
        if low < lo or high > hi:  # the hint falls outside the schema's range: use the schema's
            low = lo if lo > -math.inf else min(hi - 10, low)
            high = hi if hi < math.inf else max(lo + 10, high)
    return low, high


def _number(name: str, schema: dict[str, Any], rng: random.Random, integer: bool) -> Any:
    low, high = _bounds(name, schema)
    emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if integer:
        lo = (
            math.floor(emin) + 1
            if isinstance(emin, (int, float)) and not isinstance(emin, bool) and emin >= low
            else math.ceil(low)
        )
        hi = (
            math.ceil(emax) - 1
            if isinstance(emax, (int, float)) and not isinstance(emax, bool) and emax <= high
            else math.floor(high)
        )
        if lo > hi:
            return _FAIL
        value: float = rng.randint(lo, hi)
    else:
        value = round(rng.uniform(low, high), 2)
        if value <= low or value >= high:
            value = round((low + high) / 2, 2) if high > low else low
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = math.ceil(value / step) * step
        value = int(value) if integer else round(value, 6)
    return int(value) if integer else value


def _array(name: str, schema: dict[str, Any], rng: random.Random, depth: int) -> Any:
    items = schema.get("items") if isinstance(schema.get("items"), dict) else {"type": "string"}
    count = max(1, schema.get("minItems", 1) if isinstance(schema.get("minItems"), int) else 1)
    if isinstance(schema.get("maxItems"), int):
        count = min(count, schema["maxItems"])
    out: list[Any] = []
    for _ in range(count * 3):
        if len(out) == count:
            break
        value = gen_value(singular(name), items, rng, depth + 1)
        if value is _FAIL:
            return _FAIL
        if not (schema.get("uniqueItems") and value in out):
            out.append(value)
    return out if len(out) == count else _FAIL


def _object(name: str, schema: dict[str, Any], rng: random.Random, depth: int) -> Any:
    if depth > 3:
        return {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [p for p in schema.get("required") or () if p in props]
    out = {}
    for prop in required + [p for p in props if p not in required][:2]:
        value = gen_value(prop, props[prop], rng, depth + 1)
        if value is _FAIL:
            if prop in required:
                return _FAIL
            continue
        out[prop] = value
    return out


def _object_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and _schema_type(schema) == "object"


def _scalar_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and _schema_type(schema) in ("string", "integer", "number")


def _schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    return kind


_PLAIN_STRING = {"type", "description", "title", "default", "examples"}


def gen_value(name: str, schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A plausible value for parameter ``name`` valid under ``schema``, or ``_FAIL``."""
    if not isinstance(schema, dict):
        return _FAIL
    if schema.get("type") == "string" and _PLAIN_STRING.issuperset(schema):  # the common case
        return _string_hint(name)(rng)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        options = [e for e in schema["enum"] if e is not None] or schema["enum"]
        return rng.choice(options)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            for sub in schema[key]:
                if isinstance(sub, dict) and sub.get("type") != "null":
                    value = gen_value(name, sub, rng, depth)
                    if value is not _FAIL:
                        return value
            return _FAIL
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for sub in schema["allOf"] if isinstance(sub, dict) for k, v in sub.items()}
        return gen_value(
            name, {**merged, **{k: v for k, v in schema.items() if k != "allOf"}}, rng, depth
        )
    kind = _schema_type(schema)
    if kind == "string":
        return _string(name, schema, rng, depth)
    if kind in ("integer", "number"):
        return _number(name, schema, rng, integer=kind == "integer")
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return _array(name, schema, rng, depth)
    if kind == "object":
        return _object(name, schema, rng, depth)
    return None if kind == "null" else _FAIL


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------- the nominal world model


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


def _matches(resource: dict[str, Any], key: str, wanted: Any) -> bool:
    """Filtering as the world model does it: case-insensitive substring for strings, membership
    for list fields, equality otherwise; an argument that is no field of the resource does not
    filter."""
    if key not in resource:
        return True
    have = resource[key]
    if isinstance(have, str) and isinstance(wanted, str):
        return wanted.lower() in have.lower()
    if isinstance(have, list) and not isinstance(wanted, list):
        return wanted in have
    return have == wanted


def matching(resources: dict[str, Any], tool: ToolView, args: dict[str, Any]) -> list[str]:
    """Ids of the resources a list (or read-by-fields) call with ``args`` returns, in order."""
    keys = [k for k in tool.sem.filter_params if k in args]
    return [rid for rid, res in resources.items() if all(_matches(res, k, args[k]) for k in keys)]


def simulate(
    state: dict[str, Any], tool: ToolView, args: dict[str, Any], new_ids: list[str]
) -> Any:
    """Apply one call to ``state`` as the world model does; the JSON result (None if unknown)."""
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
        events = state.setdefault(EVENTS, {})
        events[f"<event:{len(events)}>"] = {**args, "tool": tool.name}
        return {"status": "ok", "tool": tool.name}
    if sem.operation == "read" and target is None and coll:
        hits = matching(coll, tool, args)  # a read by fields returns the first match
        return {"id": hits[0], **coll[hits[0]]} if hits else None
    if target is None or target not in coll:
        return None
    if sem.operation == "update":
        coll[target].update({k: v for k, v in args.items() if k in sem.field_params})
        if sem.status_value:
            coll[target]["status"] = sem.status_value
    if sem.operation == "delete":
        del coll[target]
        return {"id": target, "deleted": True}
    return {"id": target, **coll[target]}


def copy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough for the simulator, which replaces field values but never edits them."""
    return {
        c: {r: dict(f) for r, f in res.items()} if isinstance(res, dict) else list(res)
        for c, res in state.items()
    }


def diff_predicates(
    before: dict[str, Any], after: dict[str, Any], collections: set[str] | None = None
) -> list[dict[str, Any]]:
    """State predicates that hold for ``after`` and tell it apart from ``before`` (looking only
    at ``collections`` when given: the ones the plan's tools act on)."""
    preds: list[dict[str, Any]] = []
    for coll in sorted(collections if collections is not None else set(before) | set(after)):
        old, new = before.get(coll, {}), after.get(coll, {})
        if coll == EVENTS or not isinstance(old, dict) or not isinstance(new, dict):
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
                if old[rid].get(k, _FAIL) != v
            ]
    return preds


# -------------------------------------------------------------------------------- the world


class World:
    """A bundle read by the writer: usable tools by collection and the seeded initial state."""

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
                    p for p in tool.sem.field_params if not _object_schema(tool.props.get(p))
                )
            elif tool.op in ("list", "read"):
                names = tuple(
                    p for p in tool.sem.filter_params if _scalar_schema(tool.props.get(p))
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
            if value is not _FAIL:
                out[name] = value
        out["status"] = rng.choice(self.statuses[coll])
        return out

    def value(self, name: str, schema: Any, rng: random.Random, state: dict[str, Any]) -> Any:
        """A value for one argument; '<entity>_id' foreign keys point at seeded resources."""
        if name == "status" and not (isinstance(schema, dict) and schema.get("enum")):
            return rng.choice(DEFAULT_STATUSES)
        if (
            name in _PAGINATION_VALUES
            and isinstance(schema, dict)
            and _schema_type(schema) == "integer"
        ):
            return _PAGINATION_VALUES[name]
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
            if value is _FAIL:
                return None
            out[name] = value
        return out

    @staticmethod
    def _fresh_id(tool: ToolView, rng: random.Random, state: dict[str, Any]) -> Any:
        if not _stringy_id(tool.props.get(tool.sem.id_param)):
            return _FAIL
        taken = state.get(tool.sem.collection) or {}
        for _ in range(100):
            rid = f"{id_prefix(tool.sem.entity)}-{rng.randint(10000, 99999)}"
            if rid not in taken:
                return rid
        return _FAIL


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


# ------------------------------------------------------------------------------ plan steps


@dataclass
class Step:
    """One planned call and how the user would ask for it."""

    tool: ToolView
    args: dict[str, Any]
    target: Any = None  # literal id, '$ref:…' or None
    withholdable: tuple[str, ...] = ()  # literal required arguments the user could leave out

    def clause(self, rng: random.Random, hide: frozenset[str] = frozenset()) -> str:
        return _CLAUSES[self.tool.op](self, rng, hide)


@dataclass
class Ctx:
    """What a kind builder works with: the world, this task's state copy and its generator."""

    world: World
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
        if is_scalar(fields.get(p)) and _scalar_schema(tool.props.get(p))
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


# ------------------------------------------------------------------------------- phrasing


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    return f'"{text}"' if " " in text else text


def _pairs(args: dict[str, Any], skip: set[str]) -> str:
    parts = [f"{label(k)} {show(v)}" for k, v in args.items() if k not in skip and not is_ref(v)]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else ""


def _entity(step: Step) -> str:
    return label(step.tool.sem.entity)


def _target(step: Step, hide: frozenset[str]) -> str:
    if is_ref(step.target):
        return "it"
    if step.tool.sem.id_param in hide:
        return f"my {_entity(step)}"
    return f"{_entity(step)} {step.target}"


def _skip(step: Step, hide: frozenset[str]) -> set[str]:
    return set(hide) | {step.tool.sem.id_param} | set(_PAGINATION_VALUES)


def _create(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    pairs = _pairs(step.args, _skip(step, hide))
    entity = _entity(step)
    head = rng.choice(("create a new {e}", "add {a} {e}", "set up a new {e}", "register {a} {e}"))
    return head.format(e=entity, a="an" if entity[:1] in "aeiou" else "a") + (
        f" with {pairs}" if pairs else ""
    )


def _read(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    if not step.tool.targeted:
        pairs = _pairs(step.args, _skip(step, hide))
        return f"get the {_entity(step)}" + (f" for {pairs}" if pairs else "")
    target = _target(step, hide)
    if target == "it":
        return rng.choice(
            (
                "look it up and tell me its details",
                "show me its details",
                "check it and tell me its current status",
            )
        )
    return rng.choice(
        (
            "look up {t} and tell me its details",
            "show me the details of {t}",
            "check {t} for me and tell me its current status",
        )
    ).format(t=target)


def _list(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    coll = label(step.tool.sem.collection)
    filters = {k: v for k, v in step.args.items() if k in step.tool.sem.filter_params}
    pairs = _pairs(filters, set(hide))
    if not pairs:
        return rng.choice(("list all {c}", "show me all the {c}")).format(c=coll)
    head = rng.choice(
        ("find the {e} with {p}", "search for the {e} with {p}", "look for the {e} with {p}")
    )
    return head.format(e=_entity(step), p=pairs.replace(" and ", ", "))


def _update(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    target = _target(step, hide)
    if step.tool.sem.status_value:
        return f"{step.tool.sem.verb} {target}"
    fields = {
        k: v for k, v in step.args.items() if k in step.tool.sem.field_params and k not in hide
    }
    changes = " and ".join(f"{label(k)} to {show(v)}" for k, v in fields.items())
    if not changes:
        return f"update {target}"
    return rng.choice(("update {t}: set {c}", "change {t}: set {c}")).format(t=target, c=changes)


def _delete(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    return rng.choice(("delete {t}", "remove {t}", "permanently delete {t}")).format(
        t=_target(step, hide)
    )


def _action(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    pairs = _pairs(step.args, _skip(step, hide))
    what = label(step.tool.name)
    target = f" for {_target(step, hide)}" if step.tool.targeted else ""
    return f"{what}{target}" + (f" with {pairs}" if pairs else "")


_CLAUSES: dict[str, Callable[[Step, random.Random, frozenset[str]], str]] = {
    "create": _create,
    "read": _read,
    "list": _list,
    "update": _update,
    "delete": _delete,
    "action": _action,
}


# ------------------------------------------------------------------------------- drafts


@dataclass
class Draft:
    """A task under construction; ``finish`` turns it into a Task-shaped dict."""

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
_KINDS: dict[str, TaskBuilder] = {}


register_task_kind = registrar(_KINDS)  # the offline builder of one task kind


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
    ctx.state = copy_state(ctx.state)  # the branch is set in this task's own world
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
    effect = _facts(Step(act.tool, act.args, target), 1, {"id": target}, {})
    return Draft(
        "conditional",
        [check, act] if taken else [check],
        ctx.state,
        guards=[] if taken else [guard],
        request=request,
        facts=_dedupe([target, *effect]) if taken else [target, other],
        checkpoints=[f"Looks up {entity} {target} with {reader.name} before deciding."],
        criteria=[f"The branch follows the state: {branch}."],
    )


def _base_plan(ctx: Ctx) -> Draft | None:
    """A single-call or chained plan to decorate (error recovery, missing argument)."""
    order = ("chained", "single_call") if ctx.rng.random() < 0.5 else ("single_call", "chained")
    for kind in order:
        draft = _KINDS[kind](ctx)
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


# --------------------------------------------------------------------------- finishing a draft


def _facts(step: Step, index: int, result: Any, new_ids: dict[str, str]) -> list[str]:
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


def _difficulty(kind: str, steps: int) -> str:
    if kind == "unsupported":
        return "easy"
    score = steps + (1 if kind in ("conditional", "error_recovery", "missing_argument") else 0)
    return "easy" if score <= 1 else "medium" if score == 2 else "hard"


def _literal(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if not is_ref(v)}


def _sentence(pred: dict[str, Any]) -> str:
    op, path = pred["op"], pred["path"]
    if op == "count_equals":
        return f"The {path} collection holds exactly {pred['value']} records."
    if op == "absent":
        return f"{path} no longer exists."
    if op == "contains":
        return f"Some record in {path} has {_pairs(pred['value'], set())}."
    return f"{path} has {pred['field']} = {show(pred['value'])}."


def finish(draft: Draft, world: World, rng: random.Random) -> dict[str, Any]:
    """The Task-shaped dict: request, plan, world, rubric derived by replaying the plan."""
    initial = draft.state  # shared by an agent's tasks; only ever serialised
    final, new_ids, results = copy_state(initial), [], []
    for step in draft.steps:
        results.append(simulate(final, step.tool, resolve_arguments(step.args, results), new_ids))
    ref_of = {
        rid: f"$ref:{i}.id"
        for i, r in enumerate(results)
        if isinstance(r, dict) and str(r.get("id", "")).startswith("<new:")
        for rid in [r["id"]]
    }
    preds = (
        diff_predicates(initial, final, {s.tool.sem.collection for s in draft.steps}) + draft.guards
    )
    if not preds and draft.steps and not any(s.tool.mutating for s in draft.steps):
        coll = draft.steps[0].tool.sem.collection  # read-only: nothing may change
        preds.append({"path": coll, "op": "count_equals", "value": len(initial.get(coll, {}))})
    facts = (
        draft.facts
        if draft.facts is not None
        else _dedupe(
            f
            for i, (s, r) in enumerate(zip(draft.steps, results))
            for f in _facts(s, i, r, ref_of)
            if len(f) >= 2
        )
    )  # a one-character fact ('3') would be found in any answer
    request = draft.request or compose_request(
        rng, [s.clause(rng, draft.hide.get(i, frozenset())) for i, s in enumerate(draft.steps)]
    )
    plan_names = [s.tool.name for s in draft.steps]
    literal = [_literal(s.args) for s in draft.steps]
    told = ", ".join(_human_fact(f, draft.steps) for f in facts[:4])
    return {
        "kind": draft.kind,
        "request": request,
        "hidden_info": draft.hidden,
        "plan": [{"name": s.tool.name, "arguments": s.args} for s in draft.steps],
        "initial_state": initial,
        "scripted_faults": draft.faults,
        "rubric": {
            "success_criteria": draft.criteria
            + [_sentence(p) for p in preds]
            + ([f"The final answer states {told}."] if facts else []),
            "state_predicates": preds,
            "required_facts": facts[:4],
            "required_calls": [{"name": n, "arguments": a} for n, a in zip(plan_names, literal)],
            "forbidden_calls": [n for n in world.state_changing if n not in plan_names]
            if draft.outcome == "complete"
            else list(world.state_changing),
            "order_constraints": _dedupe(
                (a, b) for a, b in zip(plan_names, plan_names[1:]) if a != b
            ),
            "checkpoints": draft.checkpoints
            + [
                f"Calls {n}" + (f" with {_pairs(a, set())}" if a else "")
                for n, a in zip(plan_names, literal)
            ]
            + ([f"Tells the user {told}."] if facts else []),
            "expected_outcome": draft.outcome,
            "difficulty": _difficulty(draft.kind, len(draft.steps)),
        },
    }


def _human_fact(fact: str, steps: list[Step]) -> str:
    """'$ref:0.id' → 'the id of the new order'."""
    if not is_ref(fact):
        return fact
    step = steps[int(fact[len(REF) :].split(".")[0])]
    return f"the id of the new {label(step.tool.sem.entity)}"


def _dedupe(items) -> list:
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


# ------------------------------------------------------------------------------- the role


def task_seed(agent_id: str, seed: int, index: int) -> int:
    """A stable 31-bit seed for task ``index`` of an agent (-1: the agent's writer request)."""
    digest = hashlib.blake2b(f"task:{seed}:{agent_id}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def plan_kinds(agent_id: str, config: TaskConfig, seed: int) -> list[str]:
    rng = random.Random(f"kinds:{seed}:{agent_id}")
    kinds = [k for k in KINDS if config.kind_weights.get(k, 0) > 0]
    weights = [config.kind_weights[k] for k in kinds]
    return rng.choices(kinds, weights=weights, k=config.tasks_per_agent)


_SYSTEM = (
    "You write evaluation tasks for a tool-using assistant. Each task is a JSON object with: "
    "kind (one of " + ", ".join(KINDS) + "), request (the user's opening message), hidden_info "
    "(argument values the user gives only when asked), plan (the reference calls in order: "
    "[{name, arguments}]; an argument '$ref:<i>.<path>' is the value at the dot path in the JSON "
    "result of step i, e.g. '$ref:0.items.0.id'), initial_state ({collection: {resource_id: "
    "{field: value}}}), scripted_faults ([{tool, call_index, fault: 'transient'}]) and rubric "
    "{success_criteria, state_predicates [{path: 'collection' or 'collection.resource_id', op: "
    "exists|absent|equals|count_equals|contains, field, value}], required_facts, required_calls "
    "[{name, arguments}], forbidden_calls, order_constraints [[before, after]], checkpoints, "
    "expected_outcome (complete|ask_user|refuse_unsupported), difficulty (easy|medium|hard)}. "
    'Answer with one JSON object {"tasks": [...]}.'
)


def _offered(
    tool: ToolSpec, cache: dict[str, tuple[dict[str, Any], str]]
) -> tuple[dict[str, Any], str]:
    """A tool as the writer sees it, and its JSON text (cached: tools recur across agents)."""
    hit = cache.get(tool.tool_id)
    if hit is None:
        entry = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            **({"output_schema": tool.output_schema} if tool.output_schema else {}),
        }
        hit = cache[tool.tool_id] = (entry, json.dumps(entry, ensure_ascii=False))
    return hit


def task_request(
    agent: Agent,
    tools: list[ToolSpec],
    config: TaskConfig,
    seed: int,
    cache: dict[str, tuple[dict[str, Any], str]] | None = None,
) -> ChatRequest:
    """The ``task_writer`` request for one agent: prompt messages plus structured context."""
    kinds = plan_kinds(agent.agent_id, config, seed)
    writer_seed = task_seed(agent.agent_id, seed, -1)
    entries = [_offered(t, {} if cache is None else cache) for t in tools]
    offered = [entry for entry, _ in entries]
    distractors = [t.name for t in tools if t.tool_id in set(agent.distractor_tool_ids)]
    user = (
        f"Agent system prompt:\n{agent.system_prompt}\n\nTools (JSON):\n"
        f"[{', '.join(text for _, text in entries)}]\n\nDistractor tools (never needed): "
        f"{distractors}\nWrite {len(kinds)} tasks, of kinds in this order: {kinds}. "
        f"Seed about {config.resources_per_collection} resources per collection."
    )
    return ChatRequest(
        role=ROLE,
        response_format="json",
        seed=writer_seed,
        messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}],
        context={
            "agent_id": agent.agent_id,
            "tools": offered,
            "distractors": distractors,
            "kinds": kinds,
            "config": config.model_dump(),
            "seed": writer_seed,
        },
    )


def _check_plan(task: Task, names: set[str]) -> str | None:
    """Why a validated task still cannot be used, or None."""
    calls = [c.name for c in task.plan] + [c.name for c in task.rubric.required_calls]
    unknown = sorted(set(calls) - names)
    if unknown:
        return f"plan or rubric calls tools the agent does not have: {unknown}"
    for index, call in enumerate(task.plan):
        for value in call.arguments.values():
            if is_ref(value) and not value[len(REF) :].split(".")[0].isdigit():
                return f"malformed reference {value!r} in plan step {index}"
            if is_ref(value) and int(value[len(REF) :].split(".")[0]) >= index:
                return f"plan step {index} refers to a later step: {value!r}"
    if task.kind == "unsupported" and (
        task.plan or task.rubric.expected_outcome != "refuse_unsupported"
    ):
        return "an unsupported task needs an empty plan and expected_outcome 'refuse_unsupported'"
    if task.kind == "missing_argument":
        if not task.hidden_info:
            return "a missing_argument task needs hidden_info"
        leaked = [k for k, v in task.hidden_info.items() if str(v).lower() in task.request.lower()]
        if leaked:
            return f"the request gives away the withheld argument(s) {leaked}"
    return None


def parse_tasks(
    reply: ChatResponse, agent: Agent, names: set[str], seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Validate a ``task_writer`` reply; each bad task (or a bad reply) becomes a Rejection."""
    if reply.error:
        return [], [
            reject(ROLE, agent.agent_id, f"backend error: {reply.error}", reply.content or "")
        ]
    try:
        data = json.loads(reply.content or "")
    except json.JSONDecodeError as exc:
        return [], [reject(ROLE, agent.agent_id, f"reply is not JSON: {exc}", reply.content or "")]
    items = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return [], [reject(ROLE, agent.agent_id, "reply has no 'tasks' list", reply.content or "")]
    tasks, rejections = [], []
    for index, item in enumerate(items):
        task_id = f"{agent.agent_id}-t{index:02d}"
        if not isinstance(item, dict):
            rejections.append(reject(ROLE, task_id, "task is not a JSON object", item))
            continue
        fixed = {
            **item,
            "task_id": task_id,
            "agent_id": agent.agent_id,
            "seed": task_seed(agent.agent_id, seed, index),
        }
        try:
            task = Task.model_validate(fixed)
        except ValidationError as exc:
            rejections.append(reject(ROLE, task_id, _errors(exc), item))
            continue
        problem = _check_plan(task, names)
        if problem:
            rejections.append(reject(ROLE, task_id, problem, item))
        else:
            tasks.append(task)
    return tasks, rejections


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<task>'}: {e['msg']}" for e in exc.errors()[:5]
    )


def write_all_tasks(
    agents: list[Agent], tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Tasks for every agent (one request per agent, run concurrently for LLM backends)."""
    with gc_paused():
        return _write_all(agents, tools, backend, config, seed)


def _write_all(
    agents: list[Agent], tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    index = {t.tool_id: t for t in tools}
    bundles = [[index[i] for i in a.tool_ids if i in index] for a in agents]
    cache: dict[str, tuple[dict[str, Any], str]] = {}
    replies = complete_many(
        backend, [task_request(a, b, config, seed, cache) for a, b in zip(agents, bundles)]
    )
    tasks, rejections = [], []
    for agent, bundle, reply in zip(agents, bundles, replies):
        good, bad = parse_tasks(reply, agent, {t.name for t in bundle}, seed)
        tasks += good
        rejections += bad
    return tasks, rejections


def write_tasks(
    agent: Agent, tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Tasks for one agent; ``tools`` may hold more than the agent's bundle (extras are ignored)."""
    return write_all_tasks([agent], tools, backend, config, seed)


# ---------------------------------------------------------------- the offline task writer


@offline_role(ROLE)
def offline_task_writer(request: ChatRequest) -> dict[str, Any]:
    """Write the requested kinds over the bundle; infeasible kinds fall back to feasible ones."""
    ctx = request.context
    config = TaskConfig.model_validate(ctx["config"])
    rng = random.Random(ctx["seed"])
    world = World(ctx["tools"], set(ctx["distractors"]), config, rng)
    tasks, seen = [], set()
    for kind in ctx["kinds"]:  # one generator for the agent: its tasks are written in order
        draft = _draft(world, kind, rng, config, seen)
        if draft:
            tasks.append(finish(draft, world, rng))
    return {"tasks": tasks}


def _draft(
    world: World, kind: str, rng: random.Random, config: TaskConfig, seen: set[str]
) -> Draft | None:
    """A draft of ``kind`` (else of a fallback kind) that is not a repeat of an earlier one."""
    fallbacks = [kind] + [k for k in ("chained", "single_call", "unsupported") if k != kind]
    for candidate in fallbacks:
        for _ in range(config.attempts_per_kind):
            ctx = Ctx(world, world.base, rng, config)  # builders copy before changing it
            draft = _KINDS[candidate](ctx)
            if draft and _keeps_secret(draft, rng) and _new(draft, seen):
                return draft
    return None


def _new(draft: Draft, seen: set[str]) -> bool:
    key = draft.kind + repr([(s.tool.name, s.args) for s in draft.steps]) + (draft.request or "")
    if key in seen:
        return False
    seen.add(key)
    return True


def _keeps_secret(draft: Draft, rng: random.Random) -> bool:
    """A withheld value must not appear anywhere in the request."""
    if not draft.hidden:
        return True
    draft.request = compose_request(
        rng, [s.clause(rng, draft.hide.get(i, frozenset())) for i, s in enumerate(draft.steps)]
    )
    return not any(str(v).lower() in draft.request.lower() for v in draft.hidden.values())
