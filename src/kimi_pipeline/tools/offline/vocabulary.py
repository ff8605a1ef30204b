"""The words, JSON Schema builders and entity readings the offline tool evolver writes with.

The offline ``tool_evolver`` program (``tools.offline.tool_evolver``) composes tools from the
taxonomy's entities and typed attributes; this module holds its building blocks: English for
names and descriptions (``fx_order`` → "an FX order", ``place`` → "Places"), small builders
for the JSON Schema fragments every tool is made of, and readings of an entity (its status
field, the fields a caller may set, its enums and numbers) that decide which actions it gets.
Production code never imports it.
"""

from __future__ import annotations

import re
from typing import Any

from kimi_pipeline.tools.taxonomy import Attribute, Entity, humanize

_STATUS_NAMES = ("status", "state", "phase", "stage")
_FUTURE_STEMS = ("start", "scheduled", "send", "publish", "pickup", "due", "release", "planned",
                 "air", "kickoff", "viewing", "reserved", "depart", "deadline", "window_start")
# status value reached → the verb of the transition tool (mark_* when there is no verb)
TRANSITION_VERBS = {
    "cancelled": "cancel", "canceled": "cancel", "approved": "approve", "rejected": "reject",
    "archived": "archive", "paused": "pause", "resolved": "resolve", "published": "publish",
    "closed": "close", "suspended": "suspend", "acknowledged": "acknowledge", "shipped": "ship",
    "submitted": "submit", "completed": "complete", "confirmed": "confirm", "dismissed": "dismiss",
    "refunded": "refund", "escalated": "escalate", "frozen": "freeze", "voided": "void",
    "released": "release", "declined": "decline", "accepted": "accept", "denied": "deny",
    "withdrawn": "withdraw", "terminated": "terminate", "retired": "retire",
    "disputed": "dispute", "contested": "contest", "triaged": "triage", "contained": "contain",
    "mitigated": "mitigate", "verified": "verify", "executed": "execute", "paid": "mark_paid",
    "delivered": "mark_delivered", "done": "mark_done", "fixed": "mark_fixed",
}
# transitions that take a `reason` rather than a `note`
NEGATIVE_VERBS = {"cancel", "reject", "suspend", "dismiss", "decline", "deny", "withdraw",
                  "terminate", "void", "retire", "dispute", "contest"}


# -- words


def noun_phrase(slug: str) -> str:
    """``fx_order`` → ``FX order``; ``order`` → ``order`` (acronyms keep their case)."""
    text = humanize(slug)
    return text if len(text) > 1 and text[1].isupper() else text[:1].lower() + text[1:]


def with_article(phrase: str) -> str:
    first = phrase[:1]
    vowel = first.lower() in "aeiou" or (phrase[1:2].isupper() and first in "AEFHILMNORSX")
    return f"{'an' if vowel else 'a'} {phrase}"


def third_person(verb: str) -> str:
    """Third person singular: ``place`` → ``Places``, ``search`` → ``Searches``."""
    if verb.startswith("mark_"):
        return "Marks"
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        word = verb + "es"
    elif verb.endswith("y") and verb[-2:-1] not in "aeiou":
        word = verb[:-1] + "ies"
    else:
        word = verb + "s"
    return word.capitalize()


def code_list(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def slugify(value: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", value.lower())


# -- schema builders


def string_schema(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def enum_schema(values: list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "description": description, **extra}


def integer_schema(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


def boolean_schema(description: str, default: bool = False) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


def array_schema(items: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, "description": description, **extra}


def object_schema(properties: dict[str, Any], description: str,
                  required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    out = {"type": "object", "description": description, "properties": properties}
    out |= {"required": required} if required is not None else {}
    return out | {"additionalProperties": False, **extra}


def tool_spec(
    name: str, sentences: list[str], props: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    """A tool: its name, the sentences of its description, a closed object schema."""
    params = {"type": "object", "properties": props, "required": required,
              "additionalProperties": False}
    return {"name": name, "description": " ".join(sentences), "parameters": params}


# -- reading entities


def is_status(attr: Attribute) -> bool:
    return bool(attr.enum) and (attr.name in _STATUS_NAMES or attr.name.endswith("_status"))


def is_system(attr: Attribute) -> bool:
    """Set by the service, not by the caller: status, past-tense timestamps, last_* fields."""
    if is_status(attr) or attr.name.startswith(("last_", "first_")):
        return True
    stem = attr.name[:-3]
    return attr.name.endswith("_at") and stem.endswith("ed") and stem not in _FUTURE_STEMS


def status_attribute(entity: Entity) -> Attribute | None:
    return next((a for a in entity.attributes if is_status(a)), None)


def enum_attributes(entity: Entity) -> list[Attribute]:
    return [a for a in entity.attributes if a.enum and not is_status(a)]


def numeric_attributes(entity: Entity) -> list[Attribute]:
    return [a for a in entity.attributes if a.json_type in ("integer", "number")]


def mutable_fields(entity: Entity) -> dict[str, dict[str, Any]]:
    return {a.name: a.schema() for a in entity.attributes if not is_system(a)}


def first_required(props: dict[str, Any]) -> list[str]:
    return [n for n, s in props.items() if s.get("type") != "boolean"][:2]


def id_param(entity: Entity) -> dict[str, Any]:
    # deliberately a plain string: giving it a uuid format is the concretize op's job
    noun = noun_phrase(entity.name)
    return string_schema(f"Identifier of the {noun}, as returned when it was created.")


def limit_param(noun_plural: str) -> dict[str, Any]:
    return integer_schema(f"Maximum number of {noun_plural} to return.", default=20)


def filter_props(entity: Entity, count: int) -> dict[str, Any]:
    status = status_attribute(entity)
    picks = ([status] if status else []) + enum_attributes(entity)
    return {a.name: a.schema() for a in picks[:count]}

