"""Tasks with rubrics for an agent's tool bundle (K2 stage 2, K2 report §3.1).

Per agent, the ``task_writer`` role writes tasks of six kinds, from one call to chained calls
where an output feeds the next, conditionals, errors to recover from, a missing argument the
agent must ask for, and requests the tools cannot serve. Every task carries the world it
starts from (``initial_state``), a reference plan and a rubric.

This module is the role's production path: ``task_request`` builds one request per agent (the
prompt messages an LLM answers with ``{"tasks": [...]}`` and the same facts as structured
context), ``write_all_tasks`` runs the requests and ``parse_tasks`` validates each reply
(``records.Task`` plus ``_check_plan``); a malformed task becomes a quarantine record
(``Rejection``), never an exception. The role's offline program, which drafts tasks from the
context without an LLM, is ``agents.offline.task_writer``.

The contracts of ``$ref`` and state predicates, and the request grammar (a written request can
be asked for one part per turn: ``request_stages``), live in ``kimi_pipeline.envs.state``; the
judge, the world model and the agent policy follow them too.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kimi_pipeline.agents.bundles import Rejection, reject
from kimi_pipeline.envs.state import REF, is_ref
from kimi_pipeline.gcpause import gc_paused
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many
from kimi_pipeline.records import Agent, Task, ToolSpec

ROLE = "task_writer"
KINDS = (
    "single_call",
    "chained",
    "conditional",
    "error_recovery",
    "missing_argument",
    "unsupported",
)


class TaskConfig(BaseModel):
    """How many tasks each agent gets, of which kinds, over how large a world."""

    model_config = ConfigDict(extra="forbid")

    tasks_per_agent: int = Field(5, ge=1, description="Tasks written per agent.")
    kind_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "single_call": 0.2,
            "chained": 0.25,
            "conditional": 0.15,
            "error_recovery": 0.15,
            "missing_argument": 0.15,
            "unsupported": 0.1,
        },
        description="Relative frequency of each task kind; a kind the bundle cannot support "
        "(e.g. chained without two tools on one collection) is replaced by a feasible one.",
    )
    resources_per_collection: int = Field(
        4, ge=1, le=50, description="Resources seeded per collection in a task's initial_state."
    )
    third_step_rate: float = Field(
        0.35, ge=0, le=1, description="Chance a chained task adds a third step (a confirming read)."
    )
    attempts_per_kind: int = Field(
        4, ge=1, description="Offline writer: tries per kind before falling back to another kind."
    )

    @field_validator("kind_weights")
    @classmethod
    def _known_kinds(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown task kinds {sorted(unknown)}; known: {list(KINDS)}")
        if not any(w > 0 for w in weights.values()) or any(w < 0 for w in weights.values()):
            raise ValueError("kind_weights must be non-negative with at least one positive weight")
        return weights


# ------------------------------------------------------------------------------- the role


def task_seed(agent_id: str, seed: int, index: int) -> int:
    """A stable 31-bit seed for task ``index`` of an agent (-1: the agent's writer request)."""
    digest = hashlib.blake2b(f"task:{seed}:{agent_id}:{index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def plan_kinds(agent_id: str, config: TaskConfig, seed: int) -> list[str]:
    """The kinds of an agent's tasks, in order, drawn by ``kind_weights`` from the seed."""
    rng = random.Random(f"kinds:{seed}:{agent_id}")
    kinds = [k for k in KINDS if config.kind_weights.get(k, 0) > 0]
    weights = [config.kind_weights[k] for k in kinds]
    return rng.choices(kinds, weights=weights, k=config.tasks_per_agent)


_SYSTEM = (
    "You write evaluation tasks for a tool-using assistant. Each task is a JSON object with: "
    "kind (one of " + ", ".join(KINDS) + "), request (the user's opening message), hidden_info "
    "(argument values the user gives only when asked), plan (the reference calls in order: "
    "[{name, arguments}]; an argument '$ref:<i>.<path>' is the value at the dot path in the JSON "
    "result of step i, e.g. '$ref:0.items.0.id'), initial_state ({collection: {resource_id: "
    "{field: value}}}), scripted_faults ([{tool, call_index, fault: 'transient'}]) and rubric "
    "{success_criteria, state_predicates [{path: 'collection' or 'collection.resource_id', op: "
    "exists|absent|equals|count_equals|contains, field, value}], required_facts, required_calls "
    "[{name, arguments}], forbidden_calls, order_constraints [[before, after]], checkpoints, "
    "expected_outcome (complete|ask_user|refuse_unsupported), difficulty (easy|medium|hard)}. "
    'Answer with one JSON object {"tasks": [...]}.'
)


def _offered(
    tool: ToolSpec, cache: dict[str, tuple[dict[str, Any], str]]
) -> tuple[dict[str, Any], str]:
    """A tool as the writer sees it, and its JSON text (cached: tools recur across agents)."""
    hit = cache.get(tool.tool_id)
    if hit is None:
        entry = {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
            **({"output_schema": tool.output_schema} if tool.output_schema else {}),
        }
        hit = cache[tool.tool_id] = (entry, json.dumps(entry, ensure_ascii=False))
    return hit


def task_request(
    agent: Agent,
    tools: list[ToolSpec],
    config: TaskConfig,
    seed: int,
    cache: dict[str, tuple[dict[str, Any], str]] | None = None,
) -> ChatRequest:
    """The ``task_writer`` request for one agent: prompt messages plus structured context."""
    kinds = plan_kinds(agent.agent_id, config, seed)
    writer_seed = task_seed(agent.agent_id, seed, -1)
    entries = [_offered(t, {} if cache is None else cache) for t in tools]
    offered = [entry for entry, _ in entries]
    distractors = [t.name for t in tools if t.tool_id in set(agent.distractor_tool_ids)]
    user = (
        f"Agent system prompt:\n{agent.system_prompt}\n\nTools (JSON):\n"
        f"[{', '.join(text for _, text in entries)}]\n\nDistractor tools (never needed): "
        f"{distractors}\nWrite {len(kinds)} tasks, of kinds in this order: {kinds}. "
        f"Seed about {config.resources_per_collection} resources per collection."
    )
    return ChatRequest(
        role=ROLE,
        response_format="json",
        seed=writer_seed,
        messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}],
        context={
            "agent_id": agent.agent_id,
            "tools": offered,
            "distractors": distractors,
            "kinds": kinds,
            "config": config.model_dump(),
            "seed": writer_seed,
        },
    )


