"""The offline ``tool_evolver``: answers the evolver's requests without a model (K2 report §3.1).

``tools.evolve`` sends three kinds of request: *seed* (draft N tools for a domain), *depth*
(rewrite one tool with an in-depth Evol operation) and *breadth* (add one neighbouring tool).
This program reads the request's structured ``context`` and writes the reply a competent model
would: seeds come from ``tools.offline.tool_drafts`` (action templates over the taxonomy's
entities and typed attributes), and each Evol operation declared in ``tools.evol_ops`` is
implemented here as a schema transformation (depth) or a fresh draft (breadth), registered
under the operation's label. Deterministic: one ``random.Random`` per request, seeded from the
config seed and the request context. Production code never imports this module; the offline
backend reaches it through ``ROLE_MODULES`` in ``llm/offline.py``.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Callable

from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.registry import registrar
from kimi_pipeline.text import plural
from kimi_pipeline.tools.evol_ops import (
    complications,
    concrete_targets,
    deepen_step,
    entity_of,
    reasoning_steps,
    schema_fields,
    unconstrained,
)
from kimi_pipeline.tools.evolve import ROLE
from kimi_pipeline.tools.offline.tool_drafts import (
    Plan,
    cross_plans,
    draft_seed,
    entity_plans,
    mirror_name,
)
from kimi_pipeline.tools.offline.vocabulary import (
    array_schema,
    boolean_schema,
    code_list,
    enum_schema,
    noun_phrase,
    numeric_attributes,
    object_schema,
    string_schema,
)
from kimi_pipeline.tools.taxonomy import Attribute, Entity, ToolDomain, domain_by_slug

# (parent tool, its domain, the entity it acts on, rng, names already used in the domain) → tool
OfflineOp = Callable[
    [dict[str, Any], ToolDomain, Entity, random.Random, frozenset[str]], dict[str, Any]
]
_IMPLEMENTATIONS: dict[str, OfflineOp] = {}
_implements = registrar(_IMPLEMENTATIONS, "offline Evol operation")  # @_implements("depth:…")


def offline_op(label: str) -> OfflineOp:
    """The offline implementation of the Evol operation ``label`` (e.g. "depth:deepen")."""
    return _IMPLEMENTATIONS[label]


# ------------------------------------------------------------------------------ in-breadth


def _fresh(plans: list[Plan], existing: frozenset[str], rng: random.Random) -> dict | None:
    fresh = [p for p in plans if p.name not in existing]
    return rng.choice(fresh).build(rng) if fresh else None


def _any_fresh(domain: ToolDomain, existing: frozenset[str], rng: random.Random) -> dict:
    plans = [p for e in domain.entities for p in entity_plans(e, domain)]
    return _fresh(plans, existing, rng) or plans[0].build(rng)  # a duplicate the eliminator records


@_implements("breadth:sibling_action")
def _sibling_action(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                    existing: frozenset[str]) -> dict[str, Any]:
    return _fresh(entity_plans(entity, domain), existing, rng) or _any_fresh(domain, existing, rng)


@_implements("breadth:other_entity")
def _other_entity(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                  existing: frozenset[str]) -> dict[str, Any]:
    other = rng.choice([e for e in domain.entities if e.name != entity.name])
    return _fresh(entity_plans(other, domain), existing, rng) or _any_fresh(domain, existing, rng)


@_implements("breadth:cross_entity")
def _cross_entity(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                  existing: frozenset[str]) -> dict[str, Any]:
    plans = [p for other in domain.entities if other.name != entity.name
             for p in cross_plans(entity, other, domain) + cross_plans(other, entity, domain)
             if mirror_name(p.name, entity, other) not in existing]  # one direction per pair
    return _fresh(plans, existing, rng) or _any_fresh(domain, existing, rng)


# ------------------------------------------------------------------------------ in-depth


def _evolved(tool: dict[str, Any], params: dict[str, Any], sentence: str) -> dict[str, Any]:
    """The child: same name, the new parameters, the description plus one documenting sentence."""
    description = f"{tool['description'].rstrip()} {sentence}"
    return {"name": tool["name"], "description": description, "parameters": params}


def _params(tool: dict[str, Any]) -> dict[str, Any]:
    params = copy.deepcopy(tool["parameters"])
    params.setdefault("properties", {})
    return params


# -- add_constraints

# (name suffix, bound): the first suffix that matches wins
_MAXIMA = (("limit", 100), ("page_size", 200), ("quantity", 10_000), ("_pct", 100),
           ("_minutes", 1440), ("_seconds", 86_400), ("_hours", 8760), ("_days", 3650),
           ("_count", 100_000), ("rating", 5))
_MAX_LENGTHS = (("query", 256), ("name", 120), ("title", 200), ("reason", 500), ("note", 1000),
                ("description", 4000), ("body", 10_000), ("message", 2000), ("_url", 2048))


def _constrain(path: str, schema: dict[str, Any], rng: random.Random) -> str:
    """Tighten one property in place; returns the note documenting it."""
    leaf, kind = path.rsplit(".", 1)[-1], schema.get("type")
    if kind in ("integer", "number"):
        low = schema.setdefault("minimum", 1 if leaf in ("limit", "page_size", "quantity") else 0)
        high = next((m for s, m in _MAXIMA if leaf.endswith(s)),
                    rng.choice([1_000, 10_000, 1_000_000]))
        schema.setdefault("maximum", max(high, low))
        return f"`{path}` between {schema['minimum']} and {schema['maximum']}"
    if kind == "string":
        schema["minLength"] = 1
        schema["maxLength"] = next((m for s, m in _MAX_LENGTHS if leaf.endswith(s)),
                                   rng.choice([64, 128, 255]))
        return f"`{path}` at most {schema['maxLength']} characters"
    schema["minItems"], schema["maxItems"] = 1, rng.choice([10, 25, 50, 100])
    items = schema.get("items")
    if isinstance(items, dict) and items.get("type") in ("string", "integer"):
        schema["uniqueItems"] = True
    return f"`{path}` with 1 to {schema['maxItems']} items"


@_implements("depth:add_constraints")
def _add_constraints(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                     _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    targets = [(p, s) for p, s in schema_fields(params) if unconstrained(s)]
    picks = rng.sample(targets, k=min(len(targets), rng.randint(1, 3)))
    notes = [_constrain(path, schema, rng) for path, schema in picks]
    return _evolved(tool, params, f"Limits: {'; '.join(notes)}.")


# -- deepen


def _range(kind: str, what: str, fmt: str | None = None) -> dict[str, Any]:
    bound = {"type": kind} | ({"format": fmt} if fmt else {})
    low, high = ("from", "to") if fmt else ("min", "max")
    ends = {low: {**bound, "description": "Lower bound."},
            high: {**bound, "description": "Upper bound."}}
    return object_schema(ends, f"Range of {what}; both ends optional and inclusive.")


def _add_filters(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    props, required = params["properties"], set(params.get("required") or [])
    movable = [n for n, s in props.items()
               if n not in required and s.get("enum") and n not in ("format", "metric", "group_by")]
    inner = {n: props.pop(n) for n in movable}
    when = next((a for a in entity.attributes if a.format == "date-time"), None)
    key = when.name if when else "created_at"
    inner[key] = _range("string", noun_phrase(key), "date-time")
    number = next(iter(numeric_attributes(entity)), None)
    if number is not None:
        inner[number.name] = _range(number.json_type, noun_phrase(number.name))
    props["filters"] = object_schema(inner, "Conditions every result must meet; combined with AND.")
    return (f"Narrow the results with the nested `filters` object ({code_list(list(inner))}); "
            "ranges take `from`/`to` or `min`/`max`.")


def _add_options(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    channels = array_schema(enum_schema(["email", "sms", "push"], "A channel."),
                            "Channels to notify on.")
    notify = object_schema({"channels": channels,
                            "message": string_schema("Custom text added to the notification.")},
                           "Who hears about the change.")
    params["properties"]["options"] = object_schema(
        {"idempotency_key": string_schema("Reuse to make retries safe."), "notify": notify},
        "How the request is carried out.")
    return ("The nested `options` object sets an idempotency key and who is notified "
            "(`options.notify`).")


def _add_text_filter(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    params["properties"]["filters"]["properties"]["text"] = object_schema(
        {"contains": string_schema("Substring to look for."),
         "case_sensitive": boolean_schema("Match case exactly.")},
        "Text matching on top of the other filters.")
    return "`filters.text` adds substring matching with optional case sensitivity."


def _add_audit(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    params["properties"]["options"]["properties"]["audit"] = object_schema(
        {"reason": string_schema("Why the change is made."),
         "ticket_reference": string_schema("Related ticket.")},
        "Recorded in the audit log.")
    return "`options.audit` records a reason and a ticket reference in the audit log."


# what each step of ``deepen_step`` adds
_DEEPEN_STEPS = {"filters": _add_filters, "text_filter": _add_text_filter,
                 "options": _add_options, "audit": _add_audit}


@_implements("depth:deepen")
def _deepen(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
            _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    return _evolved(tool, params, _DEEPEN_STEPS[deepen_step(tool)](tool, entity, params))


# -- concretize


@_implements("depth:concretize")
def _concretize(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    targets = concrete_targets({**tool, "parameters": params}, domain)
    notes = []
    for path, schema, spec in rng.sample(targets, k=min(len(targets), rng.randint(1, 2))):
        schema.update(spec)
        enum = "one of " + ", ".join(spec["enum"][:4]) if "enum" in spec else "a pattern"
        notes.append(f"`{path}` is {spec.get('format') or enum}")
    return _evolved(tool, params, f"Typing: {'; '.join(notes)}.")


# -- add_reasoning_step


def _add_step(step: str, params: dict[str, Any], noun: str) -> str:
    props = params["properties"]
    if step == "dry_run":
        props["dry_run"] = boolean_schema(
            "Validate and return the would-be result without saving anything.")
        return f"Set `dry_run` to true to check the request and preview the resulting {noun} first."
    if step == "two_phase":
        props["mode"] = enum_schema(["preview", "confirm"], "`preview` returns a summary and a "
                                    "confirmation token; `confirm` applies it.", default="preview")
        props["confirmation_token"] = string_schema(
            "Token from the preview call; required with mode=confirm.")
        return ("Two steps: call with mode=preview to get a summary and a `confirmation_token`, "
                "then repeat with mode=confirm and that token to apply the change.")
    if step == "pagination":
        props["cursor"] = string_schema("Opaque cursor from the previous page's `next_cursor`.")
        return ("Results are paginated: `limit` is the page size; pass the `next_cursor` of one "
                "page as `cursor` to get the next.")
    props["validate_only"] = boolean_schema(
        "Only check the request and return how many records it covers.")
    return ("Set `validate_only` to check the request and count the records it covers before "
            "running it.")


@_implements("depth:add_reasoning_step")
def _add_reasoning_step(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                        _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    sentence = _add_step(rng.choice(reasoning_steps(tool)), params, noun_phrase(entity.name))
    return _evolved(tool, params, sentence)


# -- complicate_inputs

_NATURAL_KEYS = ("name", "title", "code", "sku", "symbol", "ticker", "email", "username",
                 "handle", "hostname", "vin", "plate_number", "iban", "isbn", "serial_number",
                 "order_number")


def _natural_key(entity: Entity) -> Attribute | None:
    """A human-facing identifier of the entity (name, code, *_number …), if it has one."""
    return next((a for a in entity.attributes if a.json_type == "string"
                 and (a.name in _NATURAL_KEYS or a.name.endswith(("_number", "_code")))), None)


def _target_by_id_or_key(entity: Entity, params: dict[str, Any]) -> str:
    props, noun, key = params["properties"], noun_phrase(entity.name), f"{entity.name}_id"
    natural = _natural_key(entity)
    by_id = object_schema({key: props.pop(key)}, f"The {noun} by id.", [key])
    if natural is not None:
        other = object_schema({natural.name: natural.schema()}, f"The {noun} by {natural.name}.",
                              [natural.name])
        alt = f"its `{natural.name}`"
    else:
        ids = array_schema({"type": "string"}, "Several records at once.", minItems=1)
        other = object_schema({f"{key}s": ids}, f"Several {plural(noun)}.", [f"{key}s"])
        alt = f"a list of `{key}s`"
    which = f"Which {noun}: exactly one of the alternatives."
    props["target"] = {"oneOf": [by_id, other], "description": which}
    params["required"] = ["target" if r == key else r for r in params.get("required") or []]
    return f"Identify the {noun} through `target`: either by `{key}` or by {alt}."


def _multi_key_sort(entity: Entity, params: dict[str, Any]) -> str:
    fields = [a.name for a in entity.attributes if a.json_type != "array"]
    params["properties"].pop("sort_by")
    key = object_schema(
        {"field": enum_schema(fields, "Field to sort on."),
         "direction": enum_schema(["asc", "desc"], "Sort direction.", default="asc")},
        "One sort key.", ["field"])
    params["properties"]["sort"] = array_schema(key, "Sort keys, most significant first.",
                                                maxItems=3)
    return "`sort` takes several keys, each with its own direction."


def _batch_items(entity: Entity, params: dict[str, Any]) -> str:
    props, required = params["properties"], list(params.get("required") or [])
    noun = noun_phrase(entity.name)
    moved = {a.name: props.pop(a.name) for a in entity.attributes if a.name in props}
    item = object_schema(moved, f"One {noun}.", [r for r in required if r in moved])
    props["items"] = array_schema(item, f"The {plural(noun)} to create in one call.",
                                  minItems=1, maxItems=50)
    params["required"] = ["items"] + [r for r in required if r not in moved]
    return (f"Accepts a batch: pass one or more {plural(noun)} in `items`; each is validated on "
            "its own.")


def _recipient_list(entity: Entity, params: dict[str, Any]) -> str:
    channel = enum_schema(["email", "sms", "push", "webhook"], "Delivery channel.")
    recipient = object_schema(
        {"channel": channel,
         "address": string_schema("Email, phone, device or URL for that channel.")},
        "One recipient.", ["channel", "address"])
    params["properties"]["recipients"] = array_schema(recipient, "Who is told about the result.",
                                                      maxItems=20)
    return "Optionally send the result to `recipients`, each with a channel and an address."


# what each kind of ``complications`` does to the parameters
_COMPLICATIONS = {"target": _target_by_id_or_key, "sort": _multi_key_sort, "items": _batch_items,
                  "recipients": _recipient_list}


@_implements("depth:complicate_inputs")
def _complicate_inputs(tool: dict, domain: ToolDomain, entity: Entity, rng: random.Random,
                       _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    kind = rng.choice(complications(tool, entity))
    return _evolved(tool, params, _COMPLICATIONS[kind](entity, params))


# ------------------------------------------------------------------------------ the role


def _rng(ctx: dict[str, Any]) -> random.Random:
    parent = (ctx.get("parent") or {}).get("name", "")
    key = f"{ctx.get('op', '')}:{ctx.get('round', 0)}:{ctx['domain']}/{parent}"
    return random.Random(f"{ctx['seed']}:{ctx['stage']}:{key}")


def _evolve(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    domain = domain_by_slug(ctx["domain"])
    implementation = offline_op(f"{ctx['stage']}:{ctx['op']}")
    parent, existing = ctx["parent"], frozenset(ctx.get("existing_names", []))
    return implementation(parent, domain, entity_of(parent["name"], domain), rng, existing)


@offline_role(ROLE)
def offline_tool_evolver(request: ChatRequest) -> dict[str, Any]:
    """Deterministic stand-in for the tool-evolver model (see the module docstring)."""
    ctx = request.context
    rng = _rng(ctx)
    return draft_seed(ctx, rng) if ctx["stage"] == "seed" else _evolve(ctx, rng)
