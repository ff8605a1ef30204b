"""The tool taxonomy: key categories → application domains → entities → typed attributes.

K2 built its synthetic tool repository by *hierarchical domain generation*: key categories
(financial trading, software applications, robot control, …) are expanded into specific
application domains, and tools are drafted per domain. ``tools.taxonomy_data`` holds that
hierarchy as data — one line per domain in a small DSL — and this module parses it once,
lazily, into records, so the evolver (and the classifier that places real tools into domains)
works from typed, named resources instead of free text. Each domain lists the entities its
tools act on and each entity its typed attributes; the one-sentence descriptions double as the
text that real tools are embedded against.

DSL, one domain per line under a ``# slug | Title | description`` category header::

    slug | one-sentence description | entity(attr, attr, …) entity(…) …

An attribute is ``name`` (type inferred from the name: ``*_at`` → date-time, ``*_email`` →
email, ``*_pct`` → 0–100, ``*_kg`` → number ≥ 0 …), ``name=a|b|c`` (string enum),
``name:T[lo..hi]`` (explicit type: s i n b d dt t email uri uuid, optional bounds),
``name[]`` (array; item type inferred from the singular or given by ``:T``),
``name{…}`` / ``name[]{…}`` (nested object / array of objects).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kimi_pipeline.text import singular
from kimi_pipeline.tools.taxonomy_data import TAXONOMY_DSL

# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Attribute:
    """One typed field of an entity; ``schema()`` renders it as JSON Schema."""

    name: str
    json_type: str  # "string" | "integer" | "number" | "boolean" | "array" | "object"
    enum: tuple[str, ...] | None = None
    format: str | None = None  # date-time, date, email, uri, uuid, ipv4
    minimum: float | None = None
    maximum: float | None = None
    items: Attribute | None = None  # element type of an array
    description: str = ""
    pattern: str | None = None
    properties: tuple[Attribute, ...] = ()  # fields of a nested object

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.json_type}
        if self.description:
            out["description"] = self.description
        for key in ("format", "pattern"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.enum:
            out["enum"] = list(self.enum)
        for key in ("minimum", "maximum"):
            bound = getattr(self, key)
            if bound is not None:
                out[key] = int(bound) if self.json_type == "integer" else bound
        if self.items is not None:
            out["items"] = self.items.schema()
        if self.properties:
            out["properties"] = {p.name: p.schema() for p in self.properties}
            out["required"] = [p.name for p in self.properties]
            out["additionalProperties"] = False
        return out


@dataclass(frozen=True)
class Entity:
    """A resource the tools of a domain act on (an order, a position, a watchlist …)."""

    name: str
    attributes: tuple[Attribute, ...]


@dataclass(frozen=True)
class ToolDomain:
    """A specific application domain inside a category."""

    slug: str
    title: str
    description: str
    category: str  # slug of the parent category
    entities: tuple[Entity, ...]


@dataclass(frozen=True)
class Category:
    """A key category of the hierarchy."""

    slug: str
    title: str
    description: str
    domains: tuple[ToolDomain, ...]


# ------------------------------------------------------------------------------ type inference

_PHONE = r"^\+[1-9][0-9]{6,14}$"
_SYMBOL = r"^[A-Z0-9.]{1,12}$"
_SKU = r"^[A-Z0-9-]{3,32}$"
_CODE = r"^[A-Z0-9_-]{2,20}$"
_IBAN = r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$"
_VIN = r"^[A-HJ-NPR-Z0-9]{17}$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_MONEY = {"type": "number", "minimum": 0}

# Field name → schema fragment; exact names first, then prefixes, then suffixes (first hit wins).
_EXACT: dict[str, dict[str, Any]] = {
    "email": {"format": "email"},
    "phone": {"pattern": _PHONE},
    "url": {"format": "uri"},
    "currency": {"pattern": r"^[A-Z]{3}$"},
    "country": {"pattern": r"^[A-Z]{2}$"},
    "language": {"pattern": r"^[a-z]{2}(-[A-Z]{2})?$"},
    "locale": {"pattern": r"^[a-z]{2}(-[A-Z]{2})?$"},
    "quantity": {"type": "integer", "minimum": 1},
    "latitude": {"type": "number", "minimum": -90, "maximum": 90},
    "longitude": {"type": "number", "minimum": -180, "maximum": 180},
    "rating": {"type": "number", "minimum": 0, "maximum": 5},
    "score": {"type": "number", "minimum": 0, "maximum": 100},
    "symbol": {"pattern": _SYMBOL},
    "ticker": {"pattern": _SYMBOL},
    "sku": {"pattern": _SKU},
    "iban": {"pattern": _IBAN},
    "isbn": {"pattern": r"^(97[89])?[0-9]{9}[0-9X]$"},
    "vin": {"pattern": _VIN},
    "priority": {"enum": ("low", "normal", "high", "urgent")},
    "color": {"pattern": r"^#[0-9a-fA-F]{6}$"},
    "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
    "date": {"format": "date"},
    "month": {"pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"},
    "ip_address": {"format": "ipv4"},
    "address": {"type": "object"},
    "slug": {"pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
    "sha256": {"pattern": r"^[0-9a-f]{64}$"},
    "currency_pair": {"pattern": r"^[A-Z]{3}/[A-Z]{3}$"},
    "trading_pair": {"pattern": r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$"},
    "capacity": {"type": "integer", "minimum": 1},
    "subtotal": _MONEY,
    **{w: _MONEY for w in ("price", "amount", "cost", "fee", "balance", "budget", "deposit",
                           "premium", "deductible", "salary")},
}
_PREFIX: dict[str, dict[str, Any]] = {"is_": {"type": "boolean"}, "has_": {"type": "boolean"}}
_SUFFIX: list[tuple[str, dict[str, Any]]] = [
    ("_id", {"format": "uuid"}),
    ("_at", {"format": "date-time"}),
    ("_date", {"format": "date"}),
    ("_on", {"format": "date"}),
    ("_time", {"pattern": _HHMM}),
    ("_start", {"pattern": _HHMM}),
    ("_email", {"format": "email"}),
    ("_url", {"format": "uri"}),
    ("_phone", {"pattern": _PHONE}),
    ("_ip", {"format": "ipv4"}),
    ("_address", {"type": "object"}),
    ("_country", {"pattern": r"^[A-Z]{2}$"}),
    ("_currency", {"pattern": r"^[A-Z]{3}$"}),
    ("_symbol", {"pattern": _SYMBOL}),
    ("_sku", {"pattern": _SKU}),
    ("_vin", {"pattern": _VIN}),
    ("_iban", {"pattern": _IBAN}),
    ("_airport", {"pattern": r"^[A-Z]{3}$"}),
    ("_sha", {"pattern": r"^[0-9a-f]{7,40}$"}),
    ("_sha256", {"pattern": r"^[0-9a-f]{64}$"}),
    ("_code", {"pattern": _CODE}),
    ("_enabled", {"type": "boolean"}),
    ("_pct", {"type": "number", "minimum": 0, "maximum": 100}),
    ("_score", {"type": "number", "minimum": 0, "maximum": 100}),
    ("_rating", {"type": "number", "minimum": 0, "maximum": 5}),
    ("_count", {"type": "integer", "minimum": 0}),
    *[(s, {"type": "integer", "minimum": 0})
      for s in ("_seconds", "_minutes", "_hours", "_days", "_weeks", "_months", "_ms")],
    *[(s, _MONEY) for s in ("_price", "_amount", "_cost", "_fee", "_total", "_balance",
                            "_budget", "_pay", "_value", "_rent", "_savings", "_bid", "_premium",
                            "_income", "_sales", "_limit", "_discount", "_fare", "_rate")],
    ("_c", {"type": "number"}),
]
# Unit suffixes: non-negative numbers, with the unit spelled out in the description.
_UNITS = {
    "_kg": "kilograms", "_g": "grams", "_km": "kilometres", "_m": "metres", "_cm": "centimetres",
    "_mm": "millimetres", "_m2": "square metres", "_m3": "cubic metres", "_l": "litres",
    "_ml": "millilitres", "_kwh": "kilowatt-hours", "_kw": "kilowatts", "_mw": "megawatts",
    "_mwh": "megawatt-hours", "_mbps": "megabits per second", "_gb": "gigabytes",
    "_mb": "megabytes", "_kv": "kilovolts", "_a": "amperes", "_hz": "hertz",
    "_ppm": "parts per million",
    "_mg": "milligrams", "_mps": "metres per second", "_kmh": "kilometres per hour",
    "_ha": "hectares", "_db": "decibels", "_deg": "degrees", "_bar": "bar", "_psi": "psi",
    "_bbl": "barrels", "_mcf": "thousand cubic feet", "_lps": "litres per second",
    "_ntu": "NTU", "_tonnes": "tonnes", "_t": "tonnes", "_ppt": "parts per thousand",
    "_mg_l": "milligrams per litre", "_fps": "frames per second", "_k": "kelvin",
    "_c": "degrees Celsius", "_n": "newtons", "_lpm": "litres per minute",
    "_rpm": "revolutions per minute", "_ugm3": "micrograms per cubic metre",
    "_ng_ul": "nanograms per microlitre", "_ms_cm": "millisiemens per centimetre",
    "_kg_ha": "kilograms per hectare", "_t_ha": "tonnes per hectare", "_l_ha": "litres per hectare",
    "_pct": "percent", "_seconds": "seconds", "_minutes": "minutes", "_hours": "hours",
    "_days": "days", "_weeks": "weeks", "_months": "months", "_ms": "milliseconds",
}
_UNITS_LONGEST_FIRST = sorted(_UNITS, key=len, reverse=True)
_TYPE_CODES: dict[str, dict[str, Any]] = {
    "s": {"type": "string"}, "i": {"type": "integer"}, "n": {"type": "number"},
    "b": {"type": "boolean"}, "d": {"format": "date"}, "dt": {"format": "date-time"},
    "t": {"pattern": _HHMM}, "email": {"format": "email"}, "uri": {"format": "uri"},
    "uuid": {"format": "uuid"},
}
_ADDRESS_FIELDS = "street, city, postal_code:s, country"
_ACRONYMS = {
    "hr": "HR", "ev": "EV", "iot": "IoT", "crm": "CRM", "ci": "CI", "cd": "CD", "dns": "DNS",
    "seo": "SEO", "pos": "POS", "fx": "FX", "av": "AV", "sms": "SMS", "voip": "VoIP", "hoa": "HOA",
    "er": "ER", "ce": "CE", "bom": "BOM", "capa": "CAPA", "sds": "SDS", "oee": "OEE", "ppe": "PPE",
    "plc": "PLC", "ips": "IPS", "tls": "TLS", "vpn": "VPN", "hvac": "HVAC", "ab": "A/B",
    "sim": "SIM",
    "dtc": "DTC", "gps": "GPS", "ssh": "SSH", "utm": "UTM", "nps": "NPS", "ehr": "EHR", "ai": "AI",
}


def humanize(slug: str) -> str:
    """``ev_charging_network`` → ``EV charging network`` (sentence case, known acronyms kept)."""
    words = [_ACRONYMS.get(w, w) for w in slug.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _infer(name: str) -> dict[str, Any]:
    return dict(_infer_cached(name))


@lru_cache(maxsize=None)
def _infer_cached(name: str) -> dict[str, Any]:
    if name in _EXACT:
        return dict(_EXACT[name])
    for prefix, spec in _PREFIX.items():
        if name.startswith(prefix):
            return dict(spec)
    for suffix, spec in _SUFFIX:
        if name.endswith(suffix):
            return dict(spec)
    for suffix in _UNITS_LONGEST_FIRST:
        if name.endswith(suffix):
            return {"type": "number", "minimum": 0}
    return {"type": "string"}


def _describe(name: str, entity: str, spec: dict[str, Any]) -> str:
    owner, words = humanize(entity).lower(), humanize(name).lower()
    head = entity.rsplit("_", 1)[-1] + "_"
    if name.startswith(head) and len(name) > len(head):  # "order_type" of an order → "type"
        words = humanize(name[len(head):]).lower()
    fmt, kind = spec.get("format"), spec.get("type", "string")
    if name.endswith("_at") and fmt == "date-time":
        stem = name[:-3].replace("_", " ")
        what = (f"When the {owner} was {stem}" if stem.endswith("ed")
                else f"{stem.capitalize()} time of the {owner}")
        return f"{what} (ISO 8601 date-time)."
    if kind == "boolean":
        for prefix, verb in (("is_", "is"), ("has_", "has")):
            if name.startswith(prefix):
                return f"Whether the {owner} {verb} {name[len(prefix):].replace('_', ' ')}."
        return f"Whether {words} applies to the {owner}."
    unit = next((_UNITS[s] for s in _UNITS_LONGEST_FIRST if name.endswith(s)), None)
    text = f"{words.capitalize()} of the {owner}"
    if unit:
        text += f", in {unit}"
    if fmt in ("date", "date-time"):
        text += f" ({'YYYY-MM-DD' if fmt == 'date' else 'ISO 8601 date-time'})"
    return text + "."


# ------------------------------------------------------------------------------ DSL parsing

_ATTR_RE = re.compile(
    r"^(?P<name>[a-z][a-z0-9_]*)(?P<array>\[\])?(?:\{(?P<fields>.*)\})?"
    r"(?:=(?P<enum>[\w.+-]+(?:\|[\w.+-]+)*))?"
    r"(?::(?P<code>[a-z]+)(?:\[(?P<lo>-?[\d.]*)\.\.(?P<hi>-?[\d.]*)\])?)?$"
)
_ENTITY_RE = re.compile(r"([a-z][a-z0-9_]*)\(")


def _split_top(text: str) -> list[str]:
    """Split on commas that are not inside braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _bound(text: str | None) -> float | None:
    if not text:
        return None
    value = float(text)
    return int(value) if value.is_integer() else value


