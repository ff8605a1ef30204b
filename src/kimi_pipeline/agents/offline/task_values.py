"""Argument values for the tasks the offline task writer drafts, from a name and a JSON schema.

A drafted task needs values a user would plausibly say ('customer_email' → an email address,
'city' → a city, 'quantity' → a small count) that are valid under the tool's input schema, so
the plan's calls pass the world model's validation. ``gen_value`` answers one, or ``FAIL`` when
the schema rules every guess out (a pattern none of the candidates match, an empty range): the
writer then drafts another task rather than write an invalid one.

This is not the world model's generator (``envs.values``): the pools and draws differ, and the
world model reshapes a value to fit where the writer gives up. Each generator's draws are part
of its outputs (written tasks, episodes), so merging them would change both.
"""

from __future__ import annotations

import math
import random
import re
from functools import lru_cache
from typing import Any, Callable

from kimi_pipeline.text import singular, split_words

FAIL = object()  # a schema no value could be generated for
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
PAGINATION_VALUES = {  # what a list call's paging arguments get (and requests never mention)
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
            return FAIL
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        value += "x" * (low - len(value))
    if isinstance(high, int) and len(value) > high:
        value = value[:high]
    return value if len(value) >= (low if isinstance(low, int) else 0) else FAIL


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
            return FAIL
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
        if value is FAIL:
            return FAIL
        if not (schema.get("uniqueItems") and value in out):
            out.append(value)
    return out if len(out) == count else FAIL


def _object(name: str, schema: dict[str, Any], rng: random.Random, depth: int) -> Any:
    if depth > 3:
        return {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [p for p in schema.get("required") or () if p in props]
    out = {}
    for prop in required + [p for p in props if p not in required][:2]:
        value = gen_value(prop, props[prop], rng, depth + 1)
        if value is FAIL:
            if prop in required:
                return FAIL
            continue
        out[prop] = value
    return out


def object_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema_type(schema) == "object"


def scalar_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and schema_type(schema) in ("string", "integer", "number")


def schema_type(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    return kind


_PLAIN_STRING = {"type", "description", "title", "default", "examples"}


def gen_value(name: str, schema: Any, rng: random.Random, depth: int = 0) -> Any:
    """A plausible value for parameter ``name`` valid under ``schema``, or ``FAIL``."""
    if not isinstance(schema, dict):
        return FAIL
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
                    if value is not FAIL:
                        return value
            return FAIL
    if isinstance(schema.get("allOf"), list):
        merged = {k: v for sub in schema["allOf"] if isinstance(sub, dict) for k, v in sub.items()}
        return gen_value(
            name, {**merged, **{k: v for k, v in schema.items() if k != "allOf"}}, rng, depth
        )
    kind = schema_type(schema)
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
    return None if kind == "null" else FAIL


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)
