"""Format and execution checks: each problem found, with its code and details."""

import json

import pytest

from kimi_pipeline.judge.format_checks import FORMAT_CHECKS, check_format, validator
from kimi_pipeline.records import Message, TaskRubric, ToolCall, to_rows
from tests.judge.test_rubric import (
    TOOLS,
    calls,
    cancel_dialogue,
    error,
    result,
    say,
    trajectory,
    user,
)

RUBRIC = TaskRubric(difficulty="easy")


def with_messages(*messages):
    return trajectory(list(messages), RUBRIC)


def test_a_well_formed_trajectory_has_no_problems():
    assert check_format(cancel_dialogue()) == []
    assert set(FORMAT_CHECKS) == {
        "tool_names",
        "arguments",
        "tool_results",
        "role_order",
        "empty_assistant",
        "final_turn",
        "execution",
    }


def test_unknown_tool():
    t = with_messages(
        user("launch"),
        calls(("c0", "launch_rocket", {})),
        error("c0", "launch_rocket", "unknown_tool"),
        say("Sorry, I cannot."),
    )
    assert check_format(t) == [
        "unknown_tool: c0 launch_rocket",
        "tool_error: unknown_tool from launch_rocket (message 3)",
    ]


@pytest.mark.parametrize(
    "arguments, detail",
    [
        ({}, "'order_id' is a required property"),
        ({"order_id": 7}, "7 is not of type 'string' at /order_id"),
        ({"order_id": "ORD-1", "colour": "red"}, "Additional properties are not allowed"),
    ],
)
def test_arguments_must_validate_against_the_schema(arguments, detail):
    t = with_messages(
        user("cancel"),
        calls(("c0", "cancel_order", arguments)),
        result("c0", "cancel_order", {"id": "ORD-1"}),
        say("Order ORD-1 is now cancelled."),
    )
    problems = check_format(t)
    assert len(problems) == 1 and problems[0].startswith("invalid_arguments: c0 cancel_order: ")
    assert detail in problems[0]


def test_unparseable_arguments_and_refused_calls():
    bad_json = Message(
        role="assistant", tool_calls=[ToolCall(id="c0", name="get_order", raw_arguments="{oops")]
    )
    t = with_messages(
        user("show ORD-1"),
        bad_json,
        error("c0", "get_order", "invalid_json"),
        say("Sorry, I'm unable to look it up."),
    )
    assert check_format(t) == [
        "invalid_json: c0 get_order",
        "tool_error: invalid_json from get_order (message 3)",
    ]


def test_a_refused_call_the_agent_corrects_next_is_not_a_problem():
    # a 404 answered by a lookup of the right id, a 400 by the call with its argument
    fixed = with_messages(
        user("cancel ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-9"})),
        error("c0", "get_order", "not_found"),
        calls(("c1", "get_order", {"order_id": "ORD-1"})),
        result("c1", "get_order", {"id": "ORD-1"}),
        calls(("c2", "cancel_order", {})),
        error("c2", "cancel_order", "invalid_arguments"),
        calls(("c3", "cancel_order", {"order_id": "ORD-1"})),
        result("c3", "cancel_order", {"id": "ORD-1"}),
        say("Order ORD-1 is now cancelled."),
    )
    assert check_format(fixed) == []
    renamed = with_messages(  # a tool that does not exist, then the one that does
        user("show ORD-1"),
        calls(("c0", "get_orders", {"order_id": "ORD-1"})),
        error("c0", "get_orders", "unknown_tool"),
        calls(("c1", "get_order", {"order_id": "ORD-1"})),
        result("c1", "get_order", {"id": "ORD-1"}),
        say("Order ORD-1 is on its way."),
    )
    assert check_format(renamed) == []
    # resent unchanged, answered only after the user spoke, or followed by a call that fails
    # too: each refusal stays a problem
    for after in (
        [calls(("c1", "cancel_order", {})), error("c1", "cancel_order", "invalid_arguments")],
        [say("Which order?"), user("ORD-1"), calls(("c1", "cancel_order", {"order_id": "ORD-1"})),
         result("c1", "cancel_order", {"id": "ORD-1"})],
        [calls(("c1", "cancel_order", {"order_id": "ORD-2"})),
         error("c1", "cancel_order", "not_found")],
    ):
        t = with_messages(
            user("cancel ORD-1"),
            calls(("c0", "cancel_order", {})),
            error("c0", "cancel_order", "invalid_arguments"),
            *after,
            say("Done."),
        )
        assert "tool_error: invalid_arguments from cancel_order (message 3)" in check_format(t)


def test_every_call_needs_exactly_one_result():
    t = with_messages(
        user("cancel"),
        calls(
            ("c0", "get_order", {"order_id": "ORD-1"}),
            ("c1", "cancel_order", {"order_id": "ORD-1"}),
        ),
        result("c0", "get_order", {"id": "ORD-1"}),
        result("c0", "get_order", {"id": "ORD-1"}),
        result("c9", "get_order", {"id": "ORD-1"}),
        say("Order ORD-1 is now cancelled."),
    )
    assert check_format(t) == [
        "duplicate_result: c0 answered by messages 3 and 4",
        "orphan_result: message 5 answers unknown call c9",
        "missing_result: c1 cancel_order",
    ]


def test_roles_must_be_well_ordered():
    t = with_messages(
        user("cancel"),
        user("now!"),
        result("c5", "get_order", {}),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        say("Here it is."),
        say("ORD-1 is open."),
    )
    problems = [p for p in check_format(t) if p.startswith("role_order")]
    assert problems == [
        "role_order: user at message 2 after user",
        "role_order: tool at message 3 after user",
        "role_order: assistant at message 5 after assistant+calls",
        "role_order: assistant at message 6 after assistant",
    ]


def test_empty_assistant_turn_and_final_turn():
    t = with_messages(user("cancel"), say("  "), user("hello?"))
    assert check_format(t) == [
        "empty_assistant: message 2",
        "final_turn: the dialogue ends with user, not the assistant",
    ]
    cut = with_messages(
        user("cancel"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        result("c0", "get_order", {"id": "ORD-1"}),
        calls(("c1", "cancel_order", {"order_id": "ORD-1"})),
    )
    assert check_format(cut) == [
        "missing_result: c1 cancel_order",
        "final_turn: the last assistant turn is a tool call, not an answer",
    ]


def test_frame_rows_are_checked_like_records_and_validators_are_cached():
    t = with_messages(
        user("cancel"),
        calls(("c0", "cancel_order", {})),
        result("c0", "cancel_order", {"id": "ORD-1"}),
        say("Done: ORD-1 cancelled."),
    )
    assert check_format(to_rows([t])[0]) == check_format(t) != []
    schema = TOOLS[1]["function"]["parameters"]
    assert validator(schema) is validator(json.loads(json.dumps(schema)))
