"""The world model: one stateful, seeded simulator for any tool spec in the repository.

K2's tool simulator "behaves as a world model": it keeps persistent state across calls and
injects controlled randomness. Here it is a deterministic program rather than an LLM, so tens of
thousands of episodes run in seconds and replay bit for bit:

- every call is validated against the tool's input schema (a ``Draft202012Validator`` compiled
  once per tool and cached across episodes) and refused the way a real API refuses it: HTTP 400
  with the validator's message and the JSON path of the offending value;
- what the tool does (create / read / list / update / delete / action, on which collection, by
  which id) comes from :mod:`kimi_pipeline.envs.semantics`, and is executed against per-episode
  state in the canonical form ``{collection: {resource_id: {field: value}}}``;
- results are JSON text and conform to the tool's output schema when it declares one (generated
  from the schema, filled from state);
- randomness comes from one ``random.Random(seed)`` per episode: transient failures, partial or
  empty lists and edge-case values at the configured rates, plus the task's scripted faults.

Collections the task did not seed are an open world: reading or listing them generates
plausible resources and keeps them, so later calls see the same ones. A collection present in
the state is closed: an id it lacks is a 404. Mutations always need an existing resource.

The step pipeline (unknown tool → bad JSON → schema → faults → execute) lives in
:class:`ToolEnvironment`, which the real-execution environments (SQLite, file system) share.
The module also holds the two helpers an episode needs around an environment:
:func:`check_predicate` (rubric state checks).
"""

from __future__ import annotations

import json
import math
import random
import re
import string
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from kimi_pipeline.envs.base import FaultConfig, StepResult, register_environment
from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.records import StatePredicate, ToolCall, ToolSpec
from kimi_pipeline.text import plural, singular, split_words

try:  # the regex parser, used to sample strings matching a schema 'pattern'
    from re import _parser as _sre
except ImportError:  # Python 3.10
    import sre_parse as _sre

EVENTS_COLLECTION = "_events"  # where actions are recorded (not "events": calendars own that name)
BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
MAX_DEPTH = 8  # schema nesting the generator follows (guards cyclic $ref)
_CACHE_LIMIT = 100_000
_SECONDS_PER_CALL = 7  # the episode clock advances this much per executed call

# ------------------------------------------------------------------------------------ results


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, default=str)


def ok_result(payload: Any, fault: str | None = None) -> StepResult:
    return StepResult(content=_dumps(payload), ok=True, fault=fault)


def error_result(
    code: int, kind: str, message: str, fault: str | None = None, **extra: Any
) -> StepResult:
    body = {"code": code, "type": kind, "message": message, **extra}
    return StepResult(content=_dumps({"error": body}), ok=False, error=kind, fault=fault)


# injectable failures: kind -> (HTTP status, retryable, message)
ERROR_FAULTS: dict[str, tuple[int, bool, str]] = {
    "transient": (503, True, "service temporarily unavailable, retry later"),
    "timeout": (504, True, "upstream request timed out"),
    "rate_limit": (429, True, "rate limit exceeded, slow down"),
    "server_error": (500, False, "internal server error"),
    "permission_denied": (403, False, "permission denied for this operation"),
    "not_found": (404, False, "resource not found"),
}
SHAPING_FAULTS = ("partial", "empty", "edge_case")  # faults that alter a result, not replace it


def fault_result(kind: str) -> StepResult:
    code, retryable, message = ERROR_FAULTS.get(kind, (500, False, f"injected fault {kind!r}"))
    extra = {"retry_after_s": 1} if kind == "rate_limit" else {}
    return error_result(code, kind, message, fault=kind, retryable=retryable, **extra)


def invalid_arguments(validator: Draft202012Validator, args: dict[str, Any]) -> StepResult:
    """400 with the most relevant schema violation and its JSON path ($.items[0].qty)."""
    err = best_match(validator.iter_errors(args))
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [p for p in err.validator_value if p not in err.instance]
        path += f".{missing[0]}" if missing else ""
    return error_result(400, "invalid_arguments", err.message[:500], path=path)


# ------------------------------------------------------------------------------ compiled tools


