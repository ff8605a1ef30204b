"""The SQLite environment: real queries and writes, SQLite's own refusals, snapshot, tasks."""

from __future__ import annotations

import json

import pytest

from kimi_pipeline.envs.state import resolve_arguments
from kimi_pipeline.envs.base import FaultConfig, make_environment
from kimi_pipeline.envs.sqlite_env import TOOLS, SqliteEnvironment, write_tasks
from kimi_pipeline.envs.state import check_predicate
from kimi_pipeline.records import ToolCall

NO_FAULTS = FaultConfig(
    transient_error_rate=0, partial_result_rate=0, empty_result_rate=0, edge_case_rate=0
)
STATE = {
    "customers": {
        "CUS-1": {"name": "Ada", "vip": True, "tags": ["a", "b"]},
        "CUS-2": {"name": "Ben", "vip": False, "tags": []},
    },
    "orders": {
        "ORD-1": {"customer_id": "CUS-1", "total": 12.5, "qty": 2, "status": "pending"},
        "ORD-2": {
            "customer_id": "CUS-2",
            "total": 3,
            "qty": 1,
            "status": "shipped",
            "note": "fragile",
        },
    },
}


def call(env, name: str, **arguments):
    result = env.step(ToolCall(id="c", name=name, arguments=arguments))
    return result, json.loads(result.content)


@pytest.fixture
def env():
    db = make_environment("sqlite", NO_FAULTS)
    db.reset([], STATE, seed=0)
    yield db
    db.close()


def test_tools_are_namespaced_environment_tools():
    assert [t.tool_id for t in TOOLS] == [
        "env:sqlite/list_tables",
        "env:sqlite/describe_table",
        "env:sqlite/run_sql_query",
        "env:sqlite/execute_sql",
    ]
    assert all(t.source == "environment" for t in TOOLS)


def test_snapshot_round_trips_initial_state(env):
    assert env.snapshot() == STATE


def test_list_describe_and_query(env):
    _, tables = call(env, "list_tables")
    assert tables["tables"] == [
        {"name": "customers", "row_count": 2},
        {"name": "orders", "row_count": 2},
    ]
    _, info = call(env, "describe_table", table="orders")
    assert {c["name"]: c["type"] for c in info["columns"]}["total"] == "REAL"
    assert call(env, "describe_table", table="nope")[0].error == "not_found"
    result, rows = call(
        env,
        "run_sql_query",
        sql="SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.total > ? ORDER BY o.id",
        params=[5],
    )
    assert result.ok and rows["rows"] == [{"id": "ORD-1", "name": "Ada"}] and not rows["truncated"]


def test_writes_change_the_snapshot(env):
    result, body = call(
        env,
        "execute_sql",
        sql="UPDATE orders SET status = :s WHERE id = :id",
        params={"s": "cancelled", "id": "ORD-1"},
    )
    assert result.ok and body["rows_affected"] == 1
    _, inserted = call(
        env, "execute_sql", sql="INSERT INTO orders (id, total) VALUES ('ORD-3', 9) RETURNING id"
    )
    assert inserted["rows"] == [{"id": "ORD-3"}]
    call(env, "execute_sql", sql="DELETE FROM orders WHERE id = 'ORD-2'")
    orders = env.snapshot()["orders"]
    assert (
        orders["ORD-1"]["status"] == "cancelled"
        and orders["ORD-3"] == {"total": 9.0}
        and "ORD-2" not in orders
    )


@pytest.mark.parametrize(
    "tool, sql, fragment",
    [
        ("run_sql_query", "UPDATE orders SET status = 'x'", "readonly"),
        ("run_sql_query", "DELETE FROM orders", "readonly"),
        ("execute_sql", "DROP TABLE orders", "not authorized"),
        ("execute_sql", "CREATE TABLE audit (who TEXT)", "not authorized"),
        ("execute_sql", "ATTACH DATABASE '/tmp/other.db' AS other", "not authorized"),
        ("execute_sql", "PRAGMA writable_schema = ON", "not authorized"),
        ("execute_sql", "BEGIN", "not authorized"),
        ("run_sql_query", "SELECT 1; DROP TABLE orders", "one statement at a time"),
        ("execute_sql", "UPDATE orders SET qty = 0; DELETE FROM orders", "one statement at a time"),
        ("run_sql_query", "SELEC * FROM orders", "syntax error"),
        ("execute_sql", "INSERT INTO orders (total) VALUES (1)", "NOT NULL"),
    ],
)
def test_refusals_are_sqlite_errors_and_change_nothing(env, tool, sql, fragment):
    result, body = call(env, tool, sql=sql)
    assert (
        not result.ok
        and body["error"]["type"] == "sql_error"
        and fragment in body["error"]["message"]
    )
    assert env.snapshot() == STATE
    assert call(env, "run_sql_query", sql="SELECT COUNT(*) AS n FROM orders")[1]["rows"] == [
        {"n": 2}
    ]


def test_runaway_query_times_out():
    db = SqliteEnvironment(NO_FAULTS, timeout_s=0.2)
    db.reset([], STATE, seed=0)
    result, body = call(
        db,
        "run_sql_query",
        sql="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT MAX(x) FROM c",
    )
    assert (result.ok, body["error"]["type"], body["error"]["code"]) == (False, "timeout", 408)
    assert call(db, "list_tables")[0].ok  # the connection is usable afterwards
    db.close()


def test_row_cap_truncates():
    db = SqliteEnvironment(NO_FAULTS, row_cap=5)
    db.reset([], {"t": {str(i): {"v": i} for i in range(20)}}, seed=0)
    _, body = call(db, "run_sql_query", sql="SELECT * FROM t")
    assert body["row_count"] == 5 and body["truncated"] is True


def test_bad_arguments_are_validated(env):
    result, body = call(env, "run_sql_query", sql="SELECT 1", params=[[1]])
    assert result.error == "invalid_arguments" and body["error"]["path"].startswith("$.params")
    assert call(env, "run_sql_query")[0].error == "invalid_arguments"
    assert call(env, "drop_database")[0].error == "unknown_tool"


def test_written_tasks_replay_to_their_predicates():
    tasks = write_tasks("agent-db", seed=5, n=24)
    assert {t.kind for t in tasks} == {"single_call", "chained", "conditional", "unsupported"}
    assert len({t.request for t in tasks}) > 12
    db = SqliteEnvironment(NO_FAULTS)
    for task in tasks:
        db.reset([], task.initial_state, seed=task.seed)
        results = []
        for step in task.plan:
            result = db.step(
                ToolCall(id="p", name=step.name, arguments=resolve_arguments(step.arguments, results))
            )
            assert result.ok, (task.request, result.content)
            results.append(json.loads(result.content))
        failed = [p for p in task.rubric.state_predicates if not check_predicate(db.snapshot(), p)]
        assert not failed, (task.request, failed)
        assert task.rubric.state_predicates and (
            task.plan or task.rubric.expected_outcome == "refuse_unsupported"
        )
    db.close()
    assert write_tasks("agent-db", 5, 3) == write_tasks("agent-db", 5, 3)
