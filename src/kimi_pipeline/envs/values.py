"""Plausible fake values for the world model, from a field's name and JSON schema.

The world model answers reads of an open world, fills in what a result schema asks for and
reshapes payloads to conform to output schemas; each value comes from a ``Gen`` (the episode's
rng, clock, time zone and edge-case mode), so an episode replays bit for bit. A field's name
picks a plausible maker (``NAMED``: 'email', 'price', 'city' …) and the schema bounds it
(``generate`` builds a value for a schema, ``conform`` keeps what fits and regenerates the
rest, ``shape_output`` applies both to a tool result). Strings a ``pattern`` constrains are
sampled from the pattern (``envs.patterns``).

The offline task writer draws the argument values of the tasks it writes from its own generator
(``agents.offline.task_values``): other name pools, other draws, and a value that cannot meet
its schema makes a task infeasible rather than being reshaped. Each generator's draws are part of
its outputs (episodes, written tasks), so they stay two.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kimi_pipeline.envs.patterns import matches_pattern, pattern_value
from kimi_pipeline.text import singular, split_words

if TYPE_CHECKING:
    from kimi_pipeline.envs.base import CompiledTool

MAX_DEPTH = 8  # schema nesting the generator follows (guards cyclic $ref)


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
        return self.now.astimezone(zone_info(self.zone) or timezone.utc)

    def edge_now(self) -> bool:
        if self.edge and self.rng.random() < 0.5:
            self.edge_used = True
            return True
        return False


@lru_cache(maxsize=1024)
def zone_info(name: str) -> ZoneInfo | None:
    """The time zone called ``name``, or None when there is none."""
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
        return not isinstance(pattern, str) or matches_pattern(pattern, value)
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
    if isinstance(pattern, str) and not matches_pattern(pattern, value):
        value = pattern_value(pattern, g.rng, lo, hi) or value
    return value




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
