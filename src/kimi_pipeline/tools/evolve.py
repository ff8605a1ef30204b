"""Synthetic tools by hierarchical domain generation and Evol-style evolution (K2 §3.1, stage 1).

K2 grows its synthetic tool repository top-down: key categories → specific application
domains → tools drafted per domain, then evolves them in the spirit of WizardLM Evol-Instruct
and lets an *eliminator* drop the evolutions that failed. This module is the driver that runs
exactly that:

1. the taxonomy (``tools.taxonomy``) gives categories and domains (limited by the config);
2. a **seed** round asks for ``tools_per_domain`` tools per domain;
3. ``depth_rounds`` of **in-depth** evolution rewrite every tool with one Evol operation (add
   constraints, deepen, concretize, add a reasoning step, complicate inputs); a surviving
   child replaces its parent, a failed one leaves the parent as it was;
4. ``breadth_rounds`` of **in-breadth** evolution add one neighbouring tool per tool (a sibling
   action on the same entity, an action on another entity, or a cross-entity action);
5. the eliminator checks every candidate (JSON Schema validity, name, duplicates, no-op
   evolutions, degenerate specs) and records each drop as a ``Rejection`` with its reason.

Every step is one ``tool_evolver`` request through the LLM protocol: the messages a real model
could follow plus the structured ``context`` they were rendered from; a round's requests go out
together through ``complete_many`` so remote backends run them concurrently. The operations
(their instructions and which tools each applies to) are declared in ``tools.evol_ops``; the
offline program that answers the requests without a model lives in
``tools.offline.tool_evolver``.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many
from kimi_pipeline.tools.config import EvolveConfig
from kimi_pipeline.tools.evol_ops import EvolOp, changes_semantics, evol_ops
from kimi_pipeline.tools.taxonomy import Attribute, ToolDomain, category_by_slug, load_taxonomy

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
            return (f"too_many_properties: an object schema has {count} > {MAX_PROPERTIES} "
                    "properties")
    return None


def _check_required(tool: dict[str, Any], **_: Any) -> str | None:
    for node in _subschemas(tool["parameters"]):
        if "properties" in node or node is tool["parameters"]:
            declared = node.get("properties") or {}
            missing = [r for r in node.get("required") or [] if r not in declared]
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
    if parent is None or not changes_semantics(op):
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


def _entity_lines(domain: ToolDomain) -> str:
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


def _domain_header(domain: ToolDomain) -> str:
    category = category_by_slug(domain.category)
    return (
        f"Category: {category.title} — {category.description}\n"
        f"ToolDomain: {domain.title} — {domain.description}\n"
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


def seed_request(domain: ToolDomain, count: int, seed: int) -> ChatRequest:
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


def depth_request(
    domain: ToolDomain, parent: dict[str, Any], op: EvolOp, round_: int, seed: int
) -> ChatRequest:
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
    domain: ToolDomain, parent: dict[str, Any], op: EvolOp, existing: list[str], round_: int,
    seed: int,
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
            expected = "string" if kind is str else "JSON object"
            return None, f"bad_fields: {key!r} must be a {expected}"
    return {"name": value["name"].strip(), "description": value["description"].strip(),
            "parameters": value["parameters"]}, None


def _seed_items(value: Any) -> tuple[list[Any], str | None]:
    items = value.get("tools") if isinstance(value, dict) else value
    if not isinstance(items, list):
        return [], 'missing_fields: expected {"tools": [...]}'
    return items, None


# ------------------------------------------------------------------------------ the driver


def select_domains(config: EvolveConfig) -> list[ToolDomain]:
    """Categories → domains, cut to ``max_categories`` × ``max_domains_per_category``."""
    categories = load_taxonomy()[: config.max_categories or None]
    return [d for c in categories for d in c.domains[: config.max_domains_per_category or None]]


def _choose(seed: int, key: str, options: list[EvolOp]) -> EvolOp | None:
    if not options:
        return None
    return random.Random(f"{seed}:choose:{key}").choices(options, [op.weight for op in options])[0]


class _Run:
    """One evolution run: the pool (domain → name → tool), the rejections and the counters."""

    def __init__(self, backend: ChatBackend, config: EvolveConfig, domains: list[ToolDomain]):
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

    def record(
        self, domain: ToolDomain, draft: dict, evolution: list[str], parent_name: str
    ) -> dict:
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

    def _admit_reply(self, domain: ToolDomain, reply: ChatResponse, parent: dict, op: str) -> None:
        value, reason = parse_json_reply(reply)
        if reason:
            self.reject(reply.content or "", reason, op)
            return
        self._admit(domain, value, parent, op)

    def _admit(self, domain: ToolDomain, value: Any, parent: dict | None, op: str) -> None:
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
