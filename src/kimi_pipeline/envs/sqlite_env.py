"""A real SQLite database as a tool environment, for tasks where authenticity matters.

K2 replaces simulation by real execution where it counts. Here the agent's SQL really runs: each
episode builds an in-memory ``sqlite3`` database from the task's ``initial_state`` (collection →
table, resource → row keyed by ``id``), and the agent gets four tools (:data:`TOOLS`). Safety is
enforced by SQLite itself, so refusals carry SQLite's own messages:

- ``run_sql_query`` runs under ``PRAGMA query_only`` (writes: "attempt to write a readonly
  database");
- an authorizer (``set_authorizer``) admits only SELECT / INSERT / UPDATE / DELETE and reads, so
  DDL, ATTACH, PRAGMA and transactions are "not authorized"; the driver refuses multi-statement
  strings ("You can only execute one statement at a time.");
- a progress handler interrupts statements past :data:`TIMEOUT_S`, results stop at
  :data:`ROW_CAP` rows, and values are capped at :data:`MAX_VALUE_BYTES`.

SQLite errors are tool results (``{"error": {"type": "sql_error", ...}}``), never exceptions.
``snapshot()`` dumps the tables back to the canonical state, with booleans and JSON values
restored. :func:`write_tasks` writes executable tasks with rubrics over a seeded shop database.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from kimi_pipeline.envs.base import (
    CompiledTool,
    FaultConfig,
    StepResult,
    ToolEnvironment,
    environment_tool,
    error_result,
    ok_result,
    register_environment,
)
from kimi_pipeline.envs.task_templates import (
    TaskTemplate,
    call,
    predicate,
    refusal,
    write_environment_tasks,
)
from kimi_pipeline.records import Task, ToolSpec

ROW_CAP = 200  # rows a query returns at most (more are flagged 'truncated')
TIMEOUT_S = 1.0  # wall time one statement may run
MAX_VALUE_BYTES = 1_000_000  # SQLITE_LIMIT_LENGTH: longest string / blob a statement may build
MAX_SQL_CHARS = 10_000

_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}
_PARAMS = {
    "description": "Values bound to '?' (array) or ':name' (object) placeholders.",
    "anyOf": [
        {"type": "array", "items": _SCALAR},
        {"type": "object", "additionalProperties": _SCALAR},
    ],
}
_SQL = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_SQL_CHARS,
    "description": "One SQL statement.",
}


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> ToolSpec:
    return environment_tool("sqlite", name, description, properties, required)


TOOLS: list[ToolSpec] = [
    _tool("list_tables", "List the tables of the database with their row counts.", {}, []),
    _tool(
        "describe_table",
        "Describe a table: its columns, their types and the row count.",
        {"table": {"type": "string", "description": "Table name."}},
        ["table"],
    ),
    _tool(
        "run_sql_query",
        f"Run one read-only SQL SELECT statement and return its rows (at most {ROW_CAP}). "
        "Use '?' placeholders with params for values.",
        {"sql": _SQL, "params": _PARAMS},
        ["sql"],
    ),
    _tool(
        "execute_sql",
        "Run one SQL INSERT, UPDATE or DELETE statement and return the number of rows affected "
        "(rows too with a RETURNING clause). Schema changes, ATTACH, PRAGMA and transactions "
        "are not allowed.",
        {"sql": _SQL, "params": _PARAMS},
        ["sql"],
    ),
]

# authorizer actions a statement may perform; anything else (DDL, ATTACH, PRAGMA …) is denied
_ALLOWED = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    getattr(sqlite3, "SQLITE_RECURSIVE", 33),
    sqlite3.SQLITE_INSERT,
    sqlite3.SQLITE_UPDATE,
    sqlite3.SQLITE_DELETE,
}
_ACTION_NAMES = {
    getattr(sqlite3, f"SQLITE_{n}"): n
    for n in (
        "CREATE_INDEX CREATE_TABLE CREATE_TEMP_INDEX CREATE_TEMP_TABLE CREATE_TEMP_TRIGGER "
        "CREATE_TEMP_VIEW CREATE_TRIGGER CREATE_VIEW DROP_INDEX DROP_TABLE DROP_TEMP_INDEX "
        "DROP_TEMP_TABLE DROP_TEMP_TRIGGER DROP_TEMP_VIEW DROP_TRIGGER DROP_VIEW PRAGMA "
        "TRANSACTION "
        "ATTACH DETACH ALTER_TABLE REINDEX ANALYZE CREATE_VTABLE DROP_VTABLE SAVEPOINT"
    ).split()
}

# kind of a column's values -> declared SQL type
SQL_TYPES = {
    "int": "INTEGER",
    "real": "REAL",
    "text": "TEXT",
    "bool": "INTEGER",
    "json": "TEXT",
    "mixed": "",
    "null": "",
}


def _q(identifier: str) -> str:
    return '"' + str(identifier).replace('"', '""') + '"'


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "real", str: "text"}.get(type(value), "json")


def _merge_kind(old: str | None, new: str) -> str:
    if old in (None, "null", new):
        return new
    if new == "null":
        return old
    return "real" if {old, new} == {"int", "real"} else "mixed"


def _encode(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


DECODERS: dict[str, Callable[[Any], Any]] = {
    "bool": lambda v: bool(v) if isinstance(v, int) else v,
    "json": lambda v: _loads_or(v),
}


def _loads_or(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value


@register_environment("sqlite")
class SqliteEnvironment(ToolEnvironment):
    """In-memory SQLite per episode; the agent's SQL really runs, under SQLite's guards."""

    kind = "sqlite"

    def __init__(
        self,
        faults: FaultConfig | None = None,
        row_cap: int = ROW_CAP,
        timeout_s: float = TIMEOUT_S,
    ):
        super().__init__(faults)
        self.row_cap, self.timeout_s = row_cap, timeout_s
        self.conn: sqlite3.Connection | None = None
        self.decoders: dict[str, dict[str, str]] = {}  # table -> column -> bool/json
        self.load_problems: list[str] = []  # parts of initial_state that could not become tables

    def _bundle(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        return TOOLS  # the environment serves its own tools, whatever bundle is passed

    def _load_state(self, initial_state: dict[str, Any]) -> None:
        self.close()
        self.conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        self.decoders, self.load_problems = {}, []
        for table, rows in initial_state.items():
            if isinstance(rows, dict):
                self._create_table(str(table), rows)

    def _create_table(self, table: str, rows: dict[str, Any]) -> None:
        records = {str(k): r for k, r in rows.items() if isinstance(r, dict)}
        kinds: dict[str, str] = {}
        for record in records.values():
            for column, value in record.items():
                if column != "id":
                    kinds[column] = _merge_kind(kinds.get(column), _kind(value))
        columns = list(kinds)
        declared = [f"{_q('id')} TEXT PRIMARY KEY NOT NULL"] + [
            f"{_q(c)} {SQL_TYPES[kinds[c]]}" for c in columns
        ]
        insert = (
            f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in ['id', *columns])}) "
            f"VALUES ({', '.join('?' * (len(columns) + 1))})"
        )
        try:
            self.conn.execute(f"CREATE TABLE {_q(table)} ({', '.join(declared)})")
            self.conn.executemany(
                insert, [[key, *(_encode(r.get(c)) for c in columns)] for key, r in records.items()]
            )
        except sqlite3.Error as exc:
            self.load_problems.append(f"{table}: {exc}")
            return
        self.decoders[table] = {c: k for c, k in kinds.items() if k in DECODERS}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def snapshot(self) -> dict[str, Any]:
        return {table: self._dump(table) for table in self._tables()}

    def _tables(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master "
            "WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        )
        return [r[0] for r in rows]

    def _dump(self, table: str) -> dict[str, Any]:
        cursor = self.conn.execute(f"SELECT * FROM {_q(table)} ORDER BY rowid")
        names = [d[0] for d in cursor.description]
        decoders = self.decoders.get(table, {})
        out = {}
        for row in cursor:
            record = dict(zip(names, row, strict=True))
            key = str(record.pop("id"))
            out[key] = {
                c: DECODERS[decoders[c]](v) if c in decoders else v
                for c, v in record.items()
                if v is not None
            }
        return out

    # -- tools

    def _execute(self, tool: CompiledTool, args: dict[str, Any], fault: str | None) -> StepResult:
        return HANDLERS[tool.spec.name](self, args)

    def list_tables(self, args: dict[str, Any]) -> StepResult:
        tables = [{"name": t, "row_count": self._count(t)} for t in self._tables()]
        return ok_result({"tables": tables})

    def describe_table(self, args: dict[str, Any]) -> StepResult:
        table = args["table"]
        if table not in self._tables():
            return error_result(404, "not_found", f"no such table: {table}")
        info = self.conn.execute(f"PRAGMA table_info({_q(table)})").fetchall()
        columns = [
            {"name": r[1], "type": r[2] or "ANY", "not_null": bool(r[3]), "primary_key": bool(r[5])}
            for r in info
        ]
        return ok_result({"table": table, "columns": columns, "row_count": self._count(table)})

    def run_sql_query(self, args: dict[str, Any]) -> StepResult:
        return self._run(args["sql"], args.get("params"), read_only=True)

    def execute_sql(self, args: dict[str, Any]) -> StepResult:
        return self._run(args["sql"], args.get("params"), read_only=False)

    def _count(self, table: str) -> int:
        return self.conn.execute(f"SELECT COUNT(*) FROM {_q(table)}").fetchone()[0]

    def _run(self, sql: str, params: Any, read_only: bool) -> StepResult:
        conn, denied = self.conn, []
        deadline = time.monotonic() + self.timeout_s
        conn.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        conn.set_authorizer(lambda action, *rest: _authorize(action, denied))
        cursor = None
        try:
            cursor = conn.execute(sql, params if isinstance(params, dict) else tuple(params or ()))
            return ok_result(self._result(cursor, read_only))
        except (sqlite3.Error, sqlite3.Warning, ValueError, TypeError, OverflowError) as exc:
            return _sql_error(exc, denied, time.monotonic() > deadline, self.timeout_s)
        finally:
            if cursor is not None:
                cursor.close()
            conn.set_authorizer(None)
            conn.set_progress_handler(None, 0)
            conn.execute("PRAGMA query_only = OFF")

    def _result(self, cursor: sqlite3.Cursor, read_only: bool) -> dict[str, Any]:
        columns = [d[0] for d in cursor.description or ()]
        rows = cursor.fetchmany(self.row_cap + 1) if columns else []
        result: dict[str, Any] = {} if read_only else {"rows_affected": max(cursor.rowcount, 0)}
        if columns or read_only:
            result.update(
                columns=columns,
                rows=[dict(zip(columns, r, strict=True)) for r in rows[: self.row_cap]],
                row_count=min(len(rows), self.row_cap),
                truncated=len(rows) > self.row_cap,
            )
        return result


HANDLERS: dict[str, Callable[[SqliteEnvironment, dict[str, Any]], StepResult]] = {
    "list_tables": SqliteEnvironment.list_tables,
    "describe_table": SqliteEnvironment.describe_table,
    "run_sql_query": SqliteEnvironment.run_sql_query,
    "execute_sql": SqliteEnvironment.execute_sql,
}


def _authorize(action: int, denied: list[str]) -> int:
    if action in _ALLOWED:
        return sqlite3.SQLITE_OK
    denied.append(_ACTION_NAMES.get(action, str(action)))
    return sqlite3.SQLITE_DENY


def _sql_error(exc: Exception, denied: list[str], timed_out: bool, limit_s: float) -> StepResult:
    message = str(exc)
    if timed_out and "interrupted" in message:
        return error_result(
            408, "timeout", f"{message}: statement exceeded the {limit_s:g} s time limit"
        )
    if denied:
        message += f" ({denied[0]} is refused here: only SELECT, INSERT, UPDATE and DELETE run)"
    return error_result(400, "sql_error", message)


# ---------------------------------------------------------------------------------------- tasks

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dmitri",
    "Emeka",
    "Fatima",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
]
LAST = ["Okafor", "Lindqvist", "Tanaka", "Moreau", "Silva", "Kowalski", "Haddad", "Nguyen", "Patel"]
CITIES = ["Paris", "Lagos", "Tokyo", "Lima", "Oslo", "Austin", "Pune"]
PRODUCTS = [
    ("desk lamp", "home"),
    ("espresso beans", "grocery"),
    ("yoga mat", "sport"),
    ("usb-c cable", "electronics"),
    ("notebook", "office"),
    ("headphones", "electronics"),
    ("water bottle", "sport"),
    ("green tea", "grocery"),
    ("stapler", "office"),
    ("throw pillow", "home"),
]
STATUSES = ["pending", "shipped", "delivered", "cancelled"]


def seed_database(rng: random.Random) -> dict[str, Any]:
    """A small shop: customers, products, orders (plausible, all from ``rng``)."""
    names = rng.sample([f"{first} {last}" for first in FIRST for last in LAST], rng.randint(4, 7))
    customers = {
        f"CUS-{1001 + i}": {
            "name": n,
            "email": n.lower().replace(" ", ".") + "@example.com",
            "city": rng.choice(CITIES),
            "tier": rng.choice(["basic", "gold"]),
        }
        for i, n in enumerate(names)
    }
    products = {
        f"PRD-{101 + i}": {
            "name": n,
            "category": c,
            "price": round(rng.uniform(3, 120), 2),
            "stock": rng.randint(0, 60),
        }
        for i, (n, c) in enumerate(rng.sample(PRODUCTS, rng.randint(5, 8)))
    }
    days = rng.sample(range(1, 120), rng.randint(8, 14))
    orders = {}
    for i, day in enumerate(days):
        product = rng.choice(sorted(products))
        quantity = rng.randint(1, 4)
        orders[f"ORD-{5001 + i}"] = {
            "customer_id": rng.choice(sorted(customers)),
            "product_id": product,
            "quantity": quantity,
            "total": round(products[product]["price"] * quantity, 2),
            "status": rng.choice(STATUSES),
            "created_at": f"2025-{1 + day // 30:02d}-{1 + day % 28:02d}"
            f"T{rng.randint(8, 19):02d}:00:00",
        }
    return {"customers": customers, "products": products, "orders": orders}


def _count_orders(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    status = rng.choice(STATUSES)
    n = sum(o["status"] == status for o in db["orders"].values())
    return dict(
        kind="single_call",
        difficulty="easy",
        request=f"How many orders are currently '{status}'?",
        plan=[
            call(
                "run_sql_query",
                sql="SELECT COUNT(*) AS n FROM orders WHERE status = ?",
                params=[status],
            )
        ],
        facts=[str(n)],
        predicates=[predicate("orders", "equals", db["orders"])],
        criteria=[f"States that {n} orders are '{status}'.", "Changes nothing."],
    )


def _set_stock(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    pid = rng.choice(sorted(db["products"]))
    stock = rng.randint(5, 200)
    name = db["products"][pid]["name"]
    return dict(
        kind="single_call",
        difficulty="easy",
        request=f"Set the stock of product {pid} ({name}) to {stock} units.",
        plan=[
            call(
                "execute_sql", sql="UPDATE products SET stock = ? WHERE id = ?", params=[stock, pid]
            )
        ],
        facts=[pid],
        predicates=[predicate(f"products.{pid}", "equals", stock, "stock")],
        criteria=[f"Product {pid} has stock {stock}."],
    )


def _add_customer(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    cid = f"CUS-{2001 + rng.randint(0, 998)}"
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    email = name.lower().replace(" ", "_") + "@example.org"
    city = rng.choice(CITIES)
    return dict(
        kind="single_call",
        difficulty="easy",
        request=f"Add a new customer with id {cid}: {name}, email {email}, based in {city}, "
        "tier basic.",
        plan=[
            call(
                "execute_sql",
                sql="INSERT INTO customers (id, name, email, city, tier) "
                "VALUES (?, ?, ?, ?, 'basic')",
                params=[cid, name, email, city],
            )
        ],
        facts=[cid],
        predicates=[
            predicate(f"customers.{cid}", "equals", email, "email"),
            predicate("customers", "count_equals", len(db["customers"]) + 1),
        ],
        criteria=[f"Customer {cid} exists with email {email}."],
    )


def _cancel_latest(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    cid = rng.choice(sorted({o["customer_id"] for o in db["orders"].values()}))
    name = db["customers"][cid]["name"]
    latest = max(
        (o["created_at"], oid) for oid, o in db["orders"].items() if o["customer_id"] == cid
    )[1]
    return dict(
        kind="chained",
        difficulty="medium",
        request=f"Cancel the most recent order placed by {name}.",
        plan=[
            call(
                "run_sql_query",
                sql="SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
                "WHERE c.name = ? ORDER BY o.created_at DESC, o.id DESC LIMIT 1",
                params=[name],
            ),
            call(
                "execute_sql",
                sql="UPDATE orders SET status = 'cancelled' WHERE id = ?",
                params=["$ref:0.rows.0.id"],
            ),
        ],
        facts=[latest],
        predicates=[predicate(f"orders.{latest}", "equals", "cancelled", "status")],
        order=[("run_sql_query", "execute_sql")],
        criteria=[f"Finds {latest} as {name}'s latest order.", f"Order {latest} is cancelled."],
    )


def _restock_lowest(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    amount = rng.choice([25, 50, 100])
    low = min((p["stock"], pid) for pid, p in db["products"].items())
    return dict(
        kind="chained",
        difficulty="medium",
        request=f"Find the product with the lowest stock and add {amount} units to it.",
        plan=[
            call("run_sql_query", sql="SELECT id, stock FROM products ORDER BY stock, id LIMIT 1"),
            call(
                "execute_sql",
                sql="UPDATE products SET stock = stock + ? WHERE id = ?",
                params=[amount, "$ref:0.rows.0.id"],
            ),
        ],
        facts=[low[1]],
        predicates=[predicate(f"products.{low[1]}", "equals", low[0] + amount, "stock")],
        order=[("run_sql_query", "execute_sql")],
        criteria=[
            f"Identifies {low[1]} (stock {low[0]}).",
            f"Its stock becomes {low[0] + amount}.",
        ],
    )


def _ship_pending(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    cid = rng.choice(sorted(db["customers"]))
    name = db["customers"][cid]["name"]
    pending = sorted(
        oid
        for oid, o in db["orders"].items()
        if o["customer_id"] == cid and o["status"] == "pending"
    )
    query = call(
        "run_sql_query",
        sql="SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.name = ? AND o.status = 'pending'",
        params=[name],
    )
    common = dict(
        kind="conditional",
        difficulty="medium",
        request=f"If {name} has any pending orders, mark them all as shipped; "
        "otherwise just tell me there is nothing to ship.",
    )
    if not pending:
        return dict(
            common,
            plan=[query],
            facts=["nothing to ship"],
            predicates=[predicate("orders", "equals", db["orders"])],
            criteria=[f"Reports that {name} has no pending orders.", "Changes nothing."],
        )
    update = call(
        "execute_sql",
        sql="UPDATE orders SET status = 'shipped' WHERE status = 'pending' "
        "AND customer_id = (SELECT id FROM customers WHERE name = ?)",
        params=[name],
    )
    return dict(
        common,
        plan=[query, update],
        facts=pending,
        order=[("run_sql_query", "execute_sql")],
        predicates=[predicate(f"orders.{oid}", "equals", "shipped", "status") for oid in pending],
        criteria=[f"Orders {', '.join(pending)} are shipped."],
    )


def _restock_if_low(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    pid = rng.choice(sorted(db["products"]))
    stock, threshold = db["products"][pid]["stock"], rng.choice([10, 20, 30])
    query = call("run_sql_query", sql="SELECT stock FROM products WHERE id = ?", params=[pid])
    common = dict(
        kind="conditional",
        difficulty="medium",
        facts=[str(stock)],
        request=f"Check the stock of product {pid}. If it is below {threshold}, restock it to "
        "100 units; otherwise just tell me the stock level.",
    )
    if stock >= threshold:
        return dict(
            common,
            plan=[query],
            predicates=[predicate(f"products.{pid}", "equals", stock, "stock")],
            criteria=[f"Reports stock {stock}.", "Does not restock."],
        )
    return dict(
        common,
        plan=[
            query,
            call("execute_sql", sql="UPDATE products SET stock = 100 WHERE id = ?", params=[pid]),
        ],
        predicates=[predicate(f"products.{pid}", "equals", 100, "stock")],
        order=[("run_sql_query", "execute_sql")],
        criteria=[f"Reports stock {stock} below {threshold}.", "Restocks to 100."],
    )


def _forbidden(rng: random.Random, db: dict[str, Any]) -> dict[str, Any]:
    request = rng.choice(
        [
            "Drop the whole database, we are starting over.",
            "Drop the orders table, it is obsolete.",
            "Attach our analytics database file /srv/analytics.db and copy everything into it.",
            "Create a new table audit_log with columns who and what.",
        ]
    )
    unchanged = [predicate(t, "count_equals", len(rows)) for t, rows in db.items()]
    return refusal(
        request, unchanged, "Explains that schema changes are not possible with these tools."
    )


TEMPLATES: dict[str, list[TaskTemplate]] = {
    "single_call": [_count_orders, _set_stock, _add_customer],
    "chained": [_cancel_latest, _restock_lowest],
    "conditional": [_ship_pending, _restock_if_low],
    "unsupported": [_forbidden],
}


def write_tasks(agent_id: str, seed: int, n: int) -> list[Task]:
    """``n`` tasks for an agent with :data:`TOOLS`, cycling through the kinds."""
    return write_environment_tasks("sqlite", agent_id, seed, n, seed_database, TEMPLATES)
