"""Synthetic tools by hierarchical domain generation and Evol-style evolution (K2 §3.1, stage 1).

K2 grows its synthetic tool repository top-down: key categories → specific application
domains → tools drafted per domain, then evolves them in the spirit of WizardLM Evol-Instruct
and lets an *eliminator* drop the evolutions that failed. This module runs exactly that:

1. the taxonomy (``tools.taxonomy``) gives categories and domains (limited by the config);
2. a **seed** round asks for ``tools_per_domain`` tools per domain;
3. ``depth_rounds`` of **in-depth** evolution rewrite every tool with one registered operation
   (add constraints, deepen, concretize, add a reasoning step, complicate inputs); a surviving
   child replaces its parent, a failed one leaves the parent as it was;
4. ``breadth_rounds`` of **in-breadth** evolution add one neighbouring tool per tool (a sibling
   action on the same entity, an action on another entity, or a cross-entity action);
5. the eliminator checks every candidate (JSON Schema validity, name, duplicates, no-op
   evolutions, degenerate specs) and records each drop as a ``Rejection`` with its reason.

Every step is one ``tool_evolver`` request through the LLM protocol: the messages a real model
could follow plus the structured ``context`` they were rendered from; a round's requests go out
together through ``complete_many`` so remote backends run them concurrently. The offline
program at the bottom of this module answers those requests deterministically from the
taxonomy's entities and typed attributes (seeded by config seed + request context).
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.text import plural
from kimi_pipeline.tools.config import EvolveConfig
from kimi_pipeline.tools.taxonomy import (
    Attribute,
    Domain,
    Entity,
    category_by_slug,
    domain_by_slug,
    humanize,
    load_taxonomy,
)

ROLE = "tool_evolver"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
MIN_DESCRIPTION_CHARS = 20
MAX_PROPERTIES = 20


# ------------------------------------------------------------------------------ results


@dataclass
class Rejection:
    """A candidate the eliminator (or the reply parser) dropped, with the reason."""

    candidate: dict[str, Any] | str  # the parsed tool, or the raw reply when it did not parse
    reason: str  # "<code>: <detail>", e.g. "duplicate_name: 'get_order' already exists in …"
    op: str  # "seed", "depth:<op>" or "breadth:<op>"


@dataclass
class EvolutionResult:
    # pre-shape of each tool: name, description, parameters, category, domain, evolution, lineage
    tools: list[dict[str, Any]]
    rejected: list[Rejection]
    stats: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------------ evol operations

# (parent tool, its domain, the entity it acts on, rng, names already used in the domain) → tool
OfflineOp = Callable[[dict[str, Any], Domain, Entity, random.Random, frozenset[str]], dict[str, Any]]


@dataclass(frozen=True)
class EvolOp:
    """One evolution operation: the instruction a model reads and the offline implementation."""

    name: str
    kind: str  # "depth" | "breadth"
    instruction: str
    changes_semantics: bool  # the description must change too
    applies: Callable[[dict[str, Any], Domain], bool]
    offline: OfflineOp
    weight: float = 1.0  # relative chance of being picked among the applicable ops

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


_OPS: dict[str, EvolOp] = {}


def register_evol_op(
    name: str,
    kind: str,
    instruction: str,
    changes_semantics: bool = True,
    applies: Callable[[dict[str, Any], Domain], bool] | None = None,
    weight: float = 1.0,
):
    """Register the offline implementation of an Evol operation (decorator)."""

    def wrap(fn: OfflineOp) -> OfflineOp:
        _OPS[f"{kind}:{name}"] = EvolOp(
            name, kind, instruction, changes_semantics, applies or (lambda tool, domain: True), fn,
            weight,
        )
        return fn

    return wrap


def evol_ops(kind: str) -> list[EvolOp]:
    """The registered operations of one kind, in registration order."""
    return [op for op in _OPS.values() if op.kind == kind]


def get_op(label: str) -> EvolOp:
    return _OPS[label]


# ------------------------------------------------------------------------------ eliminator

_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)
_SUB_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUB_ONE = (
    "items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
    "unevaluatedItems", "unevaluatedProperties", "contentSchema",
)
_SUB_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_FREE_STRINGS = ("description", "title", "$comment", "format", "pattern")  # any string is valid
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


@lru_cache(maxsize=65536)
def _shell_problem(shell_json: str) -> str | None:
    error = best_match(_META.iter_errors(json.loads(shell_json)))
    return None if error is None else error.message


def _canonical_value(key: str, value: Any) -> Any:
    """A stand-in with the same metaschema verdict as ``value`` (``value`` when unsure)."""
    if key in _FREE_STRINGS and isinstance(value, str):
        return ""
    if key in ("enum", "examples") and isinstance(value, list):
        return []
    if key == "required" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [] if len(set(value)) == len(value) else value
    if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"):
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return 1 if numeric and value > 0 else value  # only multipleOf cares, and only about > 0
    if key in _COUNTS and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return 0
    return value


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a valid Draft 2020-12 schema, or None.

    Same verdict as ``Draft202012Validator.check_schema``, but memoised node by node: each
    node is checked as a "shell" — sub-schemas replaced by ``true`` (and checked on their own),
    values whose validity depends only on their JSON type replaced by a canonical one — so the
    thousands of similar nodes of a run share a handful of metaschema passes.
    """
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return _shell_problem(json.dumps(schema, default=str))
    shell: dict[str, Any] = {}
    children: list[Any] = []
    for key, value in schema.items():
        if key in ("default", "const"):
            continue  # any value is valid
        if key in _SUB_MAPS and isinstance(value, dict):
            shell[key] = {}  # keys are free strings; the values are checked as children
            children.extend(value.values())
        elif key in _SUB_ONE:
            shell[key] = True
            children.append(value)
        elif key in _SUB_LISTS and isinstance(value, list) and value:
            shell[key] = [True] * len(value)
            children.extend(value)
        else:
            shell[key] = _canonical_value(key, value)
    problem = _shell_problem(json.dumps(shell, sort_keys=True, default=str))
    return problem or next(filter(None, map(schema_problem, children)), None)


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object-valued node of a schema, the root first."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key in _SUB_MAPS:
        if isinstance(schema.get(key), dict):
            for child in schema[key].values():
                yield from _subschemas(child)
    for key in _SUB_ONE:
        yield from _subschemas(schema.get(key))
    for key in _SUB_LISTS:
        for child in schema.get(key) or []:
            yield from _subschemas(child)


def _pattern_problem(schema: dict[str, Any]) -> str | None:
    for node in _subschemas(schema):
        if isinstance(node.get("pattern"), str):
            try:
                re.compile(node["pattern"])
            except re.error as exc:
                return f"pattern {node['pattern']!r} does not compile ({exc})"
    return None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _check_name(tool: dict[str, Any], **_: Any) -> str | None:
    if not NAME_RE.match(tool["name"]):
        return f"invalid_name: {tool['name']!r} does not match {NAME_RE.pattern}"
    return None


def _check_description(tool: dict[str, Any], **_: Any) -> str | None:
    text = tool["description"].strip()
    if len(text) < MIN_DESCRIPTION_CHARS:
        return f"short_description: {len(text)} chars < {MIN_DESCRIPTION_CHARS}"
    return None


def _check_schema(tool: dict[str, Any], **_: Any) -> str | None:
    params = tool["parameters"]
    if params.get("type") != "object":
        return "invalid_schema: parameters must be a JSON Schema with type 'object'"
    problem = schema_problem(params) or _pattern_problem(params)
    return f"invalid_schema: {problem}" if problem else None


def _check_size(tool: dict[str, Any], **_: Any) -> str | None:
    for node in _subschemas(tool["parameters"]):
        count = len(node.get("properties") or {})
        if count > MAX_PROPERTIES:
            return f"too_many_properties: an object schema has {count} > {MAX_PROPERTIES} properties"
    return None


def _check_required(tool: dict[str, Any], **_: Any) -> str | None:
    for node in _subschemas(tool["parameters"]):
        if "properties" in node or node is tool["parameters"]:
            missing = [r for r in node.get("required") or [] if r not in (node.get("properties") or {})]
            if missing:
                return f"required_not_in_properties: {missing}"
    return None


