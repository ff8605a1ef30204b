"""Hierarchical generation, Evol operations, the eliminator, determinism and the remote path."""

from __future__ import annotations

import asyncio
import copy
import json
import random
import subprocess
import sys

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from kimi_pipeline.llm.base import ChatRequest, ChatResponse
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.tools.config import EvolveConfig
from kimi_pipeline.tools.evol_ops import entity_of, evol_ops, get_op
from kimi_pipeline.tools.evolve import (
    NAME_RE,
    eliminate,
    evolve_synthetic_tools,
    parse_json_reply,
    parse_tool,
    schema_problem,
    seed_request,
    select_domains,
)
from kimi_pipeline.tools.offline.tool_evolver import offline_op, offline_tool_evolver
from kimi_pipeline.tools.taxonomy import domain_by_slug

SMALL = {"max_categories": 3, "max_domains_per_category": 2, "tools_per_domain": 5}
TOOL_KEYS = {"name", "description", "parameters", "category", "domain", "evolution", "lineage"}


def _run(**overrides):
    return evolve_synthetic_tools(OfflineBackend(), EvolveConfig(**{**SMALL, **overrides}))


@pytest.fixture(scope="module")
def seeds():
    """Seed tools of 8 domains (no evolution) — the inputs of the op tests."""
    result = _run(max_categories=4, depth_rounds=0, breadth_rounds=0, tools_per_domain=8)
    return result.tools


def _check_schema(schema):
    Draft202012Validator.check_schema(schema)


# ------------------------------------------------------------------------------ generation


def test_seed_tools_are_valid_and_counted(seeds):
    domains = select_domains(EvolveConfig(max_categories=4, max_domains_per_category=2))
    assert len(seeds) == len(domains) * 8
    for tool in seeds:
        assert set(tool) == TOOL_KEYS
        assert NAME_RE.match(tool["name"]) and len(tool["description"]) >= 20
        assert tool["parameters"]["type"] == "object"
        _check_schema(tool["parameters"])
        assert set(tool["parameters"]["required"]) <= set(tool["parameters"]["properties"])
        assert tool["evolution"] == ["seed"]
        assert tool["lineage"] == f"{tool['domain']}/{tool['name']}"
        assert domain_by_slug(tool["domain"]).category == tool["category"]


def test_seed_tools_cover_entities_and_read_like_docs(seeds):
    for slug in {t["domain"] for t in seeds}:
        domain = domain_by_slug(slug)
        names = [t["name"] for t in seeds if t["domain"] == slug]
        assert len(set(names)) == len(names)
        covered = {entity_of(n, domain).name for n in names}
        assert covered == {e.name for e in domain.entities}  # round-robin over entities
    descriptions = [t["description"] for t in seeds]
    assert sum("Returns" in d or "Responds" in d for d in descriptions) > 0.8 * len(descriptions)
    all_params = [p for t in seeds for p in t["parameters"]["properties"].values()]
    assert any("enum" in p for p in all_params) and any("format" in p for p in all_params)
    assert any(p.get("type") == "array" for p in all_params)


def test_full_run_records_lineage_and_evolution():
    result = _run(depth_rounds=1, breadth_rounds=1)
    stats = result.stats
    assert stats["tools"] == len(result.tools) == stats["seed_kept"] + stats["breadth_kept"]
    assert stats["rejected"] == len(result.rejected)
    assert stats["requests"] == stats["domains"] + stats["depth_candidates"] + stats["breadth_candidates"]
    for tool in result.tools:
        _check_schema(tool["parameters"])
        first = tool["evolution"][0]
        assert first == "seed" or first.startswith("breadth:")
        if first == "seed":
            assert tool["evolution"][1].startswith("depth:")  # the depth child replaced its seed
    by_domain = {}
    for tool in result.tools:
        by_domain.setdefault(tool["domain"], []).append(tool["name"])
    assert all(len(set(names)) == len(names) for names in by_domain.values())
    for rejection in result.rejected:
        assert rejection.reason.split(":", 1)[0] == "duplicate_name" and rejection.op.startswith("breadth:")


def test_default_config_yields_over_3000_tools():
    result = evolve_synthetic_tools(OfflineBackend(), EvolveConfig())
    assert result.stats["categories"] >= 24 and result.stats["domains"] >= 240
    assert len(result.tools) >= 3000