def _scalar(name: str, entity: str, m: re.Match[str], infer_from: str) -> Attribute:
    spec = _infer(infer_from)
    if m["code"]:
        spec = {"type": "string", **_TYPE_CODES[m["code"]]}
    if m["enum"]:
        spec = {"type": "string", "enum": tuple(m["enum"].split("|"))}
    if m["lo"] is not None:
        spec["minimum"], spec["maximum"] = _bound(m["lo"]), _bound(m["hi"])
    fields = m["fields"]
    if fields is None and spec.get("type") == "object":
        fields = _ADDRESS_FIELDS
    kind = "object" if fields is not None else spec.get("type", "string")
    return Attribute(
        name=name,
        json_type=kind,
        enum=spec.get("enum"),
        format=spec.get("format"),
        pattern=spec.get("pattern"),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
        description=_describe(name, entity, spec),
        properties=_attributes(fields, singular(name)) if fields is not None else (),
    )


def _attribute(token: str, entity: str) -> Attribute:
    m = _ATTR_RE.match(token)
    if not m:
        raise ValueError(f"taxonomy: bad attribute {token!r} in entity {entity!r}")
    name = m["name"]
    if not m["array"]:
        return _scalar(name, entity, m, name)
    item = _scalar(singular(name), entity, m, singular(name))
    owner = humanize(entity).lower()
    return Attribute(name=name, json_type="array", items=item,
                     description=f"{humanize(name)} of the {owner}.")