def _check_duplicate(tool: dict[str, Any], taken: set[str], **_: Any) -> str | None:
    if tool["name"] in taken:
        return f"duplicate_name: {tool['name']!r} already exists in this domain"
    return None


def _check_changed(tool: dict[str, Any], parent: dict | None, op: str, **_: Any) -> str | None:
    if parent is None or not op.startswith("depth:"):
        return None
    if _canonical(tool["parameters"]) == _canonical(parent["parameters"]):
        return f"unchanged_schema: {op} made no change to the parameters of {parent['name']!r}"
    return None


def _check_description_changed(
    tool: dict[str, Any], parent: dict | None, op: str, **_: Any
) -> str | None:
    if parent is None or op not in _OPS or not _OPS[op].changes_semantics:
        return None
    if tool["description"].strip() == parent["description"].strip():
        return f"unchanged_description: {op} changed what the tool does but not its description"
    return None


# Order matters: cheap structural checks before the metaschema, duplicates after validity.
_CHECKS = (
    _check_name, _check_description, _check_schema, _check_size, _check_required,
    _check_duplicate, _check_changed, _check_description_changed,
)


def eliminate(
    candidate: dict[str, Any],
    taken: set[str] | frozenset[str] = frozenset(),
    parent: dict[str, Any] | None = None,
    op: str = "seed",
) -> str | None:
    """The reason to drop ``candidate`` (``"<code>: <detail>"``), or None to keep it.

    ``taken``: names already used in the candidate's domain; ``parent``: the tool it evolved
    from (for depth ops: the schema must change; for semantics-changing ops: the description).
    """
    for check in _CHECKS:
        reason = check(candidate, taken=set(taken), parent=parent, op=op)
        if reason:
            return reason
    return None


# ------------------------------------------------------------------------------ prompts

SYSTEM_PROMPT = (
    "You design function-calling tools for an API catalogue used to train tool-using "
    "assistants. A tool has a snake_case `name` (3-64 characters: lowercase letters, digits, "
    "underscores; starts with a letter), a `description` written like API reference docs (what "
    "it does, when to use it, what it returns) and `parameters`: a JSON Schema (Draft 2020-12) "
    "object schema whose properties are typed and described, with a `required` list. Use enums, "
    "formats (date-time, date, email, uri, uuid), bounds and nested objects where they make the "
    "contract precise. Answer with one JSON object and nothing else."
)
_TOOL_SHAPE = '{"name": "...", "description": "...", "parameters": {"type": "object", ...}}'


def _entity_lines(domain: Domain) -> str:
    lines = []
    for entity in domain.entities:
        fields = ", ".join(f"{a.name} ({_type_label(a)})" for a in entity.attributes)
        lines.append(f"- {entity.name}: {fields}")
    return "\n".join(lines)


def _type_label(attr: Attribute) -> str:
    if attr.enum:
        return "one of " + "|".join(attr.enum)
    if attr.json_type == "array" and attr.items is not None:
        return f"array of {_type_label(attr.items)}"
    return attr.format or attr.json_type


def _domain_header(domain: Domain) -> str:
    category = category_by_slug(domain.category)
    return (
        f"Category: {category.title} — {category.description}\n"
        f"Domain: {domain.title} — {domain.description}\n"
        f"Resources in this domain and their fields:\n{_entity_lines(domain)}\n"
    )


def _public(tool: dict[str, Any]) -> dict[str, Any]:
    return {k: tool[k] for k in ("name", "description", "parameters")}


def _request(user: str, context: dict[str, Any], seed: int, max_tokens: int) -> ChatRequest:
    return ChatRequest(
        role=ROLE,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}],
        response_format="json",
        context=context,
        seed=seed,
        max_tokens=max_tokens,
    )


def seed_request(domain: Domain, count: int, seed: int) -> ChatRequest:
    user = (
        f"{_domain_header(domain)}\n"
        f"Draft {count} distinct tools an assistant working in this domain would need: a mix of "
        "creating, reading, listing/searching, updating and lifecycle actions (cancel, approve, "
        "export …) across the resources above. Name each tool verb_object (e.g. place_limit_order, "
        "list_open_positions).\n"
        f'Reply as {{"tools": [{_TOOL_SHAPE}, ...]}}.'
    )
    context = {"stage": "seed", "seed": seed, "domain": domain.slug, "count": count}
    return _request(user, context, seed, max_tokens=max(1024, 700 * count))


def depth_request(domain: Domain, parent: dict[str, Any], op: EvolOp, round_: int, seed: int) -> ChatRequest:
    user = (
        f"{_domain_header(domain)}\nHere is an existing tool of this domain:\n"
        f"{json.dumps(_public(parent), ensure_ascii=False)}\n\n"
        f"Rewrite it with one in-depth evolution. {op.instruction} Keep its purpose and every "
        "existing parameter unless the instruction says to restructure it, keep the schema valid, "
        "and update the description so it documents the change.\n"
        f"Reply as {_TOOL_SHAPE}."
    )
    context = {"stage": "depth", "seed": seed, "op": op.name, "round": round_,
               "domain": domain.slug, "parent": _public(parent)}
    return _request(user, context, seed, max_tokens=1500)


def breadth_request(
    domain: Domain, parent: dict[str, Any], op: EvolOp, existing: list[str], round_: int, seed: int
) -> ChatRequest:
    user = (
        f"{_domain_header(domain)}\nExisting tools in this domain: {', '.join(existing)}.\n"
        f"Here is one of them:\n{json.dumps(_public(parent), ensure_ascii=False)}\n\n"
        f"Create one new tool for this domain by in-breadth evolution. {op.instruction} "
        "Its name must differ from every existing tool.\n"
        f"Reply as {_TOOL_SHAPE}."
    )
    context = {"stage": "breadth", "seed": seed, "op": op.name, "round": round_,
               "domain": domain.slug, "parent": _public(parent), "existing_names": existing}
    return _request(user, context, seed, max_tokens=1500)


# ------------------------------------------------------------------------------ reply parsing


def parse_json_reply(response: ChatResponse) -> tuple[Any, str | None]:
    """The reply's JSON value, or the rejection reason (code fences are tolerated)."""
    if response.error:
        return None, f"backend_error: {response.error}"
    text = (response.content or "").strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"unparseable: reply is not valid JSON ({exc.msg} at char {exc.pos})"