@dataclass
class CompiledTool:
    """A tool with everything a call needs precomputed: meaning, validators, defaults."""

    spec: ToolSpec
    semantics: ToolSemantics | None = None
    validator: Draft202012Validator | None = None
    output_validator: Draft202012Validator | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why the simulator cannot run this tool, when it cannot


_COMPILED: dict[str, CompiledTool] = {}


def compile_tool(spec: ToolSpec) -> CompiledTool:
    """Compile once per tool id; episodes are many and short, so this is cached."""
    cached = _COMPILED.get(spec.tool_id)
    if cached is not None and (cached.spec is spec or cached.spec == spec):
        return cached
    if len(_COMPILED) >= _CACHE_LIMIT:
        _COMPILED.clear()
    compiled = _COMPILED[spec.tool_id] = _compile(spec)
    return compiled


def _compile(spec: ToolSpec) -> CompiledTool:
    try:
        props = spec.parameters.get("properties") or {}
        output = (
            spec.output_schema
            if isinstance(spec.output_schema, dict) and spec.output_schema
            else None
        )
        return CompiledTool(
            spec=spec,
            semantics=infer_semantics(spec.name, spec.description, spec.parameters),
            validator=Draft202012Validator(
                spec.parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
            ),
            output_validator=Draft202012Validator(output) if output else None,
            defaults={
                k: s["default"] for k, s in props.items() if isinstance(s, dict) and "default" in s
            },
        )
    except Exception as exc:  # any spec compiles; a broken one answers every call with an error
        return CompiledTool(
            spec=spec, problem=f"cannot simulate tool: {type(exc).__name__}: {exc}"[:500]
        )


def copy_json(value: Any) -> Any:
    """Deep copy of plain JSON data (much faster than copy.deepcopy for small states)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [copy_json(v) for v in value]
    return value


# --------------------------------------------------------------------------- the step pipeline


class ToolEnvironment(ABC):
    """Gym-like base: reset(tools, state, seed, faults) then step(call) → StepResult.

    Subclasses provide ``_load_state``, ``_execute`` and ``snapshot``; the pipeline here checks
    the call, injects faults and turns any internal failure into a ``simulator_error`` result.
    """

    kind = "base"

    def __init__(self, faults: FaultConfig | None = None):
        self.faults = faults or FaultConfig()
        self.seed = 0
        self.rng = random.Random(0)
        self.tools: dict[str, CompiledTool] = {}
        self._scripted: dict[tuple[str, int], str] = {}
        self._calls: dict[str, int] = {}

    def reset(
        self,
        tools: list[ToolSpec],
        initial_state: dict[str, Any],
        seed: int,
        scripted_faults: list[dict[str, Any]] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.tools = {t.name: compile_tool(t) for t in self._bundle(tools)}
        self._scripted = _index_faults(scripted_faults or [])
        self._calls = {}
        self._load_state(initial_state or {})

    def step(self, call: ToolCall) -> StepResult:
        try:
            return self._step(call)
        except Exception as exc:  # the simulator's own failure is a result, never a crash
            return error_result(500, "simulator_error", f"{type(exc).__name__}: {exc}"[:500])

    def close(self) -> None:  # noqa: B027 - nothing to release unless a subclass holds resources
        """Release what the episode holds (a database, a temp dir)."""

    # -- pipeline

    def _step(self, call: ToolCall) -> StepResult:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools))[:300]
            return error_result(
                404, "unknown_tool", f"no tool named {call.name!r}; available: {known}"
            )
        if call.raw_arguments is not None:
            return error_result(400, "invalid_json", _json_problem(call.raw_arguments))
        if tool.problem:
            return error_result(500, "simulator_error", tool.problem)
        if not tool.validator.is_valid(call.arguments):
            return invalid_arguments(tool.validator, call.arguments)
        index = self._calls.get(call.name, 0)  # counts well-formed calls of this tool
        self._calls[call.name] = index + 1
        fault = self._scripted.get((call.name, index)) or self._draw_fault(tool)
        if fault and fault not in SHAPING_FAULTS:
            return fault_result(fault)
        return self._execute(tool, call.arguments, fault)

    def _draw_fault(self, tool: CompiledTool) -> str | None:
        rate = self.faults.transient_error_rate
        return "transient" if rate and self.rng.random() < rate else None

    def _bundle(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        return list(tools)

    @abstractmethod
    def _load_state(self, initial_state: dict[str, Any]) -> None:
        """Build the episode's world from the task's initial state."""

    @abstractmethod
    def _execute(self, tool: CompiledTool, args: dict[str, Any], fault: str | None) -> StepResult:
        """Run one validated call (``fault``: a shaping fault to apply, if any)."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The state in canonical form, as a JSON-serialisable copy."""