def _check_plan(task: Task, names: set[str]) -> str | None:
    """Why a validated task still cannot be used, or None."""
    calls = [c.name for c in task.plan] + [c.name for c in task.rubric.required_calls]
    unknown = sorted(set(calls) - names)
    if unknown:
        return f"plan or rubric calls tools the agent does not have: {unknown}"
    for index, call in enumerate(task.plan):
        for value in call.arguments.values():
            if is_ref(value) and not value[len(REF) :].split(".")[0].isdigit():
                return f"malformed reference {value!r} in plan step {index}"
            if is_ref(value) and int(value[len(REF) :].split(".")[0]) >= index:
                return f"plan step {index} refers to a later step: {value!r}"
    if task.kind == "unsupported" and (
        task.plan or task.rubric.expected_outcome != "refuse_unsupported"
    ):
        return "an unsupported task needs an empty plan and expected_outcome 'refuse_unsupported'"
    if task.kind == "missing_argument":
        if not task.hidden_info:
            return "a missing_argument task needs hidden_info"
        leaked = [k for k, v in task.hidden_info.items() if str(v).lower() in task.request.lower()]
        if leaked:
            return f"the request gives away the withheld argument(s) {leaked}"
    return None


def parse_tasks(
    reply: ChatResponse, agent: Agent, names: set[str], seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Validate a ``task_writer`` reply; each bad task (or a bad reply) becomes a Rejection."""
    if reply.error:
        return [], [
            reject(ROLE, agent.agent_id, f"backend error: {reply.error}", reply.content or "")
        ]
    try:
        data = json.loads(reply.content or "")
    except json.JSONDecodeError as exc:
        return [], [reject(ROLE, agent.agent_id, f"reply is not JSON: {exc}", reply.content or "")]
    items = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return [], [reject(ROLE, agent.agent_id, "reply has no 'tasks' list", reply.content or "")]
    tasks, rejections = [], []
    for index, item in enumerate(items):
        task_id = f"{agent.agent_id}-t{index:02d}"
        if not isinstance(item, dict):
            rejections.append(reject(ROLE, task_id, "task is not a JSON object", item))
            continue
        fixed = {
            **item,
            "task_id": task_id,
            "agent_id": agent.agent_id,
            "seed": task_seed(agent.agent_id, seed, index),
        }
        try:
            task = Task.model_validate(fixed)
        except ValidationError as exc:
            rejections.append(reject(ROLE, task_id, _errors(exc), item))
            continue
        problem = _check_plan(task, names)
        if problem:
            rejections.append(reject(ROLE, task_id, problem, item))
        else:
            tasks.append(task)
    return tasks, rejections


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<task>'}: {e['msg']}" for e in exc.errors()[:5]
    )


def write_all_tasks(
    agents: list[Agent], tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Tasks for every agent (one request per agent, run concurrently for LLM backends)."""
    with gc_paused():
        return _write_all(agents, tools, backend, config, seed)


def _write_all(
    agents: list[Agent], tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    index = {t.tool_id: t for t in tools}
    bundles = [[index[i] for i in a.tool_ids if i in index] for a in agents]
    cache: dict[str, tuple[dict[str, Any], str]] = {}
    replies = complete_many(
        backend, [task_request(a, b, config, seed, cache) for a, b in zip(agents, bundles)]
    )
    tasks, rejections = [], []
    for agent, bundle, reply in zip(agents, bundles, replies):
        good, bad = parse_tasks(reply, agent, {t.name for t in bundle}, seed)
        tasks += good
        rejections += bad
    return tasks, rejections


def write_tasks(
    agent: Agent, tools: list[ToolSpec], backend: ChatBackend, config: TaskConfig, seed: int
) -> tuple[list[Task], list[Rejection]]:
    """Tasks for one agent; ``tools`` may hold more than the agent's bundle (extras are ignored)."""
    return write_all_tasks([agent], tools, backend, config, seed)