def test_deterministic_and_seed_sensitive():
    first, second = _run(seed=7), _run(seed=7)
    assert json.dumps(first.tools) == json.dumps(second.tools)
    assert [r.reason for r in first.rejected] == [r.reason for r in second.rejected]
    assert first.stats == second.stats
    assert json.dumps(_run(seed=8).tools) != json.dumps(first.tools)


def test_disabled_or_limited():
    assert _run(enabled=False).tools == []
    limits = {"max_categories": 1, "max_domains_per_category": 1}
    result = _run(**limits, depth_rounds=0, breadth_rounds=0)
    assert {t["domain"] for t in result.tools} == {select_domains(EvolveConfig(**limits))[0].slug}
    assert len(result.tools) == SMALL["tools_per_domain"]


# ------------------------------------------------------------------------------ evol operations


def _nodes(schema):
    """Every (path, node) of a parameters schema, through properties, items and oneOf."""
    stack = [("", schema)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield path, node
        for name, child in (node.get("properties") or {}).items():
            stack.append((f"{path}.{name}", child))
        stack.append((f"{path}[]", node.get("items")))
        for i, child in enumerate(node.get("oneOf") or []):
            stack.append((f"{path}|{i}", child))


CONSTRAINTS = ("minimum", "maximum", "minLength", "maxLength", "pattern", "enum",
               "minItems", "maxItems", "uniqueItems")
TYPING = {"enum", "format", "pattern"}


def _gained_constraint(parent, child):
    before = dict(_nodes(parent))
    return any(k in node and k not in before.get(path, {}) for path, node in _nodes(child)
               if path in before for k in CONSTRAINTS)


def _object_nodes(schema):
    return sum(1 for _, node in _nodes(schema) if node.get("type") == "object" and node.get("properties"))


def _concretized(parent, child):
    before = dict(_nodes(parent))
    generic = {p for p, n in before.items() if n.get("type") == "string" and not TYPING & set(n)}
    return any(p in generic and TYPING & set(n) for p, n in _nodes(child))


def _reasoning_flag(parent, child):
    added = set(child["properties"]) - set(parent["properties"])
    return bool(added & {"dry_run", "validate_only", "cursor"}) or {"mode", "confirmation_token"} <= added


def _complicated(parent, child):
    def shapes(schema):
        def rich(n):
            return "oneOf" in n or (n.get("type") == "array" and (n.get("items") or {}).get("type") == "object")
        return {p for p, n in _nodes(schema) if rich(n)}
    return bool(shapes(child) - shapes(parent))


DECLARED = {
    "depth:add_constraints": _gained_constraint,
    "depth:deepen": lambda p, c: _object_nodes(c) > _object_nodes(p),
    "depth:concretize": _concretized,
    "depth:add_reasoning_step": _reasoning_flag,
    "depth:complicate_inputs": _complicated,
}


@pytest.mark.parametrize("label", sorted(DECLARED))
def test_each_depth_op_changes_the_schema_in_its_declared_way(seeds, label):
    op = get_op(label)
    applied = 0
    for tool in seeds:
        domain = domain_by_slug(tool["domain"])
        if not op.applies(tool, domain):
            continue
        before = copy.deepcopy(tool)
        entity = entity_of(tool["name"], domain)
        child = offline_op(label)(tool, domain, entity, random.Random(applied))
        assert tool == before  # the parent is never mutated
        assert DECLARED[label](tool["parameters"], child["parameters"]), (label, tool["name"])
        assert eliminate(child, taken=set(), parent=tool, op=label) is None, (label, child)
        applied += 1
    assert applied >= 10, label


def test_every_declared_op_has_an_offline_implementation():
    for op in evol_ops("depth") + evol_ops("breadth"):
        assert callable(offline_op(op.label)), op.label


def test_the_driver_does_not_load_the_offline_program():
    code = ("import sys, kimi_pipeline.tools.evolve; "
            "print('kimi_pipeline.tools.offline.tool_evolver' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_seed_has_an_applicable_depth_op(seeds):
    for tool in seeds:
        domain = domain_by_slug(tool["domain"])
        assert any(op.applies(tool, domain) for op in evol_ops("depth")), tool["name"]


def test_depth_ops_compose_over_rounds():
    result = _run(depth_rounds=3, breadth_rounds=0)
    assert max(len(t["evolution"]) for t in result.tools) == 4
    for tool in result.tools:
        _check_schema(tool["parameters"])


def test_breadth_ops_make_neighbouring_tools(seeds):
    domain = domain_by_slug(seeds[0]["domain"])
    parents = [t for t in seeds if t["domain"] == domain.slug]
    existing = frozenset(t["name"] for t in parents)
    for parent in parents:
        entity = entity_of(parent["name"], domain)
        for label in ("breadth:sibling_action", "breadth:other_entity", "breadth:cross_entity"):
            child = offline_op(label)(parent, domain, entity, random.Random(1), existing)
            assert child["name"] not in existing
            assert eliminate(child, taken=set(existing), parent=parent, op=label) is None
            if label == "breadth:sibling_action":
                assert entity_of(child["name"], domain).name == entity.name
            elif label == "breadth:other_entity":
                assert entity_of(child["name"], domain).name != entity.name
            else:  # names both entities: attach_x_to_y, detach_x_from_y, list_xs_for_y
                assert sum(e.name in child["name"] for e in domain.entities) >= 2, child["name"]


# ------------------------------------------------------------------------------ the eliminator


def _valid(**overrides):
    tool = {
        "name": "list_open_orders",
        "description": "Lists open orders of the account, newest first.",
        "parameters": _obj(limit={"type": "integer"}),
    }
    return {**tool, **overrides}


def _obj(required=None, **props):
    return {"type": "object", "properties": props, **({"required": required} if required else {})}


WIDE = {f"p{i}": {"type": "string"} for i in range(21)}
REASONING = _obj(limit={"type": "integer"}, cursor={"type": "string"})


@pytest.mark.parametrize(
    ("candidate", "kwargs", "code"),
    [
        (_valid(name="ListOrders"), {}, "invalid_name"),
        (_valid(name="x"), {}, "invalid_name"),
        (_valid(description="Lists."), {}, "short_description"),
        (_valid(parameters=_obj(a={"type": "strin"})), {}, "invalid_schema"),
        (_valid(parameters={"type": "array", "items": {}}), {}, "invalid_schema"),
        (_valid(parameters=_obj(a={"type": "string", "pattern": "(["})), {}, "invalid_schema"),
        (_valid(parameters=_obj(**WIDE)), {}, "too_many_properties"),
        (_valid(parameters=_obj(required=["b"], a={"type": "string"})), {}, "required_not_in_properties"),
        (_valid(), {"taken": {"list_open_orders"}}, "duplicate_name"),
        (_valid(), {"parent": _valid(description="Older text, same schema."), "op": "depth:deepen"},
         "unchanged_schema"),
        (_valid(parameters=REASONING), {"parent": _valid(), "op": "depth:add_reasoning_step"},
         "unchanged_description"),
        (_valid(name="get_order"), {"parent": _valid(), "op": "breadth:sibling_action"},
         "unchanged_description"),
    ],
)
def test_eliminator_reasons(candidate, kwargs, code):
    reason = eliminate(candidate, **kwargs)
    assert reason is not None and reason.split(":", 1)[0] == code, reason


def test_eliminator_keeps_good_candidates():
    assert eliminate(_valid()) is None
    tightened = _valid(parameters=_obj(limit={"type": "integer", "maximum": 100}))
    # add_constraints does not change what the tool does: the description may stay
    assert eliminate(tightened, parent=_valid(), op="depth:add_constraints") is None
    # a depth child keeps its own name: only the other names of the domain count
    assert eliminate(tightened, taken={"get_order"}, parent=_valid(), op="depth:add_constraints") is None


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "minLength": -1}}},
        {"type": "object", "required": ["a", "a"]},
        {"type": "object", "properties": {"a": {"enum": "x"}}},
        {"type": "object", "properties": {"a": {"oneOf": [{"type": "nope"}]}}},
        {"type": "object", "properties": {"a": {"items": [{"type": "string"}]}}},
        {"type": "object", "properties": {"a": {"multipleOf": 0}}},
        {"type": "object", "properties": {"a": {"description": 3}}},
        {"type": "object", "properties": {"a": {"type": "string", "format": "date", "default": [1]}}},
        {"type": "object", "properties": {"a": {"type": "array", "items": {"$ref": "#/$defs/x"}}},
         "$defs": {"x": {"type": "integer", "maximum": 3}}},
    ],
)
def test_memoised_metaschema_check_agrees_with_check_schema(schema):
    try:
        Draft202012Validator.check_schema(schema)
        expected = None
    except SchemaError:
        expected = "invalid"
    assert (schema_problem(schema) is None) == (expected is None)