def _index_faults(scripted: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """{(tool name, call index): fault}; malformed entries are ignored."""
    index = {}
    for entry in scripted:
        try:
            index[(str(entry["tool"]), int(entry.get("call_index", 0)))] = str(
                entry.get("fault", "transient")
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return index


def _json_problem(raw: str) -> str:
    try:
        json.loads(raw)
        return "arguments must be a JSON object"
    except (json.JSONDecodeError, TypeError) as exc:
        return f"arguments are not valid JSON: {exc}"


# ---------------------------------------------------------------------------- value generation


@dataclass
class Gen:
    """Where generated values come from: an rng, the episode clock, a zone, the edge-case mode."""

    rng: random.Random
    now: datetime
    zone: str = "UTC"
    entity: str = "item"
    edge: bool = False
    edge_used: bool = False  # set when an edge-case value was actually produced
    root: dict[str, Any] | None = None  # schema that local $refs point into

    def local_now(self) -> datetime:
        return self.now.astimezone(_zone(self.zone) or timezone.utc)

    def edge_now(self) -> bool:
        if self.edge and self.rng.random() < 0.5:
            self.edge_used = True
            return True
        return False


@lru_cache(maxsize=1024)
def _zone(name: str):
    try:
        return ZoneInfo(name)
    except Exception:
        return None


FIRST = [
    "Ada",
    "Ben",
    "Chloé",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Grace",
    "Hiro",
    "Inés",
    "Jonas",
    "Kavya",
    "Liam",
    "Mei",
    "Nadia",
    "Omar",
    "Priya",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Tanaka",
    "Moreau",
    "Silva",
    "Kowalski",
    "Haddad",
    "Nguyen",
    "Schmidt",
    "Patel",
    "Rossi",
    "Garcia",
]
CITIES = [
    "Paris",
    "Lagos",
    "Tokyo",
    "Lima",
    "Oslo",
    "Austin",
    "Pune",
    "Cairo",
    "Melbourne",
    "Quito",
]
WORDS = [
    "alpha",
    "blue",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "harbor",
    "nova",
    "orbit",
    "summit",
    "willow",
    "quartz",
]
SUMMARIES = ["Clear skies", "Light rain", "Partly cloudy", "Scattered showers", "Overcast"]
EDGE_STRINGS = ["Zoë Ñúñez-Łukasiewicz 東京 🚀", "O'Brien & Sons <Ltd>", "  spaced  out  ", "ééé"]


def make_id(rng: random.Random, entity: str) -> str:
    """Entity-prefixed id from the rng, e.g. 'ORD-3F9A2'."""
    prefix = re.sub(r"[^A-Za-z0-9]", "", entity).upper()[:3] or "ID"
    return f"{prefix}-{rng.getrandbits(20):05X}"


def _name(g: Gen, _: list[str]) -> str:
    if g.edge_now():
        return g.rng.choice(EDGE_STRINGS)
    return f"{g.rng.choice(FIRST)} {g.rng.choice(LAST)}"


def _money(g: Gen, _: list[str]) -> float:
    return 0.0 if g.edge_now() else round(g.rng.uniform(1, 1000), 2)


def _small_int(g: Gen, _: list[str]) -> int:
    return 0 if g.edge_now() else g.rng.randint(1, 20)


def _id_value(g: Gen, words: list[str]) -> str:
    return make_id(g.rng, words[-2] if len(words) > 1 else g.entity)


def _offset(g: Gen, _: list[str]) -> str:
    offset = g.local_now().strftime("%z")
    return f"{offset[:3]}:{offset[3:]}"


# last word of a field name -> value generator (dict lookups, no regex misfires)
NAMED: dict[str, Callable[[Gen, list[str]], Any]] = {
    **dict.fromkeys(["id", "uuid", "key", "ref", "reference"], _id_value),
    "email": lambda g, w: f"{g.rng.choice(FIRST).lower()}.{g.rng.choice(LAST).lower()}@example.com",
    **dict.fromkeys(["timezone", "tz", "zone"], lambda g, w: g.zone),
    **dict.fromkeys(
        ["at", "datetime", "timestamp", "time", "start", "end"],
        lambda g, w: g.local_now().isoformat(timespec="seconds"),
    ),
    "date": lambda g, w: g.local_now().date().isoformat(),
    "offset": _offset,
    **dict.fromkeys(
        ["url", "uri", "link", "website", "href"],
        lambda g, w: f"https://example.com/{g.rng.choice(WORDS)}/{g.rng.randint(1, 999)}",
    ),
    "phone": lambda g, w: f"+1-555-01{g.rng.randint(0, 99):02d}",
    **dict.fromkeys(["name", "username", "author", "owner", "customer", "user", "assignee"], _name),
    "title": lambda g, w: f"{g.rng.choice(WORDS).title()} {g.rng.choice(WORDS)} report",
    **dict.fromkeys(
        ["city", "location", "place", "destination", "origin"], lambda g, w: g.rng.choice(CITIES)
    ),
    "address": lambda g, w: (
        f"{g.rng.randint(1, 200)} {g.rng.choice(WORDS).title()} St, {g.rng.choice(CITIES)}"
    ),
    "country": lambda g, w: g.rng.choice(["FR", "NG", "JP", "PE", "NO", "US", "IN", "EG"]),
    "currency": lambda g, w: g.rng.choice(["USD", "EUR", "GBP", "JPY"]),
    **dict.fromkeys(["base", "target"], lambda g, w: g.rng.choice(["USD", "EUR", "GBP", "JPY"])),
    **dict.fromkeys(
        ["symbol", "ticker"], lambda g, w: g.rng.choice(["AAPL", "MSFT", "NVDA", "SAP"])
    ),
    **dict.fromkeys(["lang", "language", "locale"], lambda g, w: g.rng.choice(["en", "fr", "ja"])),
    "status": lambda g, w: "active",
    **dict.fromkeys(
        ["price", "amount", "total", "balance", "cost", "fee", "salary", "revenue", "value"], _money
    ),
    **dict.fromkeys(["rate", "ratio"], lambda g, w: round(g.rng.uniform(0.5, 1.5), 4)),
    **dict.fromkeys(
        ["temperature", "temp"], lambda g, w: 0 if g.edge_now() else round(g.rng.uniform(-5, 35), 1)
    ),
    **dict.fromkeys(
        ["humidity", "percent", "percentage", "probability", "score"],
        lambda g, w: g.rng.randint(0, 100),
    ),
    **dict.fromkeys(["speed"], lambda g, w: round(g.rng.uniform(0, 20), 1)),
    **dict.fromkeys(["latitude", "lat"], lambda g, w: round(g.rng.uniform(-60, 60), 4)),
    **dict.fromkeys(["longitude", "lon", "lng"], lambda g, w: round(g.rng.uniform(-180, 180), 4)),
    **dict.fromkeys(
        ["count", "quantity", "qty", "number", "num", "days", "size", "age", "stock"], _small_int
    ),
    **dict.fromkeys(
        ["description", "text", "message", "content", "body", "note", "comment", "reason"],
        lambda g, w: f"{g.rng.choice(WORDS).title()} {g.rng.choice(WORDS)} {g.rng.choice(WORDS)}.",
    ),
    "summary": lambda g, w: g.rng.choice(SUMMARIES),
}
_BOOL_PREFIXES = {"is", "has", "can", "should", "enabled", "active", "verified"}


def named_value(g: Gen, name: str) -> Any:
    """A plausible value for a field called ``name`` (None when the name says nothing)."""
    words = split_words(name) if name else []
    if not words:
        return None
    if words[0] in _BOOL_PREFIXES:
        return g.rng.random() < 0.5
    maker = NAMED.get(words[-1]) or NAMED.get(singular(words[-1]))
    return maker(g, words) if maker else None


# fields a read returns when the tool declares no output schema, by a word of its name
TYPICAL_FIELDS: dict[str, tuple[str, ...]] = {
    "weather": ("temperature", "humidity", "wind_speed", "summary"),
    "forecast": ("date", "temperature", "summary"),
    "time": ("datetime", "timezone", "utc_offset", "is_dst"),
    **dict.fromkeys(["quote", "stock", "price"], ("symbol", "price", "currency", "change_percent")),
    **dict.fromkeys(["rate", "exchange", "convert"], ("base", "target", "rate", "timestamp")),
    "balance": ("balance", "currency", "updated_at"),
    **dict.fromkeys(["translate", "translation"], ("translated_text", "source_language")),
    **dict.fromkeys(
        ["geocode", "location", "address", "coordinate"],
        ("latitude", "longitude", "formatted_address"),
    ),
}
DEFAULT_FIELDS = ("name", "status", "updated_at")


def typical_fields(tool_name: str) -> tuple[str, ...]:
    for word in split_words(tool_name):
        if word in TYPICAL_FIELDS:
            return TYPICAL_FIELDS[word]
    return DEFAULT_FIELDS


# ------------------------------------------------------------------ schema-driven generation


def _resolve(schema: Any, root: Any, depth: int) -> Any:
    """Follow local $refs and merge allOf (shallowly) so the generator sees one schema."""
    if depth > MAX_DEPTH:
        return schema
    hops = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and hops < MAX_DEPTH:
        target = _pointer(root, schema["$ref"])
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**target, **rest} if isinstance(target, dict) else rest
        hops += 1
    if isinstance(schema, dict) and isinstance(schema.get("allOf"), list):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part, root, depth + 1)
            if isinstance(part, dict):
                merged.setdefault("properties", {}).update(part.get("properties") or {})
                merged["required"] = list(merged.get("required") or []) + list(
                    part.get("required") or []
                )
                merged.update(
                    {k: v for k, v in part.items() if k not in ("properties", "required")}
                )
        schema = merged
    return schema


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node = root
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node


