"""The stage contracts: JSON round-trip, frame round-trip, schema version, quarantine on read."""

import json

import polars as pl
import pytest
from pydantic import ValidationError

from kimi_pipeline import records as r


def _trajectory() -> r.Trajectory:
    rubric = r.TaskRubric(
        success_criteria=["order placed"],
        state_predicates=[r.StatePredicate(path="orders", op="count_equals", value=1)],
        required_facts=["ORD-1"],
        required_calls=[r.ExpectedCall(name="place_order", arguments={"qty": 2})],
        order_constraints=[("get_quote", "place_order")],
        difficulty="medium",
    )
    call = r.ToolCall(id="c1", name="place_order", arguments={"qty": 2})
    return r.Trajectory(
        trajectory_id="t1", task_id="k1", agent_id="a1",
        messages=[
            r.Message(role="system", content="You trade."),
            r.Message(role="user", content="Buy 2."),
            r.Message(role="assistant", tool_calls=[call]),
            r.Message(role="tool", tool_call_id="c1", name="place_order", content='{"id":"ORD-1"}'),
            r.Message(role="assistant", content="Done: ORD-1."),
        ],
        tools=[], initial_state={}, final_state={"orders": {"ORD-1": {}}}, rubric=rubric,
        outcome=r.TrajectoryOutcome(finished=True, end_reason="user satisfied"),
        persona="terse", environment="simulated", seed=3, backend="offline",
    )


EXAMPLES = [
    r.ToolSpec(tool_id="mcp:time/now", name="now", description="d", parameters={"type": "object"},
               source="mcp", source_ref="time/now"),
    r.Agent(agent_id="a1", category="c", domain="d", system_prompt="p", tool_ids=["x"], seed=1),
    _trajectory(),
    r.GymTask(task_id="g1", domain="math", prompt="1+1?", answer="2"),
    r.GymResult(task_id="g1", domain="math", response="2", reward=1.0, reason="equal"),
    r.PreferencePair(pair_id="p1", group_id="g1", domain="math", prompt="hi", chosen="a",
                     rejected="b", source="verifier"),
    r.OpenPrompt(prompt_id="o1", category="advice", prompt="How do I start running?",
                 source="seed"),
]


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda x: type(x).__name__)
def test_json_round_trip_is_lossless(record):
    again = type(record).from_json(record.to_json())
    assert again == record
    assert json.loads(record.to_json())["schema_version"] == r.SCHEMA_VERSION


@pytest.mark.parametrize("record", EXAMPLES, ids=lambda x: type(x).__name__)
def test_frame_round_trip_is_lossless(record):
    frame = r.to_frame([record, record], type(record))
    back, bad = r.from_frame(frame, type(record), stage="test")
    assert bad == [] and back == [record, record]


def test_nested_fields_are_json_columns_and_scalars_are_typed():
    frame = r.to_frame([_trajectory()], r.Trajectory)
    assert frame.schema["messages"] == pl.Utf8 and frame.schema["seed"] == pl.Int64
    assert json.loads(frame["messages"][0])[2]["tool_calls"][0]["arguments"] == {"qty": 2}


def test_empty_frame_keeps_its_columns():
    assert r.to_frame([], r.ToolSpec).columns == list(r.ToolSpec.model_fields)


def test_other_major_schema_version_is_refused_with_reason():
    with pytest.raises(ValidationError, match="re-run the stage"):
        r.GymTask(task_id="g", domain="math", prompt="?", schema_version="2.0")


def test_unknown_keys_are_refused():
    with pytest.raises(ValidationError, match="extra"):
        r.GymTask(task_id="g", domain="math", prompt="?", colour="red")


def test_bad_rows_are_quarantined_with_reason_not_dropped():
    frame = r.to_frame([EXAMPLES[0]], r.ToolSpec)
    broken = pl.concat([frame, frame.with_columns(pl.lit("teleport").alias("source"))])
    good, bad = r.from_frame(broken, r.ToolSpec, stage="tool_repo")
    assert len(good) == 1 and len(bad) == 1
    assert "source" in bad[0].reason and "teleport" in bad[0].original


def test_split_valid_keeps_a_frame_and_quarantines_bad_rows_by_position():
    frame = r.to_frame([EXAMPLES[0]] * 7, r.ToolSpec)
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 5).then(pl.lit("{not json")).otherwise(pl.col("parameters"))
        .alias("parameters")
    )
    kept, bad = r.split_valid(broken, r.ToolSpec, stage="test", batch=3)
    assert kept.height == 6 and [q.source_ref for q in bad] == ["ToolSpec row 5"]