def _attributes(text: str, entity: str) -> tuple[Attribute, ...]:
    return tuple(_attribute(token, entity) for token in _split_top(text))


def _entities(text: str) -> tuple[Entity, ...]:
    out, pos = [], 0
    while (m := _ENTITY_RE.search(text, pos)) is not None:
        depth, end = 0, m.end() - 1
        for end in range(m.end() - 1, len(text)):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
        out.append(Entity(m[1], _attributes(text[m.end(): end], m[1])))
        pos = end + 1
    return tuple(out)


def _parse(text: str) -> list[Category]:
    categories: list[tuple[str, str, str, list[ToolDomain]]] = []
    for line in filter(None, (raw.strip() for raw in text.splitlines())):
        if line.startswith("# "):
            slug, title, description = (part.strip() for part in line[2:].split(" | "))
            categories.append((slug, title, description, []))
            continue
        slug, description, entities = (part.strip() for part in line.split(" | "))
        category = categories[-1]
        domain = ToolDomain(slug, humanize(slug), description, category[0], _entities(entities))
        category[3].append(domain)
    return [Category(slug, title, desc, tuple(domains))
            for slug, title, desc, domains in categories]


@lru_cache(maxsize=1)
def load_taxonomy() -> list[Category]:
    """The categories, parsed once per process (treat the result as read-only)."""
    return _parse(TAXONOMY_DSL)


@lru_cache(maxsize=1)
def _domain_index() -> dict[str, ToolDomain]:
    return {d.slug: d for c in load_taxonomy() for d in c.domains}


def all_tool_domains() -> list[ToolDomain]:
    """Every domain, category by category, in taxonomy order."""
    return list(_domain_index().values())


def domain_by_slug(slug: str) -> ToolDomain:
    """The domain with this slug (KeyError names the unknown slug)."""
    try:
        return _domain_index()[slug]
    except KeyError:
        raise KeyError(f"unknown taxonomy domain {slug!r}") from None


def category_by_slug(slug: str) -> Category:
    for category in load_taxonomy():
        if category.slug == slug:
            return category
    raise KeyError(f"unknown taxonomy category {slug!r}")
