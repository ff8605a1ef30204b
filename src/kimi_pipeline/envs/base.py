"""The environment interface shared by synthesis (episodes) and RL (rollouts).

An environment executes the agent's tool calls against a state. The state is plain JSON:
``{collection: {resource_id: {field: value, ...}}}`` (e.g. ``{"orders": {"ORD-1": {...}}}``);
a task's ``initial_state`` is in this form and so is every ``snapshot()``, which is what rubric
predicates are checked against. Environments plug in through a registry: ``simulated`` (the
world model, any tool spec), and real-execution ones (``sqlite``, ``filesystem``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.records import ExpectedCall, Rubric, Task, ToolCall, ToolSpec
from kimi_pipeline.registry import Registry


class FaultConfig(BaseModel):
    """Controlled randomness of tool results (rates per call, drawn from the episode seed)."""

    model_config = ConfigDict(extra="forbid")

    transient_error_rate: float = Field(
        0.05, ge=0, le=1, description="Retryable failure (HTTP 503 / timeout-like) instead of a result."
    )
    partial_result_rate: float = Field(
        0.05, ge=0, le=1, description="A list result cut short and flagged as partial."
    )
    empty_result_rate: float = Field(
        0.03, ge=0, le=1, description="A list / search result that comes back empty."
    )
    edge_case_rate: float = Field(
        0.05, ge=0, le=1,
        description="Valid but unusual results: boundary values, unicode names, missing optional fields.",
    )


@dataclass
class StepResult:
    """What one tool call returned."""

    content: str  # JSON text the agent reads as the tool message
    ok: bool  # False for any error result (validation, not found, injected fault …)
    error: str | None = None  # error kind: invalid_arguments, not_found, unknown_tool, transient …
    fault: str | None = None  # name of the injected fault, if one was injected


def environment_tool(
    kind: str, name: str, description: str, properties: dict[str, Any], required: list[str]
) -> ToolSpec:
    """The spec of a real-execution environment's own tool ('env:<kind>/<name>', strict args)."""
    return ToolSpec(
        tool_id=f"env:{kind}/{name}",
        name=name,
        description=description,
        parameters={"type": "object", "properties": properties, "required": required,
                    "additionalProperties": False},
        source="environment",
        source_ref=f"environment:{kind}",
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
            rubric=Rubric(
                success_criteria=spec["criteria"],
                state_predicates=spec["predicates"],
                required_facts=spec["facts"],
                required_calls=[ExpectedCall(name=name) for name in dict.fromkeys(c.name for c in plan)],
                order_constraints=spec.get("order", []),
                checkpoints=[f"calls {c.name}" for c in plan],
                expected_outcome=spec.get("outcome", "complete"),
                difficulty=spec["difficulty"],
            ),
        ))
    return tasks


class Environment(Protocol):
    kind: str

    def reset(self, tools: list[ToolSpec], initial_state: dict[str, Any], seed: int,
              scripted_faults: list[dict[str, Any]] | None = None) -> None: ...

    def step(self, call: ToolCall) -> StepResult: ...

    def snapshot(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


# where each environment is defined: imported on first use, so worker processes need no setup
ENVIRONMENT_MODULES = {
    "simulated": "kimi_pipeline.envs.world",
    "sqlite": "kimi_pipeline.envs.sqlite_env",
    "filesystem": "kimi_pipeline.envs.filesystem_env",
}
_ENVIRONMENTS: Registry[Callable[[FaultConfig], Environment]] = Registry(
    "environment", lazy=ENVIRONMENT_MODULES)
register_environment = _ENVIRONMENTS.register


def make_environment(kind: str, faults: FaultConfig | None = None) -> Environment:
    return _ENVIRONMENTS.lookup(kind)(faults or FaultConfig())
