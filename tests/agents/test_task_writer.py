"""The offline task writer's replay of a plan follows the world model where a rubric depends on
it: the same filter rule picks the same resources, and an update leaves the fields the rubric
checks as the world model leaves them (the world model only adds its clock fields)."""

from __future__ import annotations

import json

from kimi_pipeline.agents.offline.task_world import matching, simulate, view_of
from kimi_pipeline.envs.base import FaultConfig
from kimi_pipeline.envs.state import copy_json
from kimi_pipeline.envs.world import WorldModel
from kimi_pipeline.records import ToolCall, ToolSpec

NO_FAULTS = FaultConfig(
    transient_error_rate=0, partial_result_rate=0, empty_result_rate=0, edge_case_rate=0
)


def spec(name: str, props: dict, required=()) -> ToolSpec:
    parameters = {"type": "object", "properties": props, "required": list(required)}
    return ToolSpec(tool_id=f"synthetic:shop/{name}", name=name, description="",
                    parameters=parameters, source="synthetic", source_ref="test")


STRING = {"type": "string"}
TOOLS = [
    spec("list_orders", {"customer": STRING, "tag": STRING}),
    spec("update_order", {"order_id": STRING, "note": STRING}, ["order_id"]),
    spec("cancel_order", {"order_id": STRING}, ["order_id"]),
]
STATE = {
    "orders": {
        "ORD-1": {"customer": "Ada Lovelace", "tag": "vip", "status": "open"},
        "ORD-2": {"customer": "Ben Okafor", "tag": "eu", "status": "open"},
        "ORD-3": {"customer": "Adam Smith", "tag": "vip", "status": "pending"},
    }
}


def test_replay_and_world_model_pick_the_same_resources_and_leave_the_same_fields():
    world = WorldModel(NO_FAULTS)
    world.reset(TOOLS, STATE, seed=3)
    views = {t.name: view_of(t.model_dump()) for t in TOOLS}
    replay, new_ids = copy_json(STATE), []
    plan = [
        ("list_orders", {"customer": "ADA", "tag": "vip"}),
        ("list_orders", {"customer": "ada"}),
        ("cancel_order", {"order_id": "ORD-2"}),
        ("update_order", {"order_id": "ORD-1", "note": "call first"}),
    ]
    for name, args in plan:
        result = json.loads(world.step(ToolCall(id=name, name=name, arguments=args)).content)
        replayed = simulate(replay, views[name], args, new_ids)
        if name == "list_orders":
            listed = [r["id"] for r in result["orders"]]
            assert listed == [r["id"] for r in replayed["items"]]
            assert listed == matching(STATE["orders"], views[name], args)
    snapshot = world.snapshot()["orders"]
    for rid, fields in replay["orders"].items():
        assert {k: snapshot[rid][k] for k in fields} == fields, rid
