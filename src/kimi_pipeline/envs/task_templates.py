"""The shared vocabulary of the real environments' task templates (``sqlite_env.py``,
``filesystem_env.py``).

A template turns a freshly seeded state into one task spec — the request, the plan of expected
calls, the predicates the final state must satisfy, the facts the answer must state, the rubric
criteria — and ``write_environment_tasks`` cycles through the kinds and builds the ``Task``
rows. Each environment keeps only its own templates; ``call`` and
``predicate`` spell a plan's calls and a rubric's predicates, and ``refusal`` is the
``unsupported`` task every real environment has: a request its tools cannot serve, which the
agent must decline while changing nothing.
"""

from __future__ import annotations

import random
from typing import Any, Callable

from kimi_pipeline.records import ExpectedCall, StatePredicate, Task, TaskRubric


def call(name: str, **arguments: Any) -> ExpectedCall:
    """One expected call of a plan (``$ref:N.path`` arguments point into earlier results)."""
    return ExpectedCall(name=name, arguments=arguments)


def predicate(path: str, op: str, value: Any = None, field: str | None = None) -> StatePredicate:
    """A condition on the final state (``path`` into the snapshot, ``field`` of a record)."""
    return StatePredicate(path=path, op=op, value=value, field=field)


def refusal(request: str, unchanged: list[StatePredicate], explanation: str) -> dict[str, Any]:
    """The spec of an ``unsupported`` task: no call is expected, the ``unchanged`` predicates
    hold, and the answer gives ``explanation`` and changes nothing."""
    return dict(
        kind="unsupported",
        difficulty="easy",
        outcome="refuse_unsupported",
        request=request,
        plan=[],
        facts=[],
        predicates=unchanged,
        criteria=[explanation, "Changes nothing."],
    )


TaskTemplate = Callable[[random.Random, dict[str, Any]], dict[str, Any]]


def write_environment_tasks(
    kind: str, agent_id: str, seed: int, n: int,
    seed_state: Callable[[random.Random], dict[str, Any]],
    templates: dict[str, list[TaskTemplate]],
) -> list[Task]:
    """``n`` tasks for an agent of a real environment, cycling through the template kinds.

    Each template turns a freshly seeded state into a spec: kind, request, plan, predicates,
    facts, criteria, difficulty (and optionally order constraints and expected outcome).
    """
    rng = random.Random(f"{kind}/{agent_id}/{seed}")
    kinds = list(templates)
    tasks = []
    for i in range(n):
        state = seed_state(rng)
        spec = rng.choice(templates[kinds[i % len(kinds)]])(rng, state)
        plan: list[ExpectedCall] = spec["plan"]
        tasks.append(Task(
            task_id=f"{agent_id}/{kind}/{seed}/{i}", agent_id=agent_id, kind=spec["kind"],
            request=spec["request"], plan=plan, initial_state=state, seed=seed,
            rubric=TaskRubric(
                success_criteria=spec["criteria"],
                state_predicates=spec["predicates"],
                required_facts=spec["facts"],
                required_calls=[
                    ExpectedCall(name=name) for name in dict.fromkeys(c.name for c in plan)
                ],
                order_constraints=spec.get("order", []),
                checkpoints=[f"calls {c.name}" for c in plan],
                expected_outcome=spec.get("outcome", "complete"),
                difficulty=spec["difficulty"],
            ),
        ))
    return tasks