_KEYWORD_TYPES = (
    ("properties", "object"),
    ("additionalProperties", "object"),
    ("required", "object"),
    ("items", "array"),
    ("minimum", "number"),
    ("maximum", "number"),
    ("minLength", "string"),
    ("pattern", "string"),
    ("format", "string"),
)


def _schema_type(schema: dict[str, Any], value: Any = None, has_value: bool = False) -> str:
    declared = schema.get("type")
    if isinstance(declared, list):
        types = [t for t in declared if t != "null"] or ["null"]
        if has_value:
            return next((t for t in declared if _type_ok(t, value)), types[0])
        return str(types[0])
    if isinstance(declared, str):
        return declared
    return next((t for key, t in _KEYWORD_TYPES if key in schema), "any")


TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer()
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "any": lambda v: True,
}


def _type_ok(kind: str, value: Any) -> bool:
    check = TYPE_CHECKS.get(kind)
    return bool(check and check(value))


def _fits(kind: str, value: Any, schema: dict[str, Any]) -> bool:
    if not _type_ok(kind, value):
        return False
    if kind in ("integer", "number"):
        lo, hi = _bounds(schema, kind == "integer")
        return lo <= value <= hi
    if kind == "string":
        if len(value) < int(schema.get("minLength", 0)) or len(value) > int(
            schema.get("maxLength", 1 << 30)
        ):
            return False
        pattern = schema.get("pattern")
        return not isinstance(pattern, str) or _matches_pattern(pattern, value)
    return True