# ------------------------------------------------------------------------------ protocol and remote path


def test_requests_carry_prompt_and_context():
    domain = domain_by_slug("equity_trading")
    request = seed_request(domain, 3, seed=5)
    assert request.role == "tool_evolver" and request.response_format == "json"
    assert [m["role"] for m in request.messages] == ["system", "user"]
    user = request.messages[1]["content"]
    assert "Equity trading" in user and "order:" in user and '"tools"' in user
    assert request.context == {"stage": "seed", "seed": 5, "domain": "equity_trading", "count": 3}
    assert offline_tool_evolver(request) == offline_tool_evolver(request)  # deterministic
    assert len(offline_tool_evolver(request)["tools"]) == 3


def test_reply_parsing():
    ok, reason = parse_json_reply(ChatResponse(content='```json\n{"a": 1}\n```'))
    assert ok == {"a": 1} and reason is None
    assert parse_json_reply(ChatResponse(content="{nope"))[1].startswith("unparseable:")
    assert parse_json_reply(ChatResponse(content=None, error="timeout"))[1] == "backend_error: timeout"
    tool = {"name": "get_x", "description": "Gets the x record by id.", "parameters": {"type": "object"}}
    assert parse_tool({"tool": tool})[0]["name"] == "get_x"
    assert parse_tool({"type": "function", "function": tool})[0]["name"] == "get_x"
    assert parse_tool({"name": "get_x"})[1].startswith("missing_fields:")
    assert parse_tool({**tool, "parameters": "{}"})[1].startswith("bad_fields:")
    assert parse_tool([tool])[1].startswith("missing_fields:")


