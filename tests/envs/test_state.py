"""The task/world contract: predicate checks, the filter rule and the update rule that the world
model and the offline task writer's replay share."""

from __future__ import annotations

from kimi_pipeline.envs.state import (
    check_predicate,
    copy_json,
    filter_fields,
    matches,
    update_resource,
)
from kimi_pipeline.records import StatePredicate


def test_check_predicate_follows_the_task_contract():
    state = {
        "orders": {"ORD-1": {"status": "cancelled", "tags": ["vip"], "qty": 2}},
        "files": {"notes/a.md": {"content": "hello TICKET-1"}},
    }
    holds = [
        StatePredicate(path="orders.ORD-1", op="equals", field="status", value="cancelled"),
        StatePredicate(path="orders", op="count_equals", value=1),
        StatePredicate(path="users", op="count_equals", value=0),  # a missing collection counts 0
        StatePredicate(path="orders.ORD-2", op="absent"),
        StatePredicate(path="orders.ORD-1", op="absent", field="missing"),
        StatePredicate(path="files.notes/a.md", op="contains", field="content", value="TICKET-1"),
        StatePredicate(path="orders.ORD-1", op="contains", field="tags", value="vip"),
        StatePredicate(path="orders", op="contains", value={"status": "cancelled", "qty": 2}),
    ]
    failed = [p for p in holds if not check_predicate(state, p)]
    assert not failed
    fails = [
        StatePredicate(path="orders.ORD-1", op="equals", field="status", value="active"),
        StatePredicate(path="orders.ORD-1", op="exists", field="missing"),
        StatePredicate(path="orders", op="contains", value={"status": "cancelled", "qty": 3}),
        StatePredicate(path="files.notes/a.md", op="contains", field="content", value="TICKET-2"),
    ]
    assert not any(check_predicate(state, p) for p in fails)


def test_filters_match_substrings_members_and_equal_values_and_skip_unknown_fields():
    record = {"customer": "Ada Lovelace", "tags": ["vip", "eu"], "qty": 2}
    wanted = {"customer": "ada", "tags": "vip", "qty": 2}
    assert matches(record, wanted, ("customer", "tags", "qty"))
    assert matches(record, {"region": "us"}, ("region",))  # no such field: does not filter
    assert matches(record, {"qty": 3}, ())  # an argument outside ``params`` does not filter
    assert not matches(record, {"qty": 3}, ("qty",))
    assert not matches(record, {"tags": "us"}, ("tags",))
    resources = {"A": record, "B": {"status": "open"}, "C": "not a record"}
    args = {"qty": 1, "status": "x", "q": "y"}
    assert filter_fields(args, ("q", "status", "qty"), resources) == ("status", "qty")


def test_update_sets_fields_then_the_verbs_status_and_copies_are_deep():
    record = {"status": "open", "note": "a"}
    update_resource(record, {"note": "b", "status": "pending"}, "cancelled")
    assert record == {"status": "cancelled", "note": "b"}
    update_resource(record, {"note": "c"}, None)
    assert record == {"status": "cancelled", "note": "c"}
    state = {"orders": {"O-1": {"tags": ["x"]}}}
    copied = copy_json(state)
    copied["orders"]["O-1"]["tags"].append("y")
    assert state == {"orders": {"O-1": {"tags": ["x"]}}}