def _matches_pattern(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[float, float]:
    step = 1 if integer else 1e-6
    lo, hi = schema.get("minimum", -math.inf), schema.get("maximum", math.inf)
    if isinstance(schema.get("exclusiveMinimum"), (int, float)):
        lo = max(lo, schema["exclusiveMinimum"] + step)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)):
        hi = min(hi, schema["exclusiveMaximum"] - step)
    if integer:
        lo, hi = (
            (math.ceil(lo) if lo > -math.inf else lo),
            (math.floor(hi) if hi < math.inf else hi),
        )
    return lo, hi


def generate(schema: Any, g: Gen, name: str = "", depth: int = 0) -> Any:
    """A value valid for ``schema`` (as far as the generator knows), plausible for ``name``."""
    schema = _resolve(schema, g.root, depth)
    if not isinstance(schema, dict):
        return named_value(g, name) if schema is not False else None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return g.rng.choice(schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        solid = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        return generate((solid or options)[0], g, name, depth + 1)
    kind = _schema_type(schema)
    return GENERATORS.get(kind, _gen_string)(schema, g, name, depth)


def _gen_object(schema: dict[str, Any], g: Gen, name: str, depth: int) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [r for r in schema.get("required") or () if isinstance(r, str)]
    shallow = depth >= MAX_DEPTH - 2  # near the depth limit only required fields are built
    out = {
        k: generate(s, g, k, depth + 1)
        for k, s in props.items()
        if k in required or not (shallow or g.edge_now())
    }
    extra = schema.get("additionalProperties", {})
    for key in required:
        if key not in out:
            out[key] = generate(extra if isinstance(extra, dict) else {}, g, key, depth + 1)
    return out


def _gen_array(schema: dict[str, Any], g: Gen, name: str, depth: int) -> list[Any]:
    lo = int(schema.get("minItems", 0))
    hi = int(schema.get("maxItems", max(lo, 3)))
    count = lo if g.edge_now() or depth >= MAX_DEPTH - 2 else min(max(g.rng.randint(1, 3), lo), hi)
    prefix = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else []
    items = schema.get("items", {})
    item_name = singular(name) if name else ""
    return [
        generate(prefix[i] if i < len(prefix) else items, g, item_name, depth + 1)
        for i in range(count)
    ]


def _gen_string(schema: dict[str, Any], g: Gen, name: str, depth: int) -> str:
    lo, hi = int(schema.get("minLength", 0)), int(schema.get("maxLength", 1 << 30))
    fmt = FORMATS.get(schema.get("format"))
    value = fmt(g) if fmt else named_value(g, name)
    if not isinstance(value, str):
        value = (
            _edge_string(g, hi)
            if g.edge_now()
            else f"{g.rng.choice(WORDS)}-{g.rng.randint(1, 999)}"
        )
    if len(value) < lo:
        value += "x" * (lo - len(value))
    value = value[:hi]
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and not _matches_pattern(pattern, value):
        value = _pattern_value(pattern, g, lo, hi) or value
    return value


def _pattern_value(pattern: str, g: Gen, lo: int, hi: int) -> str | None:
    """A string matching ``pattern`` within the length bounds, sampled from its parse tree."""
    for _ in range(4):
        try:
            value = _emit(_sre.parse(pattern), g.rng)
        except Exception:  # an exotic or invalid pattern: the caller keeps its value
            return None
        if lo <= len(value) <= hi and _matches_pattern(pattern, value):
            return value
    return None


_ALNUM = string.ascii_letters + string.digits
_CATEGORIES = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": _ALNUM + "_",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_DIGIT": string.ascii_letters,
    "CATEGORY_NOT_WORD": "-.",
    "CATEGORY_NOT_SPACE": _ALNUM,
}