def parse_tool(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A ``{"name", "description", "parameters"}`` candidate from a parsed reply, or the reason."""
    if isinstance(value, dict) and "name" not in value:
        inner = value.get("tool") or value.get("function")  # tolerated wrappers
        value = inner if isinstance(inner, dict) else value
    if not isinstance(value, dict):
        return None, f"missing_fields: expected a JSON object, got {type(value).__name__}"
    missing = [k for k in ("name", "description", "parameters") if k not in value]
    if missing:
        return None, f"missing_fields: {missing}"
    for key, kind in (("name", str), ("description", str), ("parameters", dict)):
        if not isinstance(value[key], kind):
            return None, f"bad_fields: {key!r} must be a {'string' if kind is str else 'JSON object'}"
    return {"name": value["name"].strip(), "description": value["description"].strip(),
            "parameters": value["parameters"]}, None


def _seed_items(value: Any) -> tuple[list[Any], str | None]:
    items = value.get("tools") if isinstance(value, dict) else value
    if not isinstance(items, list):
        return [], 'missing_fields: expected {"tools": [...]}'
    return items, None


# ------------------------------------------------------------------------------ the driver


def select_domains(config: EvolveConfig) -> list[Domain]:
    """Categories → domains, cut to ``max_categories`` × ``max_domains_per_category``."""
    categories = load_taxonomy()[: config.max_categories or None]
    return [d for c in categories for d in c.domains[: config.max_domains_per_category or None]]


def _choose(seed: int, key: str, options: list[EvolOp]) -> EvolOp | None:
    if not options:
        return None
    return random.Random(f"{seed}:choose:{key}").choices(options, [op.weight for op in options])[0]


class _Run:
    """One evolution run: the pool (domain → name → tool), the rejections and the counters."""

    def __init__(self, backend: ChatBackend, config: EvolveConfig, domains: list[Domain]):
        self.backend, self.seed = backend, config.seed
        self.domains = {d.slug: d for d in domains}
        self.pool: dict[str, dict[str, dict[str, Any]]] = {d.slug: {} for d in domains}
        self.rejected: list[Rejection] = []
        self.stats: Counter[str] = Counter()

    def ask(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.stats["requests"] += len(requests)
        return complete_many(self.backend, requests)

    def reject(self, candidate: dict | str, reason: str, op: str) -> None:
        self.rejected.append(Rejection(candidate, reason, op))
        self.stats["rejected"] += 1
        self.stats[f"rejected:{reason.split(':', 1)[0]}"] += 1

    def record(self, domain: Domain, draft: dict, evolution: list[str], parent_name: str) -> dict:
        return {**draft, "category": domain.category, "domain": domain.slug,
                "evolution": evolution, "lineage": f"{domain.slug}/{parent_name}"}

    # -- rounds

    def seed_round(self, count: int) -> None:
        domains = list(self.domains.values())
        replies = self.ask([seed_request(d, count, self.seed) for d in domains])
        for domain, reply in zip(domains, replies):
            value, reason = parse_json_reply(reply)
            items, reason = (_seed_items(value) if reason is None else ([], reason))
            if reason:
                self.reject(reply.content or "", reason, "seed")
            for item in items:
                self.stats["seed_candidates"] += 1
                self._admit(domain, item, None, "seed")

    def depth_round(self, round_: int) -> None:
        jobs = []
        for slug, tools in self.pool.items():
            domain = self.domains[slug]
            for tool in list(tools.values()):
                ops = [op for op in evol_ops("depth") if op.applies(tool, domain)]
                op = _choose(self.seed, f"depth:{round_}:{slug}/{tool['name']}", ops)
                if op is None:
                    self.stats["depth_skipped"] += 1
                    continue
                jobs.append((domain, tool, op))
        replies = self.ask([depth_request(d, t, op, round_, self.seed) for d, t, op in jobs])
        for (domain, parent, op), reply in zip(jobs, replies):
            self.stats["depth_candidates"] += 1
            self._admit_reply(domain, reply, parent, op.label)

    def breadth_round(self, round_: int) -> None:
        jobs = []
        for slug, tools in self.pool.items():
            domain, existing = self.domains[slug], list(tools)
            for tool in list(tools.values()):
                ops = [op for op in evol_ops("breadth") if op.applies(tool, domain)]
                op = _choose(self.seed, f"breadth:{round_}:{slug}/{tool['name']}", ops)
                if op is not None:
                    jobs.append((domain, tool, op, existing))
        replies = self.ask(
            [breadth_request(d, t, op, names, round_, self.seed) for d, t, op, names in jobs]
        )
        for (domain, parent, op, _), reply in zip(jobs, replies):
            self.stats["breadth_candidates"] += 1
            self._admit_reply(domain, reply, parent, op.label)

    # -- admission through the eliminator

    def _admit_reply(self, domain: Domain, reply: ChatResponse, parent: dict, op: str) -> None:
        value, reason = parse_json_reply(reply)
        if reason:
            self.reject(reply.content or "", reason, op)
            return
        self._admit(domain, value, parent, op)

    def _admit(self, domain: Domain, value: Any, parent: dict | None, op: str) -> None:
        draft, reason = parse_tool(value)
        if draft is None:
            self.reject(value if isinstance(value, dict) else json.dumps(value), reason, op)
            return
        tools = self.pool[domain.slug]
        replaces = parent is not None and op.startswith("depth:")
        taken = set(tools) - ({parent["name"]} if replaces else set())
        reason = eliminate(draft, taken, parent, op)
        stage = op.split(":", 1)[0]
        if reason:
            self.reject({**draft, "domain": domain.slug}, reason, op)
            return
        self.stats[f"{stage}_kept"] += 1
        if parent is None:
            tools[draft["name"]] = self.record(domain, draft, ["seed"], draft["name"])
        elif replaces:
            child = self.record(domain, draft, parent["evolution"] + [op], parent["name"])
            self.pool[domain.slug] = {
                (child["name"] if n == parent["name"] else n): (child if n == parent["name"] else t)
                for n, t in tools.items()
            }
        else:
            tools[draft["name"]] = self.record(domain, draft, [op], parent["name"])


def evolve_synthetic_tools(backend: ChatBackend, config: EvolveConfig) -> EvolutionResult:
    """Seed, deepen and widen synthetic tools over the taxonomy; see the module docstring."""
    domains = select_domains(config) if config.enabled else []
    run = _Run(backend, config, domains)
    run.stats["categories"] = len({d.category for d in domains})
    run.stats["domains"] = len(domains)
    if domains:
        run.seed_round(config.tools_per_domain)
        for round_ in range(config.depth_rounds):
            run.depth_round(round_)
        for round_ in range(config.breadth_rounds):
            run.breadth_round(round_)
    tools = [tool for slug in run.pool for tool in run.pool[slug].values()]
    run.stats["tools"] = len(tools)
    return EvolutionResult(tools=tools, rejected=run.rejected, stats=dict(run.stats))


# ============================================================================== offline program
# Everything below answers ``tool_evolver`` requests without a model: tools are composed from the
# taxonomy's entities and typed attributes (verbs × entities × attributes), and the Evol
# operations are schema transformations. Deterministic: one ``random.Random`` per request, seeded
# from the config seed and the request context.

_READ_VERBS = ("get", "list", "search", "export", "summarize", "compare", "count")
_STATUS_NAMES = ("status", "state", "phase", "stage")
_FUTURE_STEMS = ("start", "scheduled", "send", "publish", "pickup", "due", "release", "planned",
                 "air", "kickoff", "viewing", "reserved", "depart", "deadline", "window_start")
_CREATE_VERBS = {
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
# status value reached → the verb of the transition tool
_TRANSITIONS = {
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
_NEGATIVE = {"cancel", "reject", "suspend", "dismiss", "decline", "deny", "withdraw", "terminate",
             "void", "retire", "dispute", "contest"}
_REASONS = ["customer_request", "duplicate", "entered_in_error", "no_longer_needed",
            "policy_violation", "other"]


# -- words


def _noun(slug: str) -> str:
    """``fx_order`` → ``FX order``; ``order`` → ``order`` (acronyms keep their case)."""
    text = humanize(slug)
    return text if len(text) > 1 and text[1].isupper() else text[:1].lower() + text[1:]


def _a(phrase: str) -> str:
    first = phrase[:1]
    vowel = first.lower() in "aeiou" or (phrase[1:2].isupper() and first in "AEFHILMNORSX")
    return f"{'an' if vowel else 'a'} {phrase}"


def _third(verb: str) -> str:
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


def _code_list(names: list[str]) -> str:
    quoted = [f"`{n}`" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", value.lower())


# -- schema builders


def _string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _choice(values: list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "enum": list(values), "description": description, **extra}


def _integer(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


def _boolean(description: str, default: bool = False) -> dict[str, Any]:
    return {"type": "boolean", "default": default, "description": description}


def _array(items: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, "description": description, **extra}


def _object(properties: dict[str, Any], description: str, required: list[str] | None = None,
            **extra: Any) -> dict[str, Any]:
    out = {"type": "object", "description": description, "properties": properties}
    out |= {"required": required} if required is not None else {}
    return out | {"additionalProperties": False, **extra}


def _tool(name: str, sentences: list[str], props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    params = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {"name": name, "description": " ".join(sentences), "parameters": params}


# -- reading entities


def _is_status(attr: Attribute) -> bool:
    return bool(attr.enum) and (attr.name in _STATUS_NAMES or attr.name.endswith("_status"))


def _is_system(attr: Attribute) -> bool:
    """Set by the service, not by the caller: status, past-tense timestamps, last_* fields."""
    if _is_status(attr) or attr.name.startswith(("last_", "first_")):
        return True
    stem = attr.name[:-3]
    return attr.name.endswith("_at") and stem.endswith("ed") and stem not in _FUTURE_STEMS


def _status(entity: Entity) -> Attribute | None:
    return next((a for a in entity.attributes if _is_status(a)), None)


def _enums(entity: Entity) -> list[Attribute]:
    return [a for a in entity.attributes if a.enum and not _is_status(a)]


def _numerics(entity: Entity) -> list[Attribute]:
    return [a for a in entity.attributes if a.json_type in ("integer", "number")]


def _mutable(entity: Entity) -> dict[str, dict[str, Any]]:
    return {a.name: a.schema() for a in entity.attributes if not _is_system(a)}


def _first_required(props: dict[str, Any]) -> list[str]:
    return [n for n, s in props.items() if s.get("type") != "boolean"][:2]


def _id_param(entity: Entity) -> dict[str, Any]:
    # deliberately a plain string: giving it a uuid format is the concretize op's job
    return _string(f"Identifier of the {_noun(entity.name)}, as returned when it was created.")


def _limit_param(noun_plural: str) -> dict[str, Any]:
    return _integer(f"Maximum number of {noun_plural} to return.", default=20)


def _filter_props(entity: Entity, count: int) -> dict[str, Any]:
    picks = ([_status(entity)] if _status(entity) else []) + _enums(entity)
    return {a.name: a.schema() for a in picks[:count]}


def _create_verb(entity: Entity) -> str:
    return _CREATE_VERBS.get(entity.name.rsplit("_", 1)[-1], "create")


def entity_of(tool_name: str, domain: Domain) -> Entity:
    """The entity a tool acts on, read off its name (longest entity name that occurs in it)."""
    hits = [e for e in domain.entities if e.name in tool_name or plural(e.name) in tool_name]
    return max(hits, key=lambda e: len(e.name)) if hits else domain.entities[0]


# -- action templates: verbs × entities × attributes


@dataclass(frozen=True)
class _Plan:
    """A tool the offline program can draft: its name first (cheap), the spec on demand."""

    name: str
    build: Callable[[random.Random], dict[str, Any]]
    weight: float = 1.0  # core CRUD actions are drafted first more often


_ACTIONS: list[tuple[Callable[[Entity, Domain], list[_Plan]], float]] = []
_CROSS_ACTIONS: list[Callable[[Entity, Entity, Domain], list[_Plan]]] = []


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


def _entity_plans(entity: Entity, domain: Domain) -> list[_Plan]:
    return [_Plan(p.name, p.build, weight) for fn, weight in _ACTIONS for p in fn(entity, domain)]


def _cross_plans(a: Entity, b: Entity, domain: Domain) -> list[_Plan]:
    return [p for fn in _CROSS_ACTIONS for p in fn(a, b, domain)]


@_action()
def _create(entity: Entity, domain: Domain) -> list[_Plan]:
    verb, noun, name = _create_verb(entity), _noun(entity.name), f"{_create_verb(entity)}_{entity.name}"
    props = _mutable(entity)
    required = _first_required(props)
    status = " and its initial status" if _status(entity) else ""

    def build(rng: random.Random) -> dict[str, Any]:
        return _tool(name, [
            f"{_third(verb)} {_a('new ' + noun)}.",
            rng.choice([
                f"Use it when the user wants to {verb} {_a(noun)}; {_code_list(required)} are "
                f"required, the rest is optional and can be changed later with update_{entity.name}.",
                f"Provide {_code_list(required)}; every other field is optional.",
            ]),
            rng.choice([f"Returns the created {noun} with its `{entity.name}_id`.",
                        f"Responds with the new {noun}, including its `{entity.name}_id`{status}."]),
        ], props, required)

    return [_Plan(name, build)]


@_action(weight=0.6)
def _create_typed(entity: Entity, domain: Domain) -> list[_Plan]:
    kind = next((a for a in _enums(entity) if a.name.endswith("_type")), None)
    if kind is None:
        return []
    verb, noun = _create_verb(entity), _noun(entity.name)
    base = {n: s for n, s in _mutable(entity).items() if n != kind.name}
    required, kind_words = _first_required(base), kind.name.replace("_", " ")

    def plan(value: str) -> _Plan:
        name, label = f"{verb}_{_slug(value)}_{entity.name}", value.replace("_", " ")

        def build(rng: random.Random) -> dict[str, Any]:
            return _tool(name, [
                f"{_third(verb)} {_a(label + ' ' + noun)} ({kind.name} = {value}).",
                rng.choice([f"A shortcut for {verb}_{entity.name} with the {kind_words} fixed.",
                            f"Use it for {label} {plural(noun)} only; other kinds have their own tools."]),
                f"Returns the created {noun} and its `{entity.name}_id`.",
            ], dict(base), required)

        return _Plan(name, build)

    return [plan(v) for v in kind.enum or ()]


@_action()
def _get(entity: Entity, domain: Domain) -> list[_Plan]:
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"get_{entity.name}"
    fields = [a.name for a in entity.attributes]

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity),
                 "fields": _array(_choice(fields, "A field name."),
                                  "Subset of fields to return; all fields when omitted.")}
        return _tool(name, [
            f"Retrieves a single {noun} by its `{key}`.",
            rng.choice([f"Use it to look up the current details of a known {noun}; to find one by "
                        f"its attributes use search_{plural(entity.name)} instead.",
                        f"Call it after a list or search call when you need the full {noun} record."]),
            f"Returns the {noun} with all of its fields, or a not-found error.",
        ], props, [key])

    return [_Plan(name, build)]


@_action(weight=0.5)
def _get_attr(entity: Entity, domain: Domain) -> list[_Plan]:
    noun, key = _noun(entity.name), f"{entity.name}_id"

    def plan(attr: Attribute) -> _Plan:
        name, words = f"get_{entity.name}_{re.sub(r'_pct$', '', attr.name)}", attr.name.replace("_", " ")

        def build(rng: random.Random) -> dict[str, Any]:
            return _tool(name, [
                f"Returns the current {words} of {_a(noun)}.",
                rng.choice([f"Cheaper than get_{entity.name} when only the {words} matters, e.g. "
                            "while polling for a change.",
                            f"Use it to check the {words} before acting on the {noun}."]),
            ], {key: _id_param(entity)}, [key])

        return _Plan(name, build)

    readable = [a for a in entity.attributes
                if _is_status(a) or a.name.endswith(("balance", "_pct", "_score", "_level"))]
    return [plan(a) for a in readable[:2]]


@_action()
def _list(entity: Entity, domain: Domain) -> list[_Plan]:
    noun_p, name = _noun(plural(entity.name)), f"list_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {**_filter_props(entity, rng.randint(1, 2)),
                 "created_after": _string("Only return records created after this timestamp."),
                 "sort_by": _string(f"Field to sort by, e.g. `{entity.attributes[0].name}`."),
                 "limit": _limit_param(noun_p)}
        return _tool(name, [
            rng.choice([f"Lists {noun_p}, newest first.",
                        f"Returns a page of {noun_p}, newest first."]),
            f"Optional filters narrow the result; use get_{entity.name} for one known "
            f"{_noun(entity.name)}.",
            f"Returns up to `limit` {noun_p} with their key fields.",
        ], props, [])

    return [_Plan(name, build)]


@_action(weight=0.7)
def _list_by_status(entity: Entity, domain: Domain) -> list[_Plan]:
    status = _status(entity)
    if status is None:
        return []
    noun_p = _noun(plural(entity.name))

    def plan(value: str) -> _Plan:
        name = f"list_{_slug(value)}_{plural(entity.name)}"

        def build(rng: random.Random) -> dict[str, Any]:
            filters = {k: v for k, v in _filter_props(entity, 2).items() if k != status.name}
            return _tool(name, [
                f"Lists the {noun_p} whose {status.name} is `{value}`.",
                rng.choice([f"A focused view for daily work on {value.replace('_', ' ')} {noun_p}.",
                            f"Equivalent to list_{plural(entity.name)} with {status.name}={value}."]),
                f"Returns up to `limit` {noun_p}, oldest first.",
            ], {**filters, "limit": _limit_param(noun_p)}, [])

        return _Plan(name, build)

    return [plan(v) for v in (status.enum or ())[:4]]


@_action()
def _search(entity: Entity, domain: Domain) -> list[_Plan]:
    noun_p, name = _noun(plural(entity.name)), f"search_{plural(entity.name)}"
    texts = [a.name for a in entity.attributes
             if a.json_type == "string" and not (a.enum or a.format or a.pattern)][:3]
    matched = _code_list(texts) if texts else "their text fields"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"query": _string(f"Free-text query matched against {matched}."),
                 **_filter_props(entity, 1), "limit": _limit_param(noun_p)}
        return _tool(name, [
            f"Searches {noun_p} by free text, optionally filtered.",
            rng.choice(["Use it when the user describes what they are looking for rather than "
                        "giving an id.", "Best for fuzzy lookups by name or keyword."]),
            f"Returns matching {noun_p} ranked by relevance.",
        ], props, ["query"])

    return [_Plan(name, build)]


@_action()
def _update(entity: Entity, domain: Domain) -> list[_Plan]:
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"update_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        return _tool(name, [
            f"Updates fields of an existing {noun}.",
            rng.choice(["Only the fields you pass are changed; omitted fields keep their values.",
                        "Partial update: send just the fields that change."]),
            f"Returns the updated {noun}.",
        ], {key: _id_param(entity), **_mutable(entity)}, [key])

    return [_Plan(name, build)]


@_action(weight=0.6)
def _set_attr(entity: Entity, domain: Domain) -> list[_Plan]:
    noun, key = _noun(entity.name), f"{entity.name}_id"

    def plan(attr: Attribute) -> _Plan:
        verb, words = ("set" if attr.enum else "update"), attr.name.replace("_", " ")
        name = f"{verb}_{entity.name}_{attr.name}"

        def build(rng: random.Random) -> dict[str, Any]:
            return _tool(name, [
                f"Changes the {words} of {_a(noun)}.",
                rng.choice([f"Use it when only the {words} changes; other fields are left untouched.",
                            f"A narrow alternative to update_{entity.name}."]),
                f"Returns the {noun} with its new {words}.",
            ], {key: _id_param(entity), attr.name: attr.schema()}, [key, attr.name])

        return _Plan(name, build)

    settable = [a for a in entity.attributes
                if not _is_system(a) and (a.enum or a.json_type in ("integer", "number"))]
    return [plan(a) for a in settable[:3]]


@_action()
def _delete(entity: Entity, domain: Domain) -> list[_Plan]:
    last = entity.name.rsplit("_", 1)[-1]
    verb = "remove" if last in ("item", "entry", "member", "comment", "note", "tag") else "delete"
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"{verb}_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity),
                 "reason": _string("Why the record is removed (kept in the audit log).")}
        return _tool(name, [
            f"Permanently {verb}s {_a(noun)}.",
            rng.choice(["This cannot be undone; confirm with the user first.",
                        "Irreversible: prefer archiving or cancelling when the record must stay "
                        "visible."]),
            "Returns an acknowledgement with the removed id.",
        ], props, [key])

    return [_Plan(name, build)]


@_action()
def _transition(entity: Entity, domain: Domain) -> list[_Plan]:
    status = _status(entity)
    if status is None:
        return []
    noun, key = _noun(entity.name), f"{entity.name}_id"

    def plan(value: str, verb: str) -> _Plan:
        marks = verb.startswith("mark_")
        name = f"mark_{entity.name}_{value}" if marks else f"{verb}_{entity.name}"
        head = f"Marks {_a(noun)} as {value.replace('_', ' ')}" if marks else f"{_third(verb)} {_a(noun)}"

        def build(rng: random.Random) -> dict[str, Any]:
            props: dict[str, Any] = {key: _id_param(entity)}
            if verb in _NEGATIVE:
                props["reason"] = _string(f"Why the {noun} is being {value}.")
            else:
                props["note"] = _string("Optional note stored with the change.")
            if rng.random() < 0.5:
                props["notify"] = _boolean("Notify the people involved about the change.", True)
            return _tool(name, [
                f"{head}, moving its {status.name} to `{value}`.",
                rng.choice([f"Only valid from a state that allows it; otherwise the call fails with "
                            f"the current {status.name}.",
                            f"Use it instead of update_{entity.name} so the transition is validated "
                            "and audited."]),
                f"Returns the {noun} with its new {status.name}.",
            ], props, [key])

        return _Plan(name, build)

    return [plan(v, _TRANSITIONS[v]) for v in status.enum or () if v in _TRANSITIONS]


@_action(weight=0.7)
def _reschedule(entity: Entity, domain: Domain) -> list[_Plan]:
    when = next((a for a in entity.attributes if a.format == "date-time" and not _is_system(a)), None)
    if when is None:
        return []
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"reschedule_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity), when.name: when.schema(),
                 "notify_participants": _boolean("Send the new time to everyone involved.", True)}
        return _tool(name, [
            f"Moves {_a(noun)} to a new `{when.name}`.",
            rng.choice(["Fails if the new time conflicts with the rules of the schedule.",
                        "Use it when only the timing changes."]),
            f"Returns the {noun} with the updated time.",
        ], props, [key, when.name])

    return [_Plan(name, build)]


@_action(weight=0.5)
def _export(entity: Entity, domain: Domain) -> list[_Plan]:
    noun_p, name = _noun(plural(entity.name)), f"export_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"format": _choice(["csv", "json", "xlsx"], "File format of the export.", default="csv"),
                 "from_date": _string("First day of the period to export."),
                 "to_date": _string("Last day of the period to export."),
                 **_filter_props(entity, 1),
                 "include_archived": _boolean("Also export archived records.")}
        return _tool(name, [
            f"Exports {noun_p} to a downloadable file.",
            rng.choice(["Use it for reporting or for handing data to another system.",
                        "Large exports run in the background."]),
            "Returns a download URL that expires after 24 hours.",
        ], props, ["format"])

    return [_Plan(name, build)]


@_action(weight=0.5)
def _summarize(entity: Entity, domain: Domain) -> list[_Plan]:
    groups = [a.name for a in entity.attributes if a.enum]
    if not groups:
        return []
    noun_p, name = _noun(plural(entity.name)), f"summarize_{plural(entity.name)}"
    metrics = ["count"] + [f"{agg}_{a.name}" for a in _numerics(entity)[:2] for agg in ("sum", "avg")]

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"group_by": _choice(groups, "Field to group by."),
                 "metric": _choice(metrics, "Aggregate computed per group.", default="count"),
                 "from_date": _string("Start of the period."),
                 "to_date": _string("End of the period.")}
        return _tool(name, [
            f"Aggregates {noun_p} by a field over a period.",
            rng.choice(["Use it to answer 'how many' or 'how much' questions without paging "
                        "through records.", "Good for dashboards and quick breakdowns."]),
            "Returns one row per group with the requested metric.",
        ], props, ["group_by"])

    return [_Plan(name, build)]


@_action(weight=0.4)
def _bulk_update(entity: Entity, domain: Domain) -> list[_Plan]:
    noun_p, name, ids = _noun(plural(entity.name)), f"bulk_update_{plural(entity.name)}", f"{entity.name}_ids"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {ids: _array({"type": "string"}, f"Identifiers of the {noun_p} to change."),
                 "changes": _object(_mutable(entity), "Fields to set on every listed record.",
                                    minProperties=1)}
        return _tool(name, [
            f"Applies the same changes to several {noun_p} at once.",
            rng.choice(["Records that cannot be changed are reported and skipped; the rest are "
                        "updated.", "Prefer it to repeated update calls."]),
            "Returns the updated ids and any per-record errors.",
        ], props, [ids, "changes"])

    return [_Plan(name, build)]


@_action(weight=0.4)
def _duplicate(entity: Entity, domain: Domain) -> list[_Plan]:
    label = next((a for a in entity.attributes if a.name in ("name", "title")), None)
    if label is None:
        return []
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"duplicate_{entity.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity),
                 f"new_{label.name}": _string(f"{label.name.capitalize()} of the copy.")}
        return _tool(name, [
            f"Creates a copy of an existing {noun}.",
            rng.choice(["Handy as a template for a similar record.",
                        f"The copy gets a new id; pass `new_{label.name}` to tell it apart."]),
            f"Returns the new {noun}.",
        ], props, [key])

    return [_Plan(name, build)]


@_action(weight=0.4)
def _history(entity: Entity, domain: Domain) -> list[_Plan]:
    noun, key, name = _noun(entity.name), f"{entity.name}_id", f"get_{entity.name}_history"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity), "since": _string("Only changes after this timestamp."),
                 "limit": _limit_param("changes")}
        return _tool(name, [
            f"Returns the change history of {_a(noun)}: who changed what and when.",
            rng.choice(["Use it to audit or explain how a record reached its current state.",
                        "Entries are newest first."]),
        ], props, [key])

    return [_Plan(name, build)]


@_action(weight=0.3)
def _watch(entity: Entity, domain: Domain) -> list[_Plan]:
    status = _status(entity)
    events = ["created", "updated", "deleted"] + ([f"{status.name}_changed"] if status else [])
    noun, name = _noun(entity.name), f"subscribe_to_{entity.name}_updates"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"webhook_url": _string("Endpoint that receives the event POSTs."),
                 "events": _array(_choice(events, "An event type."), "Event types to deliver."),
                 f"{entity.name}_id": _string(f"Limit to one {noun}; all when omitted.")}
        return _tool(name, [
            f"Registers a webhook for {noun} events.",
            rng.choice(["Use it instead of polling.", "Deliveries are retried for 24 hours."]),
            "Returns the subscription id and the signing secret.",
        ], props, ["webhook_url", "events"])

    return [_Plan(name, build)]


@_action(weight=0.3)
def _import(entity: Entity, domain: Domain) -> list[_Plan]:
    noun_p, name = _noun(plural(entity.name)), f"import_{plural(entity.name)}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {"source_url": _string("Where to fetch the file from."),
                 "format": _choice(["csv", "json", "xlsx"], "Format of the file."),
                 "on_conflict": _choice(["skip", "update", "fail"],
                                        "What to do when a record already exists.", default="skip")}
        return _tool(name, [
            f"Imports {noun_p} in bulk from a file.",
            rng.choice(["Rows that fail validation are reported, not imported.",
                        "Use it for migrations and large batches."]),
            "Returns counts of created, updated and skipped records.",
        ], props, ["source_url"])

    return [_Plan(name, build)]


@_action(weight=0.4)
def _compare(entity: Entity, domain: Domain) -> list[_Plan]:
    numbers = [a.name for a in _numerics(entity)]
    if not numbers:
        return []
    noun_p, name, ids = _noun(plural(entity.name)), f"compare_{plural(entity.name)}", f"{entity.name}_ids"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {ids: _array({"type": "string"}, f"The {noun_p} to compare."),
                 "metrics": _array(_choice(numbers, "A numeric field."),
                                   "Fields to compare; all numeric fields when omitted.")}
        return _tool(name, [
            f"Compares several {noun_p} side by side.",
            rng.choice(["Use it when the user is choosing between options.",
                        "Highlights the best and worst value of each metric."]),
            "Returns a table with one column per record.",
        ], props, [ids])

    return [_Plan(name, build)]


@_action(weight=0.5)
def _assign(entity: Entity, domain: Domain) -> list[_Plan]:
    who = next((a for a in entity.attributes if a.name.endswith("_email") and not _is_system(a)), None)
    name = f"assign_{entity.name}"
    if who is None or name in {p.name for p in _transition(entity, domain)}:
        return []
    noun, key = _noun(entity.name), f"{entity.name}_id"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {key: _id_param(entity), who.name: who.schema(),
                 "note": _string("Message sent to the new assignee.")}
        return _tool(name, [
            f"Assigns {_a(noun)} to a person by `{who.name}`.",
            rng.choice(["The previous assignee is notified.", "Use it to hand work over."]),
            f"Returns the {noun} with its new assignee.",
        ], props, [key, who.name])

    return [_Plan(name, build)]


def _pair_ids(a: Entity, b: Entity) -> dict[str, Any]:
    return {f"{a.name}_id": _id_param(a), f"{b.name}_id": _id_param(b)}


@_cross_action
def _attach(a: Entity, b: Entity, domain: Domain) -> list[_Plan]:
    name, b_noun = f"attach_{a.name}_to_{b.name}", _noun(b.name)

    def build(rng: random.Random) -> dict[str, Any]:
        return _tool(name, [
            f"Links an existing {_noun(a.name)} to {_a(b_noun)}.",
            rng.choice(["Both records must exist; linking twice is a no-op.",
                        f"Use it to keep related records together, e.g. for reporting per {b_noun}."]),
            "Returns the link with both ids.",
        ], {**_pair_ids(a, b), "note": _string("Why they are linked.")}, [f"{a.name}_id", f"{b.name}_id"])

    return [_Plan(name, build)]


@_cross_action
def _detach(a: Entity, b: Entity, domain: Domain) -> list[_Plan]:
    name = f"detach_{a.name}_from_{b.name}"

    def build(rng: random.Random) -> dict[str, Any]:
        props = {**_pair_ids(a, b), "reason": _string("Why the link is removed.")}
        return _tool(name, [
            f"Removes the link between {_a(_noun(a.name))} and {_a(_noun(b.name))}.",
            "Neither record is deleted.", "Returns an acknowledgement.",
        ], props, [f"{a.name}_id", f"{b.name}_id"])

    return [_Plan(name, build)]


@_cross_action
def _list_for(a: Entity, b: Entity, domain: Domain) -> list[_Plan]:
    name, noun_p, b_noun = f"list_{plural(a.name)}_for_{b.name}", _noun(plural(a.name)), _noun(b.name)

    def build(rng: random.Random) -> dict[str, Any]:
        props = {f"{b.name}_id": _id_param(b), **_filter_props(a, 1), "limit": _limit_param(noun_p)}
        return _tool(name, [
            f"Lists the {noun_p} linked to {_a(b_noun)}.",
            rng.choice([f"Use it to see everything attached to one {b_noun}.",
                        "Results are newest first."]),
            f"Returns up to `limit` {noun_p}.",
        ], props, [f"{b.name}_id"])

    return [_Plan(name, build)]


def _mirror(name: str, a: Entity, b: Entity) -> str:
    """``attach_a_to_b`` ↔ ``attach_b_to_a`` (same for detach and list_for)."""
    swapped = {a.name: b.name, b.name: a.name, plural(a.name): plural(b.name),
               plural(b.name): plural(a.name)}
    pattern = "|".join(sorted(map(re.escape, swapped), key=len, reverse=True))
    return re.sub(pattern, lambda m: swapped[m[0]], name)


# -- seeds


def _weighted_order(plans: list[_Plan], rng: random.Random) -> list[_Plan]:
    """Weighted random order (Efraimidis–Spirakis keys): heavier plans tend to come first."""
    return sorted(plans, key=lambda p: -(rng.random() ** (1.0 / p.weight)))


def _offline_seed(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    domain = domain_by_slug(ctx["domain"])
    entities = list(domain.entities)
    rng.shuffle(entities)
    queues = [_weighted_order(_entity_plans(e, domain), rng) for e in entities]
    chosen: list[_Plan] = []
    names: set[str] = set()
    while len(chosen) < ctx["count"] and any(queues):
        for queue in queues:  # round-robin so every entity gets tools
            while queue and queue[0].name in names:
                queue.pop(0)
            if queue and len(chosen) < ctx["count"]:
                chosen.append(queue.pop(0))
                names.add(chosen[-1].name)
    return {"tools": [plan.build(rng) for plan in chosen]}


# -- in-breadth operations


def _fresh(plans: list[_Plan], existing: frozenset[str], rng: random.Random) -> dict[str, Any] | None:
    fresh = [p for p in plans if p.name not in existing]
    return rng.choice(fresh).build(rng) if fresh else None


def _any_fresh(domain: Domain, existing: frozenset[str], rng: random.Random) -> dict[str, Any]:
    plans = [p for e in domain.entities for p in _entity_plans(e, domain)]
    return _fresh(plans, existing, rng) or plans[0].build(rng)  # a duplicate the eliminator records


def _has_other_entity(tool: dict[str, Any], domain: Domain) -> bool:
    return len(domain.entities) > 1


@register_evol_op(
    "sibling_action", "breadth",
    "Write a sibling tool: a different action on the same resource as the tool shown "
    "(e.g. get → cancel, list → export, create → update).",
)
def _sibling_action(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                    existing: frozenset[str]) -> dict[str, Any]:
    return _fresh(_entity_plans(entity, domain), existing, rng) or _any_fresh(domain, existing, rng)


@register_evol_op(
    "other_entity", "breadth",
    "Write a tool for another resource of this domain than the one the tool shown acts on.",
    applies=_has_other_entity,
)
def _other_entity(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                  existing: frozenset[str]) -> dict[str, Any]:
    other = rng.choice([e for e in domain.entities if e.name != entity.name])
    return _fresh(_entity_plans(other, domain), existing, rng) or _any_fresh(domain, existing, rng)


@register_evol_op(
    "cross_entity", "breadth",
    "Write a tool that connects the resource of the tool shown with another resource of this "
    "domain (e.g. attach X to Y, list the Xs of a Y).",
    applies=_has_other_entity, weight=0.5,
)
def _cross_entity(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                  existing: frozenset[str]) -> dict[str, Any]:
    plans = [p for other in domain.entities if other.name != entity.name
             for p in _cross_plans(entity, other, domain) + _cross_plans(other, entity, domain)
             if _mirror(p.name, entity, other) not in existing]  # one direction per pair
    return _fresh(plans, existing, rng) or _any_fresh(domain, existing, rng)


# -- in-depth operations


def _is_read(tool: dict[str, Any]) -> bool:
    return tool["name"].startswith(tuple(f"{v}_" for v in _READ_VERBS))


def _props(tool: dict[str, Any]) -> dict[str, Any]:
    props = tool["parameters"].get("properties")
    return props if isinstance(props, dict) else {}


def _fields(params: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema) of every property, top level and one object level down."""
    for name, schema in (params.get("properties") or {}).items():
        if not isinstance(schema, dict):
            continue
        yield name, schema
        if schema.get("type") == "object":
            for sub, sub_schema in (schema.get("properties") or {}).items():
                if isinstance(sub_schema, dict):
                    yield f"{name}.{sub}", sub_schema


def _evolved(tool: dict[str, Any], params: dict[str, Any], sentence: str) -> dict[str, Any]:
    """The child: same name, the new parameters, the description plus one documenting sentence."""
    description = f"{tool['description'].rstrip()} {sentence}"
    return {"name": tool["name"], "description": description, "parameters": params}


def _params(tool: dict[str, Any]) -> dict[str, Any]:
    params = copy.deepcopy(tool["parameters"])
    params.setdefault("properties", {})
    return params


def _unconstrained(schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return "minimum" not in schema or "maximum" not in schema
    if kind == "string":
        return not any(k in schema for k in ("enum", "format", "pattern", "maxLength"))
    return kind == "array" and "maxItems" not in schema


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
        high = next((m for s, m in _MAXIMA if leaf.endswith(s)), rng.choice([1_000, 10_000, 1_000_000]))
        schema.setdefault("maximum", max(high, low))
        return f"`{path}` between {schema['minimum']} and {schema['maximum']}"
    if kind == "string":
        schema["minLength"] = 1
        schema["maxLength"] = next((m for s, m in _MAX_LENGTHS if leaf.endswith(s)),
                                   rng.choice([64, 128, 255]))
        return f"`{path}` at most {schema['maxLength']} characters"
    schema["minItems"], schema["maxItems"] = 1, rng.choice([10, 25, 50, 100])
    if isinstance(schema.get("items"), dict) and schema["items"].get("type") in ("string", "integer"):
        schema["uniqueItems"] = True
    return f"`{path}` with 1 to {schema['maxItems']} items"


@register_evol_op(
    "add_constraints", "depth",
    "Add constraints: tighten loosely typed parameters with bounds (minimum/maximum), string "
    "lengths or patterns, array sizes (minItems/maxItems/uniqueItems) or enums.",
    changes_semantics=False,
    applies=lambda tool, domain: any(_unconstrained(s) for _, s in _fields(tool["parameters"])),
)
def _add_constraints(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                     _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    targets = [(p, s) for p, s in _fields(params) if _unconstrained(s)]
    picks = rng.sample(targets, k=min(len(targets), rng.randint(1, 3)))
    notes = [_constrain(path, schema, rng) for path, schema in picks]
    return _evolved(tool, params, f"Limits: {'; '.join(notes)}.")


def _range(kind: str, what: str, fmt: str | None = None) -> dict[str, Any]:
    bound = {"type": kind} | ({"format": fmt} if fmt else {})
    low, high = ("from", "to") if fmt else ("min", "max")
    ends = {low: {**bound, "description": "Lower bound."}, high: {**bound, "description": "Upper bound."}}
    return _object(ends, f"Range of {what}; both ends optional and inclusive.")


def _add_filters(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    props, required = params["properties"], set(params.get("required") or [])
    movable = [n for n, s in props.items()
               if n not in required and s.get("enum") and n not in ("format", "metric", "group_by")]
    inner = {n: props.pop(n) for n in movable}
    when = next((a for a in entity.attributes if a.format == "date-time"), None)
    key = when.name if when else "created_at"
    inner[key] = _range("string", _noun(key), "date-time")
    number = next(iter(_numerics(entity)), None)
    if number is not None:
        inner[number.name] = _range(number.json_type, _noun(number.name))
    props["filters"] = _object(inner, "Conditions every result must meet; combined with AND.")
    return (f"Narrow the results with the nested `filters` object ({_code_list(list(inner))}); "
            "ranges take `from`/`to` or `min`/`max`.")


def _add_options(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    channels = _array(_choice(["email", "sms", "push"], "A channel."), "Channels to notify on.")
    notify = _object({"channels": channels,
                      "message": _string("Custom text added to the notification.")},
                     "Who hears about the change.")
    params["properties"]["options"] = _object(
        {"idempotency_key": _string("Reuse to make retries safe."), "notify": notify},
        "How the request is carried out.")
    return "The nested `options` object sets an idempotency key and who is notified (`options.notify`)."


def _add_text_filter(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    params["properties"]["filters"]["properties"]["text"] = _object(
        {"contains": _string("Substring to look for."),
         "case_sensitive": _boolean("Match case exactly.")},
        "Text matching on top of the other filters.")
    return "`filters.text` adds substring matching with optional case sensitivity."


def _add_audit(tool: dict[str, Any], entity: Entity, params: dict[str, Any]) -> str:
    params["properties"]["options"]["properties"]["audit"] = _object(
        {"reason": _string("Why the change is made."), "ticket_reference": _string("Related ticket.")},
        "Recorded in the audit log.")
    return "`options.audit` records a reason and a ticket reference in the audit log."


def _deepen_step(tool: dict[str, Any]) -> Callable[..., str] | None:
    """The next level of nesting for this tool: filters/options first, then one level deeper."""
    key, first, deeper, leaf = (("filters", _add_filters, _add_text_filter, "text") if _is_read(tool)
                                else ("options", _add_options, _add_audit, "audit"))
    holder = _props(tool).get(key)
    if holder is None:
        return first
    nested = holder.get("properties") if isinstance(holder, dict) else None
    return deeper if isinstance(nested, dict) and leaf not in nested else None


@register_evol_op(
    "deepen", "depth",
    "Deepen: restructure flat parameters into nested objects — a `filters` object with ranges "
    "for read tools, an `options` object (idempotency, notifications, audit) for write tools.",
    applies=lambda tool, domain: _deepen_step(tool) is not None,
)
def _deepen(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
            _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    return _evolved(tool, params, _deepen_step(tool)(tool, entity, params))


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


def _concrete(leaf: str, schema: dict[str, Any], domain: Domain, entity: Entity) -> dict[str, Any] | None:
    """The concrete typing a generic string property can take, or None."""
    if schema.get("type") != "string" or any(k in schema for k in ("enum", "format", "pattern")):
        return None
    if leaf.endswith("_id") and leaf[:-3] in {e.name for e in domain.entities}:
        return {"format": "uuid"}
    if leaf == "sort_by":  # ascending keys, and '-key' for descending
        keys = [a.name for a in entity.attributes if a.json_type != "array"][:4]
        return {"enum": keys + [f"-{k}" for k in keys]}
    return next((dict(spec) for matches, spec in _CONCRETE_RULES if matches(leaf)), None)


def _concrete_targets(tool: dict[str, Any], domain: Domain) -> list[tuple[str, dict, dict]]:
    entity = entity_of(tool["name"], domain)
    found = ((path, schema, _concrete(path.rsplit(".", 1)[-1], schema, domain, entity))
             for path, schema in _fields(tool["parameters"]))
    return [(path, schema, spec) for path, schema, spec in found if spec]


@register_evol_op(
    "concretize", "depth",
    "Concretize: replace generic string parameters with concrete types — enums of the allowed "
    "values, formats (date-time, date, email, uri, uuid, hostname) or patterns.",
    changes_semantics=False,
    applies=lambda tool, domain: bool(_concrete_targets(tool, domain)),
)
def _concretize(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    targets = _concrete_targets({**tool, "parameters": params}, domain)
    notes = []
    for path, schema, spec in rng.sample(targets, k=min(len(targets), rng.randint(1, 2))):
        schema.update(spec)
        enum = "one of " + ", ".join(spec["enum"][:4]) if "enum" in spec else "a pattern"
        notes.append(f"`{path}` is {spec.get('format') or enum}")
    return _evolved(tool, params, f"Typing: {'; '.join(notes)}.")


def _reasoning_steps(tool: dict[str, Any]) -> list[str]:
    props = _props(tool)
    if _is_read(tool):
        if "limit" in props and "cursor" not in props:
            return ["pagination"]
        counted = "limit" in props or tool["name"].startswith(("export_", "summarize_", "compare_"))
        return ["validate_only"] if counted and "validate_only" not in props else []
    return ["dry_run"] if "dry_run" not in props else (["two_phase"] if "mode" not in props else [])


def _add_step(step: str, params: dict[str, Any], noun: str) -> str:
    props = params["properties"]
    if step == "dry_run":
        props["dry_run"] = _boolean("Validate and return the would-be result without saving anything.")
        return f"Set `dry_run` to true to check the request and preview the resulting {noun} first."
    if step == "two_phase":
        props["mode"] = _choice(["preview", "confirm"], "`preview` returns a summary and a "
                                "confirmation token; `confirm` applies it.", default="preview")
        props["confirmation_token"] = _string("Token from the preview call; required with mode=confirm.")
        return ("Two steps: call with mode=preview to get a summary and a `confirmation_token`, then "
                "repeat with mode=confirm and that token to apply the change.")
    if step == "pagination":
        props["cursor"] = _string("Opaque cursor from the previous page's `next_cursor`.")
        return ("Results are paginated: `limit` is the page size; pass the `next_cursor` of one page "
                "as `cursor` to get the next.")
    props["validate_only"] = _boolean("Only check the request and return how many records it covers.")
    return "Set `validate_only` to check the request and count the records it covers before running it."


@register_evol_op(
    "add_reasoning_step", "depth",
    "Add a reasoning step the caller must plan for: a `dry_run` or `validate_only` flag, a "
    "two-phase preview/confirm protocol with a confirmation token, or cursor pagination.",
    applies=lambda tool, domain: bool(_reasoning_steps(tool)),
)
def _add_reasoning_step(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                        _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    sentence = _add_step(rng.choice(_reasoning_steps(tool)), params, _noun(entity.name))
    return _evolved(tool, params, sentence)


_NATURAL_KEYS = ("name", "title", "code", "sku", "symbol", "ticker", "email", "username", "handle",
                 "hostname", "vin", "plate_number", "iban", "isbn", "serial_number", "order_number")


def _natural_key(entity: Entity) -> Attribute | None:
    """A human-facing identifier of the entity (name, code, *_number …), if it has one."""
    return next((a for a in entity.attributes if a.json_type == "string"
                 and (a.name in _NATURAL_KEYS or a.name.endswith(("_number", "_code")))), None)


def _complications(tool: dict[str, Any], entity: Entity) -> list[str]:
    props, key = _props(tool), f"{entity.name}_id"
    out = []
    if key in props and key in (tool["parameters"].get("required") or []):
        out.append("target")
    if isinstance(props.get("sort_by"), dict):
        out.append("sort")
    creates = tool["name"].startswith(f"{_create_verb(entity)}_")
    if creates and sum(a.name in props for a in entity.attributes) >= 2:
        out.append("items")
    return out + ([] if "recipients" in props else ["recipients"])


def _target_by_id_or_key(entity: Entity, params: dict[str, Any]) -> str:
    props, noun, key = params["properties"], _noun(entity.name), f"{entity.name}_id"
    natural = _natural_key(entity)
    by_id = _object({key: props.pop(key)}, f"The {noun} by id.", [key])
    if natural is not None:
        other = _object({natural.name: natural.schema()}, f"The {noun} by {natural.name}.", [natural.name])
        alt = f"its `{natural.name}`"
    else:
        ids = _array({"type": "string"}, "Several records at once.", minItems=1)
        other, alt = _object({f"{key}s": ids}, f"Several {plural(noun)}.", [f"{key}s"]), f"a list of `{key}s`"
    which = f"Which {noun}: exactly one of the alternatives."
    props["target"] = {"oneOf": [by_id, other], "description": which}
    params["required"] = ["target" if r == key else r for r in params.get("required") or []]
    return f"Identify the {noun} through `target`: either by `{key}` or by {alt}."


def _multi_key_sort(entity: Entity, params: dict[str, Any]) -> str:
    fields = [a.name for a in entity.attributes if a.json_type != "array"]
    params["properties"].pop("sort_by")
    key = _object({"field": _choice(fields, "Field to sort on."),
                   "direction": _choice(["asc", "desc"], "Sort direction.", default="asc")},
                  "One sort key.", ["field"])
    params["properties"]["sort"] = _array(key, "Sort keys, most significant first.", maxItems=3)
    return "`sort` takes several keys, each with its own direction."


def _batch_items(entity: Entity, params: dict[str, Any]) -> str:
    props, required, noun = params["properties"], list(params.get("required") or []), _noun(entity.name)
    moved = {a.name: props.pop(a.name) for a in entity.attributes if a.name in props}
    item = _object(moved, f"One {noun}.", [r for r in required if r in moved])
    props["items"] = _array(item, f"The {plural(noun)} to create in one call.", minItems=1, maxItems=50)
    params["required"] = ["items"] + [r for r in required if r not in moved]
    return f"Accepts a batch: pass one or more {plural(noun)} in `items`; each is validated on its own."


def _recipient_list(entity: Entity, params: dict[str, Any]) -> str:
    recipient = _object({"channel": _choice(["email", "sms", "push", "webhook"], "Delivery channel."),
                         "address": _string("Email, phone, device or URL for that channel.")},
                        "One recipient.", ["channel", "address"])
    params["properties"]["recipients"] = _array(recipient, "Who is told about the result.", maxItems=20)
    return "Optionally send the result to `recipients`, each with a channel and an address."


_COMPLICATIONS = {"target": _target_by_id_or_key, "sort": _multi_key_sort, "items": _batch_items,
                  "recipients": _recipient_list}


@register_evol_op(
    "complicate_inputs", "depth",
    "Complicate the inputs: accept richer structures — arrays of objects (batches, multi-key "
    "sorting, recipient lists) or oneOf alternatives (identify a record by id or by another key).",
    applies=lambda tool, domain: bool(_complications(tool, entity_of(tool["name"], domain))),
)
def _complicate_inputs(tool: dict, domain: Domain, entity: Entity, rng: random.Random,
                       _existing: frozenset[str] = frozenset()) -> dict[str, Any]:
    params = _params(tool)
    kind = rng.choice(_complications(tool, entity))
    return _evolved(tool, params, _COMPLICATIONS[kind](entity, params))


# -- the offline role


def _rng(ctx: dict[str, Any]) -> random.Random:
    parent = (ctx.get("parent") or {}).get("name", "")
    key = f"{ctx.get('op', '')}:{ctx.get('round', 0)}:{ctx['domain']}/{parent}"
    return random.Random(f"{ctx['seed']}:{ctx['stage']}:{key}")


def _offline_evolve(ctx: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    domain = domain_by_slug(ctx["domain"])
    op = _OPS[f"{ctx['stage']}:{ctx['op']}"]
    parent, existing = ctx["parent"], frozenset(ctx.get("existing_names", []))
    return op.offline(parent, domain, entity_of(parent["name"], domain), rng, existing)


@offline_role(ROLE)
def offline_tool_evolver(request: ChatRequest) -> dict[str, Any]:
    """Deterministic stand-in for the tool-evolver model (see the section comment above)."""
    ctx = request.context
    rng = _rng(ctx)
    return _offline_seed(ctx, rng) if ctx["stage"] == "seed" else _offline_evolve(ctx, rng)