SEED_A = {"name": "get_order", "description": "Retrieves one order by its id; returns the order.",
          "parameters": _obj(required=["order_id"], order_id={"type": "string"})}
SEED_B = {"name": "list_orders", "description": "Lists orders, newest first; returns a page of orders.",
          "parameters": _obj(limit={"type": "integer"})}
NEW = {"name": "export_orders", "description": "Exports orders to CSV; returns a URL.", "parameters": _obj()}


class CannedEndpointDouble:
    """Test double of an OpenAI-compatible backend: async, replies with canned JSON text."""

    name = "openai"

    def __init__(self):
        self.requests: list[ChatRequest] = []

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        await asyncio.sleep(0)
        self.requests.append(request)
        ctx = request.context
        if ctx["stage"] == "seed":
            seeds = json.dumps({"tools": [SEED_A, SEED_B, {"name": "oops"}]})
            return ChatResponse(content=f"```json\n{seeds}\n```")  # fenced, one item incomplete
        parent = ctx["parent"]["name"]
        if ctx["stage"] == "depth" and parent == "get_order":
            return ChatResponse(content="Sure! Here is the evolved tool: {name: get_order")  # malformed
        if ctx["stage"] == "depth":
            evolved = copy.deepcopy(SEED_B)
            evolved["parameters"]["properties"]["limit"].update(minimum=1, maximum=100)
            evolved["description"] += " `limit` is between 1 and 100."
            return ChatResponse(content=json.dumps(evolved))
        if parent == "get_order":
            return ChatResponse(content=None, error="RateLimitError: retries exhausted")
        return ChatResponse(content=json.dumps(NEW))


def test_remote_backend_path_parses_replies_and_records_failures():
    backend = CannedEndpointDouble()
    config = EvolveConfig(max_categories=1, max_domains_per_category=1, tools_per_domain=2,
                          depth_rounds=1, breadth_rounds=1)
    result = evolve_synthetic_tools(backend, config)
    tools = {t["name"]: t for t in result.tools}
    assert set(tools) == {"get_order", "list_orders", "export_orders"}
    assert tools["get_order"]["evolution"] == ["seed"]  # its evolution failed: the parent stays
    assert tools["list_orders"]["parameters"]["properties"]["limit"]["maximum"] == 100
    evolution = tools["list_orders"]["evolution"]
    assert evolution[0] == "seed" and evolution[1].startswith("depth:")
    assert tools["export_orders"]["lineage"].endswith("/list_orders")
    codes = {(r.op.split(":")[0], r.reason.split(":", 1)[0]) for r in result.rejected}
    assert codes == {("seed", "missing_fields"), ("depth", "unparseable"), ("breadth", "backend_error")}
    malformed = next(r for r in result.rejected if r.reason.startswith("unparseable"))
    assert malformed.candidate.startswith("Sure!")
    assert all(r.role == "tool_evolver" and r.response_format == "json" for r in backend.requests)
    assert {r.context["stage"] for r in backend.requests} == {"seed", "depth", "breadth"}
    assert result.stats["requests"] == len(backend.requests) == 5
