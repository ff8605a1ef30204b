"""The Evol operations of the tool evolver: what each asks for and which tools it fits (K2 §3.1).

K2 evolves its synthetic tools in the spirit of WizardLM Evol-Instruct: *in-depth* operations
rewrite a tool (add constraints, deepen, concretize, add a reasoning step, complicate the
inputs), *in-breadth* operations add a neighbouring tool. Each operation here is declared once
with the instruction the model reads and a predicate saying whether it applies to a tool; the
driver (``tools.evolve``) picks one applicable operation per tool and round, weighted and
seeded, so a tool is never asked for a change it cannot take (a second ``filters`` object, a
uuid format on a field that already has one).

Whether an operation applies is read off the tool alone — the verb and entity in its name, the
properties of its schema — with the helpers below, which the offline program
(``tools.offline.tool_evolver``, where each operation's deterministic implementation is
registered under the same label) reuses to carry the operation out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from kimi_pipeline.text import plural
from kimi_pipeline.tools.taxonomy import Entity, ToolDomain

# (tool, its domain) → whether the operation can change this tool
Applies = Callable[[dict[str, Any], ToolDomain], bool]


@dataclass(frozen=True)
class EvolOp:
    """One evolution operation: the instruction a model reads and the tools it applies to."""

    name: str
    kind: str  # "depth" (rewrite the tool) | "breadth" (add a neighbouring tool)
    instruction: str
    changes_semantics: bool  # the description must change too
    applies: Applies
    weight: float = 1.0  # relative chance of being picked among the applicable ops

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


_OPS: dict[str, EvolOp] = {}


def declare_evol_op(
    name: str,
    kind: str,
    instruction: str,
    changes_semantics: bool = True,
    applies: Applies | None = None,
    weight: float = 1.0,
) -> None:
    """Declare an Evol operation (its offline implementation registers under the same label)."""
    _OPS[f"{kind}:{name}"] = EvolOp(
        name, kind, instruction, changes_semantics, applies or (lambda tool, domain: True), weight,
    )


def evol_ops(kind: str) -> list[EvolOp]:
    """The declared operations of one kind, in declaration order."""
    return [op for op in _OPS.values() if op.kind == kind]


def get_op(label: str) -> EvolOp:
    return _OPS[label]


def changes_semantics(label: str) -> bool:
    """Whether the operation ``label`` changes what a tool does ("seed" and unknowns: no)."""
    op = _OPS.get(label)
    return op is not None and op.changes_semantics


# ------------------------------------------------------------------------------ reading a tool

READ_VERBS = ("get", "list", "search", "export", "summarize", "compare", "count")
# last word of an entity name → the verb of the tool that creates one ("create" otherwise)
CREATE_VERBS = {
    "order": "place", "booking": "book", "reservation": "book", "appointment": "book",
    "visit": "book", "ticket": "open", "case": "open", "dispute": "open", "incident": "declare",
    "request": "submit", "application": "submit", "registration": "submit", "proposal": "submit",
    "filing": "submit", "claim": "file", "report": "generate", "message": "send", "command": "send",
    "invoice": "issue", "refund": "issue", "note": "add", "comment": "add", "item": "add",
    "entry": "add", "member": "add", "contact": "add", "log": "record", "reading": "record",
    "observation": "record", "transfer": "initiate", "withdrawal": "request", "quote": "request",
    "job": "submit", "run": "start", "scan": "start", "session": "start", "mission": "dispatch",
    "instance": "launch", "prescription": "write", "sample": "register", "patient": "register",
    "player": "register", "device": "register", "vehicle": "register", "hold": "place",
    "call": "log", "alert": "raise", "campaign": "launch", "subscription": "start",
}


def create_verb(entity: Entity) -> str:
    return CREATE_VERBS.get(entity.name.rsplit("_", 1)[-1], "create")


def entity_of(tool_name: str, domain: ToolDomain) -> Entity:
    """The entity a tool acts on, read off its name (longest entity name that occurs in it)."""
    hits = [e for e in domain.entities if e.name in tool_name or plural(e.name) in tool_name]
    return max(hits, key=lambda e: len(e.name)) if hits else domain.entities[0]


def is_read_tool(tool: dict[str, Any]) -> bool:
    return tool["name"].startswith(tuple(f"{v}_" for v in READ_VERBS))


def tool_properties(tool: dict[str, Any]) -> dict[str, Any]:
    props = tool["parameters"].get("properties")
    return props if isinstance(props, dict) else {}


def schema_fields(params: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property, top level and one object level down."""
    for name, schema in (params.get("properties") or {}).items():
        if not isinstance(schema, dict):
            continue
        yield name, schema
        if schema.get("type") == "object":
            for sub, sub_schema in (schema.get("properties") or {}).items():
                if isinstance(sub_schema, dict):
                    yield f"{name}.{sub}", sub_schema