def _emit(tokens: Any, rng: random.Random) -> str:
    return "".join(_TOKENS.get(str(op), lambda av, r: "")(av, rng) for op, av in tokens)


def _repeat(av: Any, rng: random.Random) -> str:
    low, high, body = av
    return "".join(_emit(body, rng) for _ in range(rng.randint(low, min(high, low + 3))))


def _char_in(items: list, ch: str) -> bool:
    code = ord(ch)
    for op, av in items:
        kind = str(op)
        if (
            kind == "LITERAL"
            and av == code
            or kind == "RANGE"
            and av[0] <= code <= av[1]
            or kind == "CATEGORY"
            and ch in _CATEGORIES.get(str(av), "")
        ):
            return True
    return False


def _pick_in(items: list, rng: random.Random) -> str:
    if items and str(items[0][0]) == "NEGATE":
        return rng.choice([c for c in _ALNUM + "-_. " if not _char_in(items[1:], c)] or ["~"])
    op, av = rng.choice(items)
    kind = str(op)
    if kind == "RANGE":
        return chr(rng.randint(av[0], av[1]))
    if kind == "CATEGORY":
        return rng.choice(_CATEGORIES.get(str(av), "x"))
    return chr(av) if kind == "LITERAL" else "x"


# regex parse-tree node -> emitter (anchors and unknown nodes emit nothing)
_TOKENS: dict[str, Callable[[Any, random.Random], str]] = {
    "LITERAL": lambda av, rng: chr(av),
    "NOT_LITERAL": lambda av, rng: "x" if av != ord("x") else "y",
    "ANY": lambda av, rng: rng.choice(_ALNUM),
    "IN": _pick_in,
    "MAX_REPEAT": _repeat,
    "MIN_REPEAT": _repeat,
    "POSSESSIVE_REPEAT": _repeat,
    "SUBPATTERN": lambda av, rng: _emit(av[-1], rng),
    "ATOMIC_GROUP": lambda av, rng: _emit(av, rng),
    "BRANCH": lambda av, rng: _emit(rng.choice(av[1]), rng),
}


