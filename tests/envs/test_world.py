"""The world model: stateful CRUD, schema validation, seeded faults, output schemas, robustness."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from kimi_pipeline.envs.base import FaultConfig, make_environment
from kimi_pipeline.envs.state import EVENTS_COLLECTION
from kimi_pipeline.envs.world import WorldModel
from kimi_pipeline.records import ToolCall, ToolSpec

NO_FAULTS = FaultConfig(
    transient_error_rate=0, partial_result_rate=0, empty_result_rate=0, edge_case_rate=0
)


def tool(name: str, props: dict, required=(), output=None, description: str = "") -> ToolSpec:
    return ToolSpec(
        tool_id=f"synthetic:shop/{name}",
        name=name,
        description=description,
        parameters={"type": "object", "properties": props, "required": list(required)},
        output_schema=output,
        source="synthetic",
        source_ref="test",
    )


ORDER_OUT = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "cancelled", "shipped"]},
        "qty": {"type": "integer", "minimum": 1},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}, "minItems": 1},
        "note": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 12}]},
    },
    "required": ["order_id", "status", "lines"],
    "additionalProperties": False,
    "$defs": {
        "line": {
            "type": "object",
            "properties": {
                "sku": {"type": "string", "pattern": "^[a-z]+-\\d+$"},
                "price": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["sku", "price"],
        }
    },
}

TOOLS = [
    tool(
        "create_order",
        {
            "customer": {"type": "string"},
            "qty": {"type": "integer", "minimum": 1},
            "channel": {"type": "string", "enum": ["web", "phone"], "default": "web"},
        },
        ["customer"],
    ),
    tool("get_order", {"order_id": {"type": "string"}}, ["order_id"]),
    tool(
        "get_order_typed",
        {"order_id": {"type": "string"}},
        ["order_id"],
        output=ORDER_OUT,
        description="Get one order.",
    ),
    tool(
        "list_orders",
        {
            "customer": {"type": "string"},
            "status": {"type": "string"},
            "limit": {"type": "integer", "minimum": 0},
        },
    ),
    tool(
        "cancel_order", {"order_id": {"type": "string"}, "reason": {"type": "string"}}, ["order_id"]
    ),
    tool(
        "update_order", {"order_id": {"type": "string"}, "qty": {"type": "integer"}}, ["order_id"]
    ),
    tool("delete_order", {"order_id": {"type": "string"}}, ["order_id"]),
    tool("get_current_time", {"timezone": {"type": "string"}}, ["timezone"]),
    tool("get_account_balance", {"account_id": {"type": "string"}}, ["account_id"]),
    tool(
        "send_email",
        {"to": {"type": "string", "format": "email"}, "body": {"type": "string"}},
        ["to"],
    ),
    tool(
        "search_products",
        {"query": {"type": "string"}, "limit": {"type": "integer"}},
        output={
            "type": "object",
            "properties": {
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "name": {"type": "string"},
                            "price": {"type": "number"},
                        },
                        "required": ["id", "name", "price"],
                    },
                },
                "total": {"type": "integer"},
            },
            "required": ["results", "total"],
        },
    ),
]


def call(env, name: str, **arguments):
    result = env.step(ToolCall(id="c", name=name, arguments=arguments))
    return result, json.loads(result.content)


@pytest.fixture
def env() -> WorldModel:
    world = make_environment("simulated", NO_FAULTS)
    world.reset(
        TOOLS, {"orders": {"ORD-1": {"customer": "Ada", "qty": 1, "status": "active"}}}, seed=7
    )
    return world


def test_create_then_read_and_list_see_it(env):
    result, created = call(env, "create_order", customer="Grace Hopper", qty=3)
    assert result.ok and created["id"].startswith("ORD-") and created["channel"] == "web"
    _, read = call(env, "get_order", order_id=created["id"])
    assert read["customer"] == "Grace Hopper" and read["qty"] == 3
    _, listed = call(env, "list_orders", customer="grace")
    assert [o["id"] for o in listed["orders"]] == [created["id"]]
    _, everything = call(env, "list_orders", limit=1)
    assert everything["count"] == 1 and everything["total"] == 2
    assert env.snapshot()["orders"][created["id"]]["customer"] == "Grace Hopper"


def test_update_and_cancel_change_state(env):
    _, updated = call(env, "update_order", order_id="ORD-1", qty=5)
    assert updated["qty"] == 5
    result, cancelled = call(env, "cancel_order", order_id="ORD-1", reason="changed mind")
    assert result.ok and cancelled["status"] == "cancelled"
    state = env.snapshot()["orders"]["ORD-1"]
    assert (
        state["status"] == "cancelled" and state["qty"] == 5 and state["reason"] == "changed mind"
    )
    result, body = call(env, "cancel_order", order_id="ORD-404")
    assert not result.ok and result.error == "not_found" and body["error"]["code"] == 404


def test_delete_then_read_is_404(env):
    assert call(env, "delete_order", order_id="ORD-1")[0].ok
    result, body = call(env, "get_order", order_id="ORD-1")
    assert (result.ok, result.error, body["error"]["code"]) == (False, "not_found", 404)
    assert call(env, "delete_order", order_id="ORD-1")[0].error == "not_found"
    assert "ORD-1" not in env.snapshot()["orders"]


def test_state_persists_within_and_resets_between_episodes(env):
    initial = {"orders": {"ORD-1": {"customer": "Ada", "qty": 1, "status": "active"}}}
    env.reset(TOOLS, initial, seed=1)
    _, created = call(env, "create_order", customer="Linus")
    call(env, "cancel_order", order_id="ORD-1")
    assert set(env.snapshot()["orders"]) == {"ORD-1", created["id"]}
    env.reset(TOOLS, initial, seed=1)
    assert env.snapshot() == initial
    assert initial["orders"]["ORD-1"]["status"] == "active"  # the task's state is never mutated


def test_snapshot_is_a_json_copy(env):
    snap = env.snapshot()
    json.dumps(snap)
    snap["orders"].clear()
    assert "ORD-1" in env.snapshot()["orders"]


@pytest.mark.parametrize(
    "arguments, path, fragment",
    [
        ({"qty": 1}, "$.customer", "required"),
        ({"customer": 5}, "$.customer", "not of type"),
        ({"customer": "x", "channel": "fax"}, "$.channel", "is not one of"),
        ({"customer": "x", "qty": 0}, "$.qty", "minimum"),
    ],
)
def test_bad_arguments_get_400_with_path(env, arguments, path, fragment):
    result, body = call(env, "create_order", **arguments)
    assert not result.ok and result.error == "invalid_arguments"
    assert body["error"]["code"] == 400 and body["error"]["path"] == path
    assert fragment in body["error"]["message"]
    assert len(env.snapshot()["orders"]) == 1  # nothing was created


def test_unknown_tool_and_raw_arguments(env):
    result, body = call(env, "launch_rocket")
    assert (result.error, body["error"]["code"], body["error"]["type"]) == (
        "unknown_tool",
        404,
        "unknown_tool",
    )
    bad = env.step(ToolCall(id="x", name="get_order", raw_arguments='{"order_id": "ORD-1"'))
    assert bad.error == "invalid_json" and json.loads(bad.content)["error"]["code"] == 400


def test_open_world_read_is_generated_then_consistent(env):
    _, first = call(env, "get_account_balance", account_id="ACC-9")
    _, second = call(env, "get_account_balance", account_id="ACC-9")
    assert first == second and isinstance(first["balance"], float)
    assert "ACC-9" in env.snapshot()["balances"]


def test_read_without_id_follows_arguments(env):
    _, now = call(env, "get_current_time", timezone="Asia/Tokyo")
    assert now["timezone"] == "Asia/Tokyo" and now["datetime"].endswith("+09:00")


def test_action_records_an_event(env):
    result, ack = call(env, "send_email", to="bob@example.com", body="hi")
    assert result.ok and ack["status"] == "ok"
    event = env.snapshot()[EVENTS_COLLECTION][ack["event_id"]]
    assert event["to"] == "bob@example.com" and event["tool"] == "send_email"
    assert call(env, "send_email", to="not-an-email")[0].error == "invalid_arguments"


def run_episode(seed: int, faults: FaultConfig, n: int = 40) -> list[str]:
    world = WorldModel(faults)
    world.reset(TOOLS, {"orders": {}}, seed=seed)
    out = []
    for i in range(n):
        name, args = [
            ("create_order", {"customer": f"c{i}"}),
            ("list_orders", {}),
            ("get_current_time", {"timezone": "UTC"}),
        ][i % 3]
        result = world.step(ToolCall(id=str(i), name=name, arguments=args))
        out.append(f"{result.fault}|{result.content}")
    return out


def test_same_seed_same_episode():
    faults = FaultConfig(
        transient_error_rate=0.2, partial_result_rate=0.2, empty_result_rate=0.2, edge_case_rate=0.2
    )
    assert run_episode(3, faults) == run_episode(3, faults)
    assert run_episode(3, faults) != run_episode(4, faults)


def fault_counts(faults: FaultConfig, name: str, args: dict, n: int = 2000) -> dict:
    world = WorldModel(faults)
    world.reset(TOOLS, {"orders": {f"ORD-{i}": {"customer": "Ada"} for i in range(4)}}, seed=11)
    counts: dict = {}
    for i in range(n):
        fault = world.step(ToolCall(id=str(i), name=name, arguments=args)).fault
        counts[fault] = counts.get(fault, 0) + 1
    return counts


def test_fault_rates_are_roughly_honoured():
    counts = fault_counts(
        NO_FAULTS.model_copy(update={"transient_error_rate": 0.2}),
        "get_order",
        {"order_id": "ORD-1"},
    )
    assert 0.16 < counts.get("transient", 0) / 2000 < 0.24
    counts = fault_counts(
        NO_FAULTS.model_copy(update={"empty_result_rate": 0.1, "partial_result_rate": 0.1}),
        "list_orders",
        {},
    )
    assert 0.07 < counts.get("empty", 0) / 2000 < 0.13
    assert 0.06 < counts.get("partial", 0) / 2000 < 0.13  # drawn after empty: 0.1 * 0.9
    assert fault_counts(NO_FAULTS, "list_orders", {}) == {None: 2000}


def test_transient_error_is_retryable_and_changes_nothing():
    world = WorldModel(NO_FAULTS.model_copy(update={"transient_error_rate": 1.0}))
    world.reset(TOOLS, {"orders": {}}, seed=0)
    result, body = call(world, "create_order", customer="x")
    assert body == {
        "error": {
            "code": 503,
            "type": "transient",
            "message": body["error"]["message"],
            "retryable": True,
        }
    }
    assert result.fault == "transient" and world.snapshot() == {"orders": {}}


def test_scripted_faults_fire_exactly_at_call_index(env):
    env.reset(
        TOOLS,
        {"orders": {"ORD-1": {"customer": "Ada"}}},
        seed=2,
        scripted_faults=[
            {"tool": "get_order", "call_index": 1, "fault": "transient"},
            {"tool": "list_orders", "call_index": 0, "fault": "empty"},
            {"tool": "get_order", "call_index": 2, "fault": "rate_limit"},
        ],
    )
    faults = [call(env, "get_order", order_id="ORD-1")[0].fault for _ in range(4)]
    assert faults == [None, "transient", "rate_limit", None]
    result, body = call(env, "list_orders")
    assert result.ok and result.fault == "empty" and body["orders"] == []
    assert call(env, "list_orders")[1]["count"] == 1


def test_partial_list_is_flagged():
    world = WorldModel(NO_FAULTS)
    world.reset(
        TOOLS,
        {"orders": {f"ORD-{i}": {"customer": "Ada"} for i in range(6)}},
        seed=0,
        scripted_faults=[{"tool": "list_orders", "call_index": 0, "fault": "partial"}],
    )
    result, body = call(world, "list_orders")
    assert (
        result.fault == "partial"
        and body["partial"] is True
        and body["count"] == 3
        and body["total"] == 6
    )


@pytest.mark.parametrize("edge", [0.0, 1.0])
def test_results_conform_to_output_schema(edge):
    world = WorldModel(NO_FAULTS.model_copy(update={"edge_case_rate": edge}))
    validators = {t.name: Draft202012Validator(t.output_schema) for t in TOOLS if t.output_schema}
    seen_edge = False
    for seed in range(40):
        world.reset(
            TOOLS,
            {"orders": {"ORD-1": {"customer": "Ada", "qty": 0, "status": "weird"}}},
            seed=seed,
        )
        for name, args in [
            ("get_order_typed", {"order_id": "ORD-1"}),
            ("search_products", {"query": "lamp"}),
        ]:
            result, body = call(world, name, **args)
            assert result.ok, body
            errors = list(validators[name].iter_errors(body))
            assert not errors, (name, body, errors[0].message)
            seen_edge |= result.fault == "edge_case"
    assert seen_edge == (edge == 1.0)


def test_broken_schema_is_a_simulator_error_not_an_exception():
    broken = tool("get_thing", {"thing_id": {"$ref": "#/$defs/missing"}}, ["thing_id"])
    weird_type = tool("make_thing", {"size": {"type": "long"}})
    world = WorldModel(NO_FAULTS)
    world.reset([broken, weird_type], {}, seed=0)
    for name, args in [("get_thing", {"thing_id": "x"}), ("make_thing", {"size": 3})]:
        result, body = call(world, name, **args)
        assert (result.ok, result.error, body["error"]["code"]) == (False, "simulator_error", 500)


# ------------------------------------------------------------------------- robustness (hypothesis)

NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,30}", fullmatch=True)
SCALAR_SCHEMAS = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])}
    ),
    st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "format": st.sampled_from(["email", "date", "date-time", "uuid", "uri"]),
            "maxLength": st.integers(0, 5),
            "minLength": st.integers(0, 3),
            "pattern": st.just("^[a-z]+$"),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["integer", "number"])},
        optional={
            "minimum": st.integers(-5, 5),
            "maximum": st.integers(5, 50),
            "multipleOf": st.sampled_from([2, 0.5]),
        },
    ),
    st.fixed_dictionaries(
        {"enum": st.lists(st.one_of(st.text(max_size=4), st.integers()), min_size=1, max_size=3)}
    ),
    st.fixed_dictionaries(
        {"$ref": st.sampled_from(["#", "#/$defs/x", "http://nowhere/s.json", "#/properties"])}
    ),
    st.dictionaries(
        st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=4), st.none()), max_size=3
    ),
)
SCHEMAS = st.recursive(
    SCALAR_SCHEMAS,
    lambda inner: st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(NAMES, inner, max_size=4)},
            optional={
                "required": st.lists(NAMES, max_size=3),
                "additionalProperties": st.booleans(),
            },
        ),
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": inner},
            optional={"minItems": st.integers(0, 2), "maxItems": st.integers(0, 4)},
        ),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=2)}),
    ),
    max_leaves=8,
)
VERB_NAMES = st.builds(
    lambda v, n: f"{v}_{n}",
    st.sampled_from(
        ["get", "list", "create", "update", "cancel", "delete", "send", "search", "do"]
    ),
    st.sampled_from(["order", "orders", "user_by_email", "time", "thing", "x"]),
)
JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_specs_and_calls_never_raise(data):
    specs = []
    for i in range(data.draw(st.integers(1, 3))):
        params = data.draw(
            st.fixed_dictionaries(
                {
                    "type": st.just("object"),
                    "properties": st.dictionaries(NAMES, SCHEMAS, max_size=4),
                },
                optional={
                    "required": st.lists(NAMES, max_size=2),
                    "$defs": st.fixed_dictionaries({"x": SCHEMAS}),
                },
            )
        )
        specs.append(
            ToolSpec(
                tool_id=f"synthetic:fuzz/{i}",
                name=data.draw(st.one_of(NAMES, VERB_NAMES)),
                description=data.draw(st.text(max_size=20)),
                parameters=params,
                output_schema=data.draw(st.one_of(st.none(), SCHEMAS)),
                source="synthetic",
                source_ref="fuzz",
            )
        )
    faults = FaultConfig(
        transient_error_rate=0.1, partial_result_rate=0.2, empty_result_rate=0.1, edge_case_rate=0.3
    )
    world = WorldModel(faults)
    world.reset(
        specs,
        data.draw(st.dictionaries(NAMES, st.dictionaries(NAMES, JSON, max_size=2), max_size=2)),
        seed=data.draw(st.integers(0, 2**32)),
    )
    for _ in range(data.draw(st.integers(1, 4))):
        spec = data.draw(st.sampled_from(specs))
        args = data.draw(
            st.one_of(
                st.dictionaries(st.text(max_size=6), JSON, max_size=3), st.builds(dict, st.just(()))
            )
        )
        raw = data.draw(st.one_of(st.none(), st.text(max_size=5)))
        result = world.step(ToolCall(id="f", name=spec.name, arguments=args, raw_arguments=raw))
        body = json.loads(result.content)
        assert isinstance(result.ok, bool) and (result.ok or "error" in body)
    json.dumps(world.snapshot())


def test_speed(capsys):
    """Not an assertion on speed: prints calls/s for the record."""
    world = WorldModel(FaultConfig())
    initial = {
        "orders": {f"ORD-{i}": {"customer": "Ada", "qty": i, "status": "active"} for i in range(5)}
    }
    plan = [
        ("get_order", {"order_id": "ORD-1"}),
        ("cancel_order", {"order_id": "ORD-2"}),
        ("list_orders", {"customer": "ada", "limit": 3}),
        ("get_order_typed", {"order_id": "ORD-3"}),
    ]
    calls = [ToolCall(id=str(i), name=n, arguments=a) for i, (n, a) in enumerate(plan)]
    start, episodes = time.perf_counter(), 1500
    for seed in range(episodes):
        world.reset(TOOLS, initial, seed=seed)
        for c in calls[seed % 2 : seed % 2 + 3]:
            world.step(c)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(
            f"\nworld model: {episodes * 3 / elapsed:,.0f} calls/s "
            f"({episodes} episodes, 3 calls each, "
            f"{elapsed / episodes * 1e3:.2f} ms/episode)"
        )