# ------------------------------------------------------------------------------ what each op fits


def unconstrained(schema: dict[str, Any]) -> bool:
    """A property add_constraints can tighten: open numeric range, free string, unbounded array."""
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return "minimum" not in schema or "maximum" not in schema
    if kind == "string":
        return not any(k in schema for k in ("enum", "format", "pattern", "maxLength"))
    return kind == "array" and "maxItems" not in schema


def deepen_step(tool: dict[str, Any]) -> str | None:
    """The next level of nesting: ``filters`` (read tools) or ``options`` first, then one deeper.

    One of "filters", "text_filter" (read tools), "options", "audit" (write tools), or None
    when the tool is nested as deep as deepen goes.
    """
    key, first, deeper, leaf = (("filters", "filters", "text_filter", "text") if is_read_tool(tool)
                                else ("options", "options", "audit", "audit"))
    holder = tool_properties(tool).get(key)
    if holder is None:
        return first
    nested = holder.get("properties") if isinstance(holder, dict) else None
    return deeper if isinstance(nested, dict) and leaf not in nested else None


_REASONS = ["customer_request", "duplicate", "entered_in_error", "no_longer_needed",
            "policy_violation", "other"]
# (property name test, the typing it takes): the first rule that matches wins
_CONCRETE_RULES: list[tuple[Callable[[str], bool], dict[str, Any]]] = [
    (lambda n: n == "cve_id", {"pattern": r"^CVE-[0-9]{4}-[0-9]{4,}$"}),
    (lambda n: n == "imei", {"pattern": r"^[0-9]{15}$"}),
    (lambda n: n.endswith("iccid"), {"pattern": r"^[0-9]{18,22}$"}),
    (lambda n: n == "cas_number", {"pattern": r"^[0-9]{2,7}-[0-9]{2}-[0-9]$"}),
    (lambda n: n == "dtc", {"pattern": r"^[PCBU][0-9A-F]{4}$"}),
    (lambda n: n.endswith("_allele"), {"pattern": r"^[ACGTN]+$"}),
    (lambda n: n.endswith("_cidr"), {"pattern": r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"}),
    (lambda n: n in ("hostname", "domain_name"), {"format": "hostname"}),
    (lambda n: n.endswith(("_after", "_before", "since", "until")), {"format": "date-time"}),
    (lambda n: n in ("from_date", "to_date") or n.endswith("_date"), {"format": "date"}),
    (lambda n: n.endswith(("_url", "_uri")), {"format": "uri"}),
    (lambda n: n.endswith("email"), {"format": "email"}),
    (lambda n: n == "timezone", {"pattern": r"^[A-Za-z]+(/[A-Za-z0-9_+-]+)+$"}),
    (lambda n: n == "reason", {"enum": _REASONS}),
]


def _concrete(
    leaf: str, schema: dict[str, Any], domain: ToolDomain, entity: Entity
) -> dict[str, Any] | None:
    """The concrete typing a generic string property can take, or None."""
    if schema.get("type") != "string" or any(k in schema for k in ("enum", "format", "pattern")):
        return None
    if leaf.endswith("_id") and leaf[:-3] in {e.name for e in domain.entities}:
        return {"format": "uuid"}
    if leaf == "sort_by":  # ascending keys, and '-key' for descending
        keys = [a.name for a in entity.attributes if a.json_type != "array"][:4]
        return {"enum": keys + [f"-{k}" for k in keys]}
    return next((dict(spec) for matches, spec in _CONCRETE_RULES if matches(leaf)), None)


def concrete_targets(tool: dict[str, Any], domain: ToolDomain) -> list[tuple[str, dict, dict]]:
    """(path, schema, typing) of every generic string property concretize can type."""
    entity = entity_of(tool["name"], domain)
    found = ((path, schema, _concrete(path.rsplit(".", 1)[-1], schema, domain, entity))
             for path, schema in schema_fields(tool["parameters"]))
    return [(path, schema, spec) for path, schema, spec in found if spec]


def reasoning_steps(tool: dict[str, Any]) -> list[str]:
    """The planning steps the tool can still gain: pagination, validate_only, dry_run, two_phase."""
    props = tool_properties(tool)
    if is_read_tool(tool):
        if "limit" in props and "cursor" not in props:
            return ["pagination"]
        counted = "limit" in props or tool["name"].startswith(("export_", "summarize_", "compare_"))
        return ["validate_only"] if counted and "validate_only" not in props else []
    return ["dry_run"] if "dry_run" not in props else (["two_phase"] if "mode" not in props else [])


def complications(tool: dict[str, Any], entity: Entity) -> list[str]:
    """The richer inputs the tool can take: "target", "sort", "items", "recipients"."""
    props, key = tool_properties(tool), f"{entity.name}_id"
    out = []
    if key in props and key in (tool["parameters"].get("required") or []):
        out.append("target")
    if isinstance(props.get("sort_by"), dict):
        out.append("sort")
    creates = tool["name"].startswith(f"{create_verb(entity)}_")
    if creates and sum(a.name in props for a in entity.attributes) >= 2:
        out.append("items")
    return out + ([] if "recipients" in props else ["recipients"])


def _has_other_entity(tool: dict[str, Any], domain: ToolDomain) -> bool:
    return len(domain.entities) > 1


# ------------------------------------------------------------------------------ the operations
# Declaration order is the order ``evol_ops`` returns, which the seeded choice depends on.

declare_evol_op(
    "add_constraints", "depth",
    "Add constraints: tighten loosely typed parameters with bounds (minimum/maximum), string "
    "lengths or patterns, array sizes (minItems/maxItems/uniqueItems) or enums.",
    changes_semantics=False,
    applies=lambda tool, domain: any(
        unconstrained(s) for _, s in schema_fields(tool["parameters"])
    ),
)
declare_evol_op(
    "deepen", "depth",
    "Deepen: restructure flat parameters into nested objects — a `filters` object with ranges "
    "for read tools, an `options` object (idempotency, notifications, audit) for write tools.",
    applies=lambda tool, domain: deepen_step(tool) is not None,
)
declare_evol_op(
    "concretize", "depth",
    "Concretize: replace generic string parameters with concrete types — enums of the allowed "
    "values, formats (date-time, date, email, uri, uuid, hostname) or patterns.",
    changes_semantics=False,
    applies=lambda tool, domain: bool(concrete_targets(tool, domain)),
)
declare_evol_op(
    "add_reasoning_step", "depth",
    "Add a reasoning step the caller must plan for: a `dry_run` or `validate_only` flag, a "
    "two-phase preview/confirm protocol with a confirmation token, or cursor pagination.",
    applies=lambda tool, domain: bool(reasoning_steps(tool)),
)
declare_evol_op(
    "complicate_inputs", "depth",
    "Complicate the inputs: accept richer structures — arrays of objects (batches, multi-key "
    "sorting, recipient lists) or oneOf alternatives (identify a record by id or by another key).",
    applies=lambda tool, domain: bool(complications(tool, entity_of(tool["name"], domain))),
)
declare_evol_op(
    "sibling_action", "breadth",
    "Write a sibling tool: a different action on the same resource as the tool shown "
    "(e.g. get → cancel, list → export, create → update).",
)
declare_evol_op(
    "other_entity", "breadth",
    "Write a tool for another resource of this domain than the one the tool shown acts on.",
    applies=_has_other_entity,
)
declare_evol_op(
    "cross_entity", "breadth",
    "Write a tool that connects the resource of the tool shown with another resource of this "
    "domain (e.g. attach X to Y, list the Xs of a Y).",
    applies=_has_other_entity, weight=0.5,
)