def _edge_string(g: Gen, max_length: int) -> str:
    if g.rng.random() < 0.5:
        return g.rng.choice(EDGE_STRINGS)
    return ("Ω" + "long-name-" * 60)[: min(max_length, 600)]


def _gen_number(
    schema: dict[str, Any], g: Gen, name: str, depth: int, integer: bool = False
) -> float:
    lo, hi = _bounds(schema, integer)
    named = named_value(g, name)
    kind = "integer" if integer else "number"
    if named is not None and _fits(kind, named, schema):
        value = named
    elif g.edge_now():
        value = (
            next(v for v in (0, lo, hi, 1) if lo <= v <= hi and math.isfinite(v))
            if lo <= hi
            else lo
        )
    else:
        low = lo if lo > -math.inf else min(0, hi - 100)
        high = hi if hi < math.inf else max(low + 100, 100)
        value = (
            g.rng.randint(int(low), int(high)) if integer else round(g.rng.uniform(low, high), 2)
        )
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and math.isfinite(value):
        value = math.ceil(value / step) * step
    return int(value) if integer and math.isfinite(value) else value


GENERATORS: dict[str, Callable[[dict[str, Any], Gen, str, int], Any]] = {
    "object": _gen_object,
    "array": _gen_array,
    "string": _gen_string,
    "number": _gen_number,
    "integer": lambda s, g, n, d: _gen_number(s, g, n, d, integer=True),
    "boolean": lambda s, g, n, d: g.rng.random() < 0.5,
    "null": lambda s, g, n, d: None,
    "any": lambda s, g, n, d: (
        v if (v := named_value(g, n)) is not None else _gen_string(s, g, n, d)
    ),
}

