"""Offline drafting of tools from the taxonomy: templates over verbs × entities × attributes.

The seed step of the offline ``tool_evolver`` (``tools.offline.tool_evolver``) drafts the tools
of a domain the way K2's hierarchical generation does (K2 report §3.1): every entity of the
domain gets the actions its typed attributes allow — create, get, list, search, update,
delete, a transition per reachable status, reschedule, export, summarise, bulk update … —
plus actions linking two entities (attach, detach, list the Xs of a Y). Each template yields
*plans*: a name (cheap, to avoid duplicates) and a builder that writes the spec with a seeded
``random.Random``. The seed picks plans round-robin over the entities, core CRUD first more
often; the in-breadth operations pick a fresh plan. Production code never imports it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Callable

from kimi_pipeline.text import plural
from kimi_pipeline.tools.evol_ops import create_verb
from kimi_pipeline.tools.offline.vocabulary import (
    NEGATIVE_VERBS,
    TRANSITION_VERBS,
    array_schema,
    boolean_schema,
    code_list,
    enum_attributes,
    enum_schema,
    filter_props,
    first_required,
    id_param,
    is_status,
    is_system,
    limit_param,
    mutable_fields,
    noun_phrase,
    numeric_attributes,
    object_schema,
    slugify,
    status_attribute,
    string_schema,
    third_person,
    tool_spec,
    with_article,
)
from kimi_pipeline.tools.taxonomy import Attribute, Entity, ToolDomain, domain_by_slug


# -- action templates: verbs × entities × attributes


@dataclass(frozen=True)
class Plan:
    """A tool the offline program can draft: its name first (cheap), the spec on demand."""

    name: str
    build: Callable[[random.Random], dict[str, Any]]
    weight: float = 1.0  # core CRUD actions are drafted first more often


_ACTIONS: list[tuple[Callable[[Entity, ToolDomain], list[Plan]], float]] = []
_CROSS_ACTIONS: list[Callable[[Entity, Entity, ToolDomain], list[Plan]]] = []


def _action(weight: float = 1.0):
    """Register an action template: (entity, domain) → plans."""

    def wrap(fn):
        _ACTIONS.append((fn, weight))
        return fn

    return wrap


def _cross_action(fn):
    """Register a template acting on two entities: (a, b, domain) → plans."""
    _CROSS_ACTIONS.append(fn)
    return fn


def entity_plans(entity: Entity, domain: ToolDomain) -> list[Plan]:
    return [Plan(p.name, p.build, weight) for fn, weight in _ACTIONS for p in fn(entity, domain)]


def cross_plans(a: Entity, b: Entity, domain: ToolDomain) -> list[Plan]:
    return [p for fn in _CROSS_ACTIONS for p in fn(a, b, domain)]


@_action()
def _create(entity: Entity, domain: ToolDomain) -> list[Plan]:
    verb, noun = create_verb(entity), noun_phrase(entity.name)
    name = f"{verb}_{entity.name}"
    props = mutable_fields(entity)
    required = first_required(props)
    status = " and its initial status" if status_attribute(entity) else ""

    def build(rng: random.Random) -> dict[str, Any]:
        return tool_spec(name, [
            f"{third_person(verb)} {with_article('new ' + noun)}.",
            rng.choice([
                f"Use it when the user wants to {verb} {with_article(noun)}; "
                f"{code_list(required)} are required, the rest is optional and can be changed "
                f"later with update_{entity.name}.",
                f"Provide {code_list(required)}; every other field is optional.",
            ]),
            rng.choice([
                f"Returns the created {noun} with its `{entity.name}_id`.",
                f"Responds with the new {noun}, including its `{entity.name}_id`{status}.",
            ]),
        ], props, required)

    return [Plan(name, build)]


@_action(weight=0.6)
def _create_typed(entity: Entity, domain: ToolDomain) -> list[Plan]:
    kind = next((a for a in enum_attributes(entity) if a.name.endswith("_type")), None)
    if kind is None:
        return []
    verb, noun = create_verb(entity), noun_phrase(entity.name)
    base = {n: s for n, s in mutable_fields(entity).items() if n != kind.name}
    required, kind_words = first_required(base), kind.name.replace("_", " ")

    def plan(value: str) -> Plan:
        name, label = f"{verb}_{slugify(value)}_{entity.name}", value.replace("_", " ")

        def build(rng: random.Random) -> dict[str, Any]:
            return tool_spec(name, [
                f"{third_person(verb)} {with_article(label + ' ' + noun)} ({kind.name} = {value}).",
                rng.choice([
                    f"A shortcut for {verb}_{entity.name} with the {kind_words} fixed.",
                    f"Use it for {label} {plural(noun)} only; other kinds have their own tools.",
                ]),
                f"Returns the created {noun} and its `{entity.name}_id`.",
            ], dict(base), required)

        return Plan(name, build)

    return [plan(v) for v in kind.enum or ()]


@_action()
def _get(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"get_{entity.name}"
    fields = [a.name for a in entity.attributes]

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity),
                 "fields": array_schema(enum_schema(fields, "A field name."),
                                  "Subset of fields to return; all fields when omitted.")}
        return tool_spec(name, [
            f"Retrieves a single {noun} by its `{key}`.",
            rng.choice([
                f"Use it to look up the current details of a known {noun}; to find one by its "
                f"attributes use search_{plural(entity.name)} instead.",
                f"Call it after a list or search call when you need the full {noun} record.",
            ]),
            f"Returns the {noun} with all of its fields, or a not-found error.",
        ], props, [key])

    return [Plan(name, build)]


@_action(weight=0.5)
def _get_attr(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun, key = noun_phrase(entity.name), f"{entity.name}_id"

    def plan(attr: Attribute) -> Plan:
        name = f"get_{entity.name}_{re.sub(r'_pct$', '', attr.name)}"
        words = attr.name.replace("_", " ")

        def build(rng: random.Random) -> dict[str, Any]:
            return tool_spec(name, [
                f"Returns the current {words} of {with_article(noun)}.",
                rng.choice([f"Cheaper than get_{entity.name} when only the {words} matters, e.g. "
                            "while polling for a change.",
                            f"Use it to check the {words} before acting on the {noun}."]),
            ], {key: id_param(entity)}, [key])

        return Plan(name, build)

    readable = [a for a in entity.attributes
                if is_status(a) or a.name.endswith(("balance", "_pct", "_score", "_level"))]
    return [plan(a) for a in readable[:2]]


@_action()
def _list(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun_p, name = noun_phrase(plural(entity.name)), f"list_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {**filter_props(entity, rng.randint(1, 2)),
                 "created_after": string_schema(
                     "Only return records created after this timestamp."),
                 "sort_by": string_schema(f"Field to sort by, e.g. `{entity.attributes[0].name}`."),
                 "limit": limit_param(noun_p)}
        return tool_spec(name, [
            rng.choice([f"Lists {noun_p}, newest first.",
                        f"Returns a page of {noun_p}, newest first."]),
            f"Optional filters narrow the result; use get_{entity.name} for one known "
            f"{noun_phrase(entity.name)}.",
            f"Returns up to `limit` {noun_p} with their key fields.",
        ], props, [])

    return [Plan(name, build)]


@_action(weight=0.7)
def _list_by_status(entity: Entity, domain: ToolDomain) -> list[Plan]:
    status = status_attribute(entity)
    if status is None:
        return []
    noun_p = noun_phrase(plural(entity.name))

    def plan(value: str) -> Plan:
        name = f"list_{slugify(value)}_{plural(entity.name)}"

        def build(rng: random.Random) -> dict[str, Any]:
            filters = {k: v for k, v in filter_props(entity, 2).items() if k != status.name}
            return tool_spec(name, [
                f"Lists the {noun_p} whose {status.name} is `{value}`.",
                rng.choice([
                    f"A focused view for daily work on {value.replace('_', ' ')} {noun_p}.",
                    f"Equivalent to list_{plural(entity.name)} with {status.name}={value}.",
                ]),
                f"Returns up to `limit` {noun_p}, oldest first.",
            ], {**filters, "limit": limit_param(noun_p)}, [])

        return Plan(name, build)

    return [plan(v) for v in (status.enum or ())[:4]]


@_action()
def _search(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun_p, name = noun_phrase(plural(entity.name)), f"search_{plural(entity.name)}"
    texts = [a.name for a in entity.attributes
             if a.json_type == "string" and not (a.enum or a.format or a.pattern)][:3]
    matched = code_list(texts) if texts else "their text fields"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"query": string_schema(f"Free-text query matched against {matched}."),
                 **filter_props(entity, 1), "limit": limit_param(noun_p)}
        return tool_spec(name, [
            f"Searches {noun_p} by free text, optionally filtered.",
            rng.choice(["Use it when the user describes what they are looking for rather than "
                        "giving an id.", "Best for fuzzy lookups by name or keyword."]),
            f"Returns matching {noun_p} ranked by relevance.",
        ], props, ["query"])

    return [Plan(name, build)]


@_action()
def _update(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"update_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        return tool_spec(name, [
            f"Updates fields of an existing {noun}.",
            rng.choice(["Only the fields you pass are changed; omitted fields keep their values.",
                        "Partial update: send just the fields that change."]),
            f"Returns the updated {noun}.",
        ], {key: id_param(entity), **mutable_fields(entity)}, [key])

    return [Plan(name, build)]


@_action(weight=0.6)
def _set_attr(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun, key = noun_phrase(entity.name), f"{entity.name}_id"

    def plan(attr: Attribute) -> Plan:
        verb, words = ("set" if attr.enum else "update"), attr.name.replace("_", " ")
        name = f"{verb}_{entity.name}_{attr.name}"

        def build(rng: random.Random) -> dict[str, Any]:
            return tool_spec(name, [
                f"Changes the {words} of {with_article(noun)}.",
                rng.choice([
                    f"Use it when only the {words} changes; other fields are left untouched.",
                    f"A narrow alternative to update_{entity.name}.",
                ]),
                f"Returns the {noun} with its new {words}.",
            ], {key: id_param(entity), attr.name: attr.schema()}, [key, attr.name])

        return Plan(name, build)

    settable = [a for a in entity.attributes
                if not is_system(a) and (a.enum or a.json_type in ("integer", "number"))]
    return [plan(a) for a in settable[:3]]


@_action()
def _delete(entity: Entity, domain: ToolDomain) -> list[Plan]:
    last = entity.name.rsplit("_", 1)[-1]
    verb = "remove" if last in ("item", "entry", "member", "comment", "note", "tag") else "delete"
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"{verb}_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity),
                 "reason": string_schema("Why the record is removed (kept in the audit log).")}
        return tool_spec(name, [
            f"Permanently {verb}s {with_article(noun)}.",
            rng.choice(["This cannot be undone; confirm with the user first.",
                        "Irreversible: prefer archiving or cancelling when the record must stay "
                        "visible."]),
            "Returns an acknowledgement with the removed id.",
        ], props, [key])

    return [Plan(name, build)]


@_action()
def _transition(entity: Entity, domain: ToolDomain) -> list[Plan]:
    status = status_attribute(entity)
    if status is None:
        return []
    noun, key = noun_phrase(entity.name), f"{entity.name}_id"

    def plan(value: str, verb: str) -> Plan:
        marks = verb.startswith("mark_")
        name = f"mark_{entity.name}_{value}" if marks else f"{verb}_{entity.name}"
        head = (f"Marks {with_article(noun)} as {value.replace('_', ' ')}" if marks
                else f"{third_person(verb)} {with_article(noun)}")

        def build(rng: random.Random) -> dict[str, Any]:
            props: dict[str, Any] = {key: id_param(entity)}
            if verb in NEGATIVE_VERBS:
                props["reason"] = string_schema(f"Why the {noun} is being {value}.")
            else:
                props["note"] = string_schema("Optional note stored with the change.")
            if rng.random() < 0.5:
                props["notify"] = boolean_schema(
                    "Notify the people involved about the change.", True)
            return tool_spec(name, [
                f"{head}, moving its {status.name} to `{value}`.",
                rng.choice([
                    "Only valid from a state that allows it; otherwise the call fails with "
                    f"the current {status.name}.",
                    f"Use it instead of update_{entity.name} so the transition is validated "
                    "and audited.",
                ]),
                f"Returns the {noun} with its new {status.name}.",
            ], props, [key])

        return Plan(name, build)

    return [plan(v, TRANSITION_VERBS[v]) for v in status.enum or () if v in TRANSITION_VERBS]


@_action(weight=0.7)
def _reschedule(entity: Entity, domain: ToolDomain) -> list[Plan]:
    when = next((a for a in entity.attributes
                 if a.format == "date-time" and not is_system(a)), None)
    if when is None:
        return []
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"reschedule_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity), when.name: when.schema(),
                 "notify_participants": boolean_schema(
                     "Send the new time to everyone involved.", True)}
        return tool_spec(name, [
            f"Moves {with_article(noun)} to a new `{when.name}`.",
            rng.choice(["Fails if the new time conflicts with the rules of the schedule.",
                        "Use it when only the timing changes."]),
            f"Returns the {noun} with the updated time.",
        ], props, [key, when.name])

    return [Plan(name, build)]


@_action(weight=0.5)
def _export(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun_p, name = noun_phrase(plural(entity.name)), f"export_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"format": enum_schema(["csv", "json", "xlsx"], "File format of the export.",
                                       default="csv"),
                 "from_date": string_schema("First day of the period to export."),
                 "to_date": string_schema("Last day of the period to export."),
                 **filter_props(entity, 1),
                 "include_archived": boolean_schema("Also export archived records.")}
        return tool_spec(name, [
            f"Exports {noun_p} to a downloadable file.",
            rng.choice(["Use it for reporting or for handing data to another system.",
                        "Large exports run in the background."]),
            "Returns a download URL that expires after 24 hours.",
        ], props, ["format"])

    return [Plan(name, build)]


@_action(weight=0.5)
def _summarize(entity: Entity, domain: ToolDomain) -> list[Plan]:
    groups = [a.name for a in entity.attributes if a.enum]
    if not groups:
        return []
    noun_p, name = noun_phrase(plural(entity.name)), f"summarize_{plural(entity.name)}"
    metrics = ["count"] + [f"{agg}_{a.name}" for a in numeric_attributes(entity)[:2]
                           for agg in ("sum", "avg")]

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"group_by": enum_schema(groups, "Field to group by."),
                 "metric": enum_schema(metrics, "Aggregate computed per group.", default="count"),
                 "from_date": string_schema("Start of the period."),
                 "to_date": string_schema("End of the period.")}
        return tool_spec(name, [
            f"Aggregates {noun_p} by a field over a period.",
            rng.choice(["Use it to answer 'how many' or 'how much' questions without paging "
                        "through records.", "Good for dashboards and quick breakdowns."]),
            "Returns one row per group with the requested metric.",
        ], props, ["group_by"])

    return [Plan(name, build)]


@_action(weight=0.4)
def _bulk_update(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun_p, ids = noun_phrase(plural(entity.name)), f"{entity.name}_ids"
    name = f"bulk_update_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {ids: array_schema({"type": "string"}, f"Identifiers of the {noun_p} to change."),
                 "changes": object_schema(mutable_fields(entity),
                                          "Fields to set on every listed record.",
                                          minProperties=1)}
        return tool_spec(name, [
            f"Applies the same changes to several {noun_p} at once.",
            rng.choice(["Records that cannot be changed are reported and skipped; the rest are "
                        "updated.", "Prefer it to repeated update calls."]),
            "Returns the updated ids and any per-record errors.",
        ], props, [ids, "changes"])

    return [Plan(name, build)]


@_action(weight=0.4)
def _duplicate(entity: Entity, domain: ToolDomain) -> list[Plan]:
    label = next((a for a in entity.attributes if a.name in ("name", "title")), None)
    if label is None:
        return []
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"duplicate_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity),
                 f"new_{label.name}": string_schema(f"{label.name.capitalize()} of the copy.")}
        return tool_spec(name, [
            f"Creates a copy of an existing {noun}.",
            rng.choice(["Handy as a template for a similar record.",
                        f"The copy gets a new id; pass `new_{label.name}` to tell it apart."]),
            f"Returns the new {noun}.",
        ], props, [key])

    return [Plan(name, build)]


@_action(weight=0.4)
def _history(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun, key, name = noun_phrase(entity.name), f"{entity.name}_id", f"get_{entity.name}_history"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity),
                 "since": string_schema("Only changes after this timestamp."),
                 "limit": limit_param("changes")}
        return tool_spec(name, [
            f"Returns the change history of {with_article(noun)}: who changed what and when.",
            rng.choice(["Use it to audit or explain how a record reached its current state.",
                        "Entries are newest first."]),
        ], props, [key])

    return [Plan(name, build)]


@_action(weight=0.3)
def _watch(entity: Entity, domain: ToolDomain) -> list[Plan]:
    status = status_attribute(entity)
    events = ["created", "updated", "deleted"] + ([f"{status.name}_changed"] if status else [])
    noun, name = noun_phrase(entity.name), f"subscribe_to_{entity.name}_updates"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"webhook_url": string_schema("Endpoint that receives the event POSTs."),
                 "events": array_schema(enum_schema(events, "An event type."),
                                        "Event types to deliver."),
                 f"{entity.name}_id": string_schema(f"Limit to one {noun}; all when omitted.")}
        return tool_spec(name, [
            f"Registers a webhook for {noun} events.",
            rng.choice(["Use it instead of polling.", "Deliveries are retried for 24 hours."]),
            "Returns the subscription id and the signing secret.",
        ], props, ["webhook_url", "events"])

    return [Plan(name, build)]


@_action(weight=0.3)
def _import(entity: Entity, domain: ToolDomain) -> list[Plan]:
    noun_p, name = noun_phrase(plural(entity.name)), f"import_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"source_url": string_schema("Where to fetch the file from."),
                 "format": enum_schema(["csv", "json", "xlsx"], "Format of the file."),
                 "on_conflict": enum_schema(["skip", "update", "fail"],
                                        "What to do when a record already exists.", default="skip")}
        return tool_spec(name, [
            f"Imports {noun_p} in bulk from a file.",
            rng.choice(["Rows that fail validation are reported, not imported.",
                        "Use it for migrations and large batches."]),
            "Returns counts of created, updated and skipped records.",
        ], props, ["source_url"])

    return [Plan(name, build)]


@_action(weight=0.4)
def _compare(entity: Entity, domain: ToolDomain) -> list[Plan]:
    numbers = [a.name for a in numeric_attributes(entity)]
    if not numbers:
        return []
    noun_p, ids = noun_phrase(plural(entity.name)), f"{entity.name}_ids"
    name = f"compare_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {ids: array_schema({"type": "string"}, f"The {noun_p} to compare."),
                 "metrics": array_schema(enum_schema(numbers, "A numeric field."),
                                   "Fields to compare; all numeric fields when omitted.")}
        return tool_spec(name, [
            f"Compares several {noun_p} side by side.",
            rng.choice(["Use it when the user is choosing between options.",
                        "Highlights the best and worst value of each metric."]),
            "Returns a table with one column per record.",
        ], props, [ids])

    return [Plan(name, build)]


@_action(weight=0.5)
def _assign(entity: Entity, domain: ToolDomain) -> list[Plan]:
    who = next((a for a in entity.attributes
                if a.name.endswith("_email") and not is_system(a)), None)
    name = f"assign_{entity.name}"
    if who is None or name in {p.name for p in _transition(entity, domain)}:
        return []
    noun, key = noun_phrase(entity.name), f"{entity.name}_id"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: id_param(entity), who.name: who.schema(),
                 "note": string_schema("Message sent to the new assignee.")}
        return tool_spec(name, [
            f"Assigns {with_article(noun)} to a person by `{who.name}`.",
            rng.choice(["The previous assignee is notified.", "Use it to hand work over."]),
            f"Returns the {noun} with its new assignee.",
        ], props, [key, who.name])

    return [Plan(name, build)]


def _pair_ids(a: Entity, b: Entity) -> dict[str, Any]:
    return {f"{a.name}_id": id_param(a), f"{b.name}_id": id_param(b)}


@_cross_action
def _attach(a: Entity, b: Entity, domain: ToolDomain) -> list[Plan]:
    name, b_noun = f"attach_{a.name}_to_{b.name}", noun_phrase(b.name)

    def build(rng: random.Random) -> dict[str, Any]:
        return tool_spec(name, [
            f"Links an existing {noun_phrase(a.name)} to {with_article(b_noun)}.",
            rng.choice([
                "Both records must exist; linking twice is a no-op.",
                f"Use it to keep related records together, e.g. for reporting per {b_noun}.",
            ]),
            "Returns the link with both ids.",
        ], {**_pair_ids(a, b), "note": string_schema("Why they are linked.")},
            [f"{a.name}_id", f"{b.name}_id"])

    return [Plan(name, build)]


@_cross_action
def _detach(a: Entity, b: Entity, domain: ToolDomain) -> list[Plan]:
    name = f"detach_{a.name}_from_{b.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {**_pair_ids(a, b), "reason": string_schema("Why the link is removed.")}
        return tool_spec(name, [
            f"Removes the link between {with_article(noun_phrase(a.name))} and "
            f"{with_article(noun_phrase(b.name))}.",
            "Neither record is deleted.", "Returns an acknowledgement.",
        ], props, [f"{a.name}_id", f"{b.name}_id"])

    return [Plan(name, build)]


@_cross_action
def _list_for(a: Entity, b: Entity, domain: ToolDomain) -> list[Plan]:
    name = f"list_{plural(a.name)}_for_{b.name}"
    noun_p, b_noun = noun_phrase(plural(a.name)), noun_phrase(b.name)

    def build(rng: random.Random) -> dict[str, Any]:
        props = {f"{b.name}_id": id_param(b), **filter_props(a, 1), "limit": limit_param(noun_p)}
        return tool_spec(name, [
            f"Lists the {noun_p} linked to {with_article(b_noun)}.",
            rng.choice([f"Use it to see everything attached to one {b_noun}.",
                        "Results are newest first."]),
            f"Returns up to `limit` {noun_p}.",
        ], props, [f"{b.name}_id"])

    return [Plan(name, build)]


def mirror_name(name: str, a: Entity, b: Entity) -> str:
    """``attach_a_to_b`` ↔ ``attach_b_to_a`` (same for detach and list_for)."""
    swapped = {a.name: b.name, b.name: a.name, plural(a.name): plural(b.name),
               plural(b.name): plural(a.name)}
    pattern = "|".join(sorted(map(re.escape, swapped), key=len, reverse=True))
    return re.sub(pattern, lambda m: swapped[m[0]], name)


# -- seeds


def _weighted_order(plans: list[Plan], rng: random.Random) -> list[Plan]:
    """Weighted random order (Efraimidis–Spirakis keys): heavier plans tend to come first."""
    return sorted(plans, key=lambda p: -(rng.random() ** (1.0 / p.weight)))


def draft_seed(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The reply to a seed request: ``ctx["count"]`` distinct tools, round-robin over entities."""
    domain = domain_by_slug(ctx["domain"])
    entities = list(domain.entities)
    rng.shuffle(entities)
    queues = [_weighted_order(entity_plans(e, domain), rng) for e in entities]
    chosen: list[Plan] = []
    names: set[str] = set()
    while len(chosen) < ctx["count"] and any(queues):
        for queue in queues:  # round-robin so every entity gets tools
            while queue and queue[0].name in names:
                queue.pop(0)
            if queue and len(chosen) < ctx["count"]:
                chosen.append(queue.pop(0))
                names.add(chosen[-1].name)
    return {"tools": [plan.build(rng) for plan in chosen]}
