"""The parent's side of a sandboxed test run: split the tests into units, judge their records.

Nothing here runs model code. :func:`plan_tests` parses the tests (in the trusted parent) into
the units the harness executes (``gym.sandbox_harness``) and, per unit, how the parent judges
it: an ``assert <expr> == <literal>`` (or ``!=``) becomes a *value-checked* unit — only
``<expr>`` enters the sandbox and the expected literal stays here — and other asserts and
calls are in-process units whose outcome the harness reports. A HumanEval ``check(candidate)``
whose body is only asserts is lifted into such asserts. :func:`report_records` reads the lines
of the job's report channel that carry the run's nonce and :func:`unit_ok` judges one record,
decoding a value record (tagged JSON of built-in types) without trusting it.
"""

from __future__ import annotations

import ast
import functools
import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    """Units for the harness and, per unit, how the parent judges it.

    ``checks[i]`` is ``None`` for setup statements, ``("ok", None)`` for in-process asserts and
    ``("eq"|"ne", expected)`` for value-checked asserts whose expected value stays here.
    """

    units: tuple[tuple[str, str], ...]
    checks: tuple[tuple[str, Any] | None, ...]
    modules: tuple[str, ...] = ()

    @property
    def n_tests(self) -> int:
        return sum(c is not None for c in self.checks)


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _value_check(test: ast.expr) -> tuple[ast.expr, str, Any] | None:
    """``<expr> ==/!= <literal>`` (either order) -> (expr, op, expected), else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    op = {ast.Eq: "eq", ast.NotEq: "ne"}.get(type(test.ops[0]))
    if op is None:
        return None
    left, right = test.left, test.comparators[0]
    for expr, other in ((left, right), (right, left)):
        ok, expected = _literal(other)
        if ok:
            return expr, op, expected
    return None


def _liftable_check(tree: ast.Module) -> tuple[str, list[ast.Assert]] | None:
    """A top-level ``def check(x)`` whose body is only asserts -> (param name, asserts)."""
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "check"):
            continue
        a = node.args
        if (node.decorator_list or len(a.args) != 1 or a.posonlyargs or a.vararg or a.kwarg
                or a.kwonlyargs or a.defaults):
            return None
        asserts = [s for s in node.body if isinstance(s, ast.Assert)]
        rest = [s for s in node.body if not isinstance(s, (ast.Assert, ast.Pass))
                and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        return (a.args[0].arg, asserts) if asserts and not rest else None
    return None


def _test_modules(tree: ast.Module) -> tuple[str, ...]:
    """Modules the tests import, or use by a standard-library name (``math.isclose``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id in sys.stdlib_module_names):
            names.add(node.value.id)
    return tuple(sorted(names))


def _calls_check(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
               and isinstance(n.value.func, ast.Name) and n.value.func.id == "check"
               for n in tree.body)


@functools.lru_cache(maxsize=1024)
def plan_tests(tests: str, entry_point: str | None) -> Plan:
    """Split ``tests`` into units; raises ValueError for unusable tests."""
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point {entry_point!r} is not an identifier")
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError) as e:
        raise ValueError(f"tests do not parse: {e}") from None
    units: list[tuple[str, str]] = []
    checks: list[tuple[str, Any] | None] = []

    def add(kind: str, src: str, check: tuple[str, Any] | None) -> None:
        units.append((kind, src))
        checks.append(check)

    def add_assert(node: ast.Assert) -> None:
        vc = _value_check(node.test)
        if vc is None:
            add("exec", ast.unparse(node), ("ok", None))
        else:
            add("value", ast.unparse(vc[0]), (vc[1], vc[2]))

    for node in tree.body:
        if isinstance(node, ast.Assert):
            add_assert(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            add("exec", ast.unparse(node), ("ok", None))
        else:
            add("setup", ast.unparse(node), None)
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    if entry_point and defines_check and not _calls_check(tree):
        lifted = _liftable_check(tree)
        if lifted is None:
            add("exec", f"check({entry_point})", ("ok", None))
        else:
            add("setup", f"{lifted[0]} = {entry_point}", None)
            for node in lifted[1]:
                add_assert(node)
    plan = Plan(tuple(units), tuple(checks), _test_modules(tree))
    if plan.n_tests == 0:
        raise ValueError("tests contain no assertions")
    return plan


# ------------------------------------------------------------------- reading the report


def _decode(node: Any, depth: int = 0) -> Any:
    """Tagged JSON from the harness -> built-in value; raises on anything malformed."""
    if not isinstance(node, list) or not node or depth > 100:
        raise ValueError("bad value record")
    tag, args = node[0], node[1:]
    scalar = {
        "N": lambda: None,
        "B": lambda: args[0] if isinstance(args[0], bool) else _bad(),
        "I": lambda: int(args[0], 16),
        "F": lambda: float.fromhex(args[0]),
        "C": lambda: complex(float.fromhex(args[0]), float.fromhex(args[1])),
        "S": lambda: args[0] if isinstance(args[0], str) else _bad(),
        "Y": lambda: bytes.fromhex(args[0]),
    }
    if tag in scalar:
        return scalar[tag]()
    items = [_decode(a, depth + 1) for a in args]
    containers = {"L": list, "T": tuple, "E": set, "Z": frozenset}
    if tag in containers:
        return containers[tag](items)
    if tag == "D" and len(items) % 2 == 0:
        return dict(zip(items[::2], items[1::2]))
    raise ValueError("bad value record")


def _bad() -> Any:
    raise ValueError("bad value record")


def unit_ok(kind: str, payload: str, check: tuple[str, Any] | None) -> bool:
    if check is None or check[0] == "ok":
        return kind == "ok"
    if kind != "val":
        return False
    try:
        equal = _decode(json.loads(payload)) == check[1]
    except (ValueError, TypeError, IndexError, OverflowError, RecursionError, MemoryError):
        return False  # malformed or hostile payload: the unit simply fails
    return equal if check[0] == "eq" else not equal


def report_records(chan: bytes, nonce: str) -> list[tuple[str, int, str]]:
    """Lines of the report channel that carry this run's nonce."""
    prefix = nonce.encode() + b" "
    out = []
    for line in chan.split(b"\n"):
        if not line.startswith(prefix):
            continue
        parts = line[len(prefix):].split(b" ", 2)
        if len(parts) != 3:
            continue
        try:
            out.append((parts[0].decode("ascii"), int(parts[1]), parts[2].decode("ascii")))
        except ValueError:
            continue
    return out