FORMATS: dict[str, Callable[[Gen], str]] = {
    "date-time": lambda g: g.local_now().isoformat(timespec="seconds"),
    "date": lambda g: g.local_now().date().isoformat(),
    "time": lambda g: g.local_now().time().isoformat(timespec="seconds"),
    "email": lambda g: f"{g.rng.choice(FIRST).lower()}@example.com",
    "idn-email": lambda g: f"{g.rng.choice(FIRST).lower()}@example.com",
    "uri": lambda g: f"https://example.com/{g.rng.choice(WORDS)}",
    "url": lambda g: f"https://example.com/{g.rng.choice(WORDS)}",
    "uuid": lambda g: str(uuid.UUID(int=g.rng.getrandbits(128), version=4)),
    "ipv4": lambda g: ".".join(str(g.rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda g: "2001:db8::" + format(g.rng.getrandbits(16), "x"),
    "hostname": lambda g: f"{g.rng.choice(WORDS)}.example.com",
}


def conform(schema: Any, value: Any, g: Gen, name: str = "", depth: int = 0) -> Any:
    """``value`` reshaped to fit ``schema``: kept where it fits, generated where it does not."""
    schema = _resolve(schema, g.root, depth)
    if depth > MAX_DEPTH or not isinstance(schema, dict):
        return value
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return value if value in schema["enum"] else g.rng.choice(schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list) and options:
        for option in options:
            resolved = _resolve(option, g.root, depth)
            if isinstance(resolved, dict) and _type_ok(_schema_type(resolved, value, True), value):
                return conform(resolved, value, g, name, depth + 1)
        return generate(schema, g, name, depth)
    kind = _schema_type(schema, value, True)
    if kind == "object" and isinstance(value, dict):
        return _conform_object(schema, value, g, depth)
    if kind == "array" and isinstance(value, list):
        return _conform_array(schema, value, g, name, depth)
    return value if _fits(kind, value, schema) else generate(schema, g, name, depth)


def _conform_object(
    schema: dict[str, Any], value: dict[str, Any], g: Gen, depth: int
) -> dict[str, Any]:
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = {r for r in schema.get("required") or () if isinstance(r, str)}
    out = {}
    for key, sub in props.items():
        if key in value:
            out[key] = conform(sub, value[key], g, key, depth + 1)
        elif key in required or not g.edge_now():
            out[key] = generate(sub, g, key, depth + 1)
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key not in props and extra is not False:
            out[key] = conform(extra, item, g, key, depth + 1) if isinstance(extra, dict) else item
    for key in required - out.keys():
        out[key] = generate(extra if isinstance(extra, dict) else {}, g, key, depth + 1)
    return out


def _conform_array(
    schema: dict[str, Any], value: list[Any], g: Gen, name: str, depth: int
) -> list[Any]:
    items = schema.get("items", {})
    out = [
        conform(items, v, g, singular(name), depth + 1)
        for v in value[: int(schema.get("maxItems", 1 << 30))]
    ]
    while len(out) < int(schema.get("minItems", 0)):
        out.append(generate(items, g, singular(name), depth + 1))
    return out


def shape_output(tool: CompiledTool, payload: Any, g: Gen) -> Any:
    """The payload made to conform to the tool's output schema (fallback: pure generation)."""
    if tool.output_validator is None:
        return payload
    schema = tool.spec.output_schema
    g.root = schema
    shaped = conform(schema, payload, g)
    if tool.output_validator.is_valid(shaped):
        return shaped
    generated = generate(schema, g)
    return generated if tool.output_validator.is_valid(generated) else shaped


# ------------------------------------------------------------------------------ the world model

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
        if isinstance(value, str) and _zone(value) is not None:
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
        usable = _field_filters(call.args, sem.filter_params, resources)
        if usable:
            for key, record in resources.items():
                if isinstance(record, dict) and _matches(record, call.args, usable):
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
        if isinstance(r, dict) and _matches(r, args, sem.filter_params)
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
    record.update(call.fields())
    if sem.status_value:
        record["status"] = sem.status_value
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
    usable = _field_filters(call.args, sem.filter_params + sem.field_params, resources or {})
    if not usable:
        return error_result(400, "missing_target", f"say which {sem.entity} to delete")
    doomed = [
        k for k, r in resources.items() if isinstance(r, dict) and _matches(r, call.args, usable)
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


# -------------------------------------------------------------------------------- filtering


def _field_filters(
    args: dict[str, Any], params: tuple[str, ...], resources: dict[str, Any]
) -> tuple[str, ...]:
    """Arguments that name a field of the stored resources (those that can filter them)."""
    fields = {k for r in resources.values() if isinstance(r, dict) for k in r}
    return tuple(p for p in params if p in args and p in fields)


def _matches(record: dict[str, Any], args: dict[str, Any], params: tuple[str, ...]) -> bool:
    """Equality (case-insensitive substring for strings, membership for list fields) on every
    argument that names a field of the record; an argument that is no field does not filter."""
    return all(_field_match(record[k], args[k]) for k in params if k in args and k in record)


def _field_match(value: Any, wanted: Any) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        return wanted.lower() in value.lower()
    if isinstance(value, list) and not isinstance(wanted, list):
        return wanted in value
    return value == wanted


# ------------------------------------------------------------------------------ episode helpers

_MISSING = object()


def check_predicate(state: dict[str, Any], predicate: StatePredicate) -> bool:
    """Evaluate a rubric predicate on a snapshot, by the contract in ``envs.state``: ``path``
    is '<collection>' or '<collection>.<resource_id>' (split at the first dot, so file paths
    work as ids); ``field`` selects a field of the resource. exists / absent: the path (and
    field) resolves or not; equals: ``==``; count_equals: number of resources (a missing
    collection counts 0); contains: on a collection, some resource has all of ``value``'s
    fields; on a field, substring of a string or element of a list."""
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
