"""How a user asks for a drafted plan step, and how a rubric says what it checks.

The offline task writer turns each plan step into a clause of the request (``CLAUSES``, by the
step's operation: "create a new order with …", "cancel order ORD-1234", "find the invoice with
…"), leaving out what the user withholds; ``envs.state.compose_request`` joins the clauses.
``spoken_pairs`` and ``predicate_sentence`` word a rubric's checkpoints and success criteria.
Kept apart from the drafting plans: the wording can change without touching what a task plans.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any, Callable

from kimi_pipeline.agents.offline.task_values import PAGINATION_VALUES
from kimi_pipeline.envs.semantics import label
from kimi_pipeline.envs.state import is_ref

if TYPE_CHECKING:
    from kimi_pipeline.agents.offline.task_plans import Step


def show(value: Any) -> str:
    """A value as a user says it: yes/no, a comma list, a quoted phrase."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(show(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    text = str(value)
    return f'"{text}"' if " " in text else text


def spoken_pairs(args: dict[str, Any], skip: set[str]) -> str:
    """'customer Ada, qty 2 and city Oslo': the literal arguments not in ``skip``."""
    parts = [f"{label(k)} {show(v)}" for k, v in args.items() if k not in skip and not is_ref(v)]
    if len(parts) > 1:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    return parts[0] if parts else ""


def _entity(step: Step) -> str:
    return label(step.tool.sem.entity)


def _target(step: Step, hide: frozenset[str]) -> str:
    if is_ref(step.target):
        return "it"
    if step.tool.sem.id_param in hide:
        return f"my {_entity(step)}"
    return f"{_entity(step)} {step.target}"


def _skip(step: Step, hide: frozenset[str]) -> set[str]:
    return set(hide) | {step.tool.sem.id_param} | set(PAGINATION_VALUES)


def _create(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    pairs = spoken_pairs(step.args, _skip(step, hide))
    entity = _entity(step)
    head = rng.choice(("create a new {e}", "add {a} {e}", "set up a new {e}", "register {a} {e}"))
    return head.format(e=entity, a="an" if entity[:1] in "aeiou" else "a") + (
        f" with {pairs}" if pairs else ""
    )


def _read(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    if not step.tool.targeted:
        pairs = spoken_pairs(step.args, _skip(step, hide))
        return f"get the {_entity(step)}" + (f" for {pairs}" if pairs else "")
    target = _target(step, hide)
    if target == "it":
        return rng.choice(
            (
                "look it up and tell me its details",
                "show me its details",
                "check it and tell me its current status",
            )
        )
    return rng.choice(
        (
            "look up {t} and tell me its details",
            "show me the details of {t}",
            "check {t} for me and tell me its current status",
        )
    ).format(t=target)


def _list(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    coll = label(step.tool.sem.collection)
    filters = {k: v for k, v in step.args.items() if k in step.tool.sem.filter_params}
    pairs = spoken_pairs(filters, set(hide))
    if not pairs:
        return rng.choice(("list all {c}", "show me all the {c}")).format(c=coll)
    head = rng.choice(
        ("find the {e} with {p}", "search for the {e} with {p}", "look for the {e} with {p}")
    )
    return head.format(e=_entity(step), p=pairs.replace(" and ", ", "))


def _update(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    target = _target(step, hide)
    if step.tool.sem.status_value:
        return f"{step.tool.sem.verb} {target}"
    fields = {
        k: v for k, v in step.args.items() if k in step.tool.sem.field_params and k not in hide
    }
    changes = " and ".join(f"{label(k)} to {show(v)}" for k, v in fields.items())
    if not changes:
        return f"update {target}"
    return rng.choice(("update {t}: set {c}", "change {t}: set {c}")).format(t=target, c=changes)


def _delete(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    return rng.choice(("delete {t}", "remove {t}", "permanently delete {t}")).format(
        t=_target(step, hide)
    )


def _action(step: Step, rng: random.Random, hide: frozenset[str]) -> str:
    pairs = spoken_pairs(step.args, _skip(step, hide))
    what = label(step.tool.name)
    target = f" for {_target(step, hide)}" if step.tool.targeted else ""
    return f"{what}{target}" + (f" with {pairs}" if pairs else "")


CLAUSES: dict[str, Callable[[Step, random.Random, frozenset[str]], str]] = {
    "create": _create,
    "read": _read,
    "list": _list,
    "update": _update,
    "delete": _delete,
    "action": _action,
}


def predicate_sentence(pred: dict[str, Any]) -> str:
    """A state predicate as a success criterion."""
    op, path = pred["op"], pred["path"]
    if op == "count_equals":
        return f"The {path} collection holds exactly {pred['value']} records."
    if op == "absent":
        return f"{path} no longer exists."
    if op == "contains":
        return f"Some record in {path} has {spoken_pairs(pred['value'], set())}."
    return f"{path} has {pred['field']} = {show(pred['value'])}."
