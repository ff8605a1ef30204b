"""The offline program of the ``task_writer`` role: tasks drafted without an LLM.

It answers the request ``agents.tasks.task_request`` builds, from its structured context (the
agent's tools, distractors, the kinds to write, the config and seed), with the reply an LLM
would give: ``{"tasks": [...]}``, validated by the same ``agents.tasks.parse_tasks``. Per agent
it reads the bundle and seeds a world (``task_world.TaskWorld``), drafts each requested kind
(``task_plans``; an infeasible kind falls back to a feasible one, a repeat is redrafted), then
``finish`` replays the plan on the nominal world-model semantics (``task_world.simulate``) and
derives the rubric from what it changed, so the state predicates hold exactly for the plan.
"""

from __future__ import annotations

import random
from typing import Any

from kimi_pipeline.agents.offline.task_phrasing import predicate_sentence, spoken_pairs
from kimi_pipeline.agents.offline.task_plans import BUILDERS, Ctx, Draft, Step, dedupe, step_facts
from kimi_pipeline.agents.offline.task_world import TaskWorld, diff_predicates, simulate
from kimi_pipeline.agents.tasks import ROLE, TaskConfig
from kimi_pipeline.envs.semantics import label
from kimi_pipeline.envs.state import (
    REF,
    compose_request,
    copy_json,
    is_ref,
    resolve_arguments,
)
from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.llm.offline import offline_role


@offline_role(ROLE)
def offline_task_writer(request: ChatRequest) -> dict[str, Any]:
    """Write the requested kinds over the bundle; infeasible kinds fall back to feasible ones."""
    ctx = request.context
    config = TaskConfig.model_validate(ctx["config"])
    rng = random.Random(ctx["seed"])
    world = TaskWorld(ctx["tools"], set(ctx["distractors"]), config, rng)
    tasks, seen = [], set()
    for kind in ctx["kinds"]:  # one generator for the agent: its tasks are written in order
        draft = _draft(world, kind, rng, config, seen)
        if draft:
            tasks.append(finish(draft, world, rng))
    return {"tasks": tasks}


def _draft(
    world: TaskWorld, kind: str, rng: random.Random, config: TaskConfig, seen: set[str]
) -> Draft | None:
    """A draft of ``kind`` (else of a fallback kind) that is not a repeat of an earlier one."""
    fallbacks = [kind] + [k for k in ("chained", "single_call", "unsupported") if k != kind]
    for candidate in fallbacks:
        for _ in range(config.attempts_per_kind):
            ctx = Ctx(world, world.base, rng, config)  # builders copy before changing it
            draft = BUILDERS[candidate](ctx)
            if draft and _keeps_secret(draft, rng) and _new(draft, seen):
                return draft
    return None


def _new(draft: Draft, seen: set[str]) -> bool:
    key = draft.kind + repr([(s.tool.name, s.args) for s in draft.steps]) + (draft.request or "")
    if key in seen:
        return False
    seen.add(key)
    return True


def _keeps_secret(draft: Draft, rng: random.Random) -> bool:
    """A withheld value must not appear anywhere in the request."""
    if not draft.hidden:
        return True
    draft.request = compose_request(
        rng, [s.clause(rng, draft.hide.get(i, frozenset())) for i, s in enumerate(draft.steps)]
    )
    return not any(str(v).lower() in draft.request.lower() for v in draft.hidden.values())


# --------------------------------------------------------------------------- finishing a draft


def finish(draft: Draft, world: TaskWorld, rng: random.Random) -> dict[str, Any]:
    """The Task-shaped dict: request, plan, world, rubric derived by replaying the plan."""
    initial = draft.state  # shared by an agent's tasks; only ever serialised
    preds, facts = _replay(draft)
    request = draft.request or compose_request(
        rng, [s.clause(rng, draft.hide.get(i, frozenset())) for i, s in enumerate(draft.steps)]
    )
    plan_names = [s.tool.name for s in draft.steps]
    literal = [_literal(s.args) for s in draft.steps]
    told = ", ".join(_human_fact(f, draft.steps) for f in facts[:4])
    return {
        "kind": draft.kind,
        "request": request,
        "hidden_info": draft.hidden,
        "plan": [{"name": s.tool.name, "arguments": s.args} for s in draft.steps],
        "initial_state": initial,
        "scripted_faults": draft.faults,
        "rubric": {
            "success_criteria": draft.criteria
            + [predicate_sentence(p) for p in preds]
            + ([f"The final answer states {told}."] if facts else []),
            "state_predicates": preds,
            "required_facts": facts[:4],
            "required_calls": [{"name": n, "arguments": a} for n, a in zip(plan_names, literal)],
            "forbidden_calls": [n for n in world.state_changing if n not in plan_names]
            if draft.outcome == "complete"
            else list(world.state_changing),
            "order_constraints": dedupe(
                (a, b) for a, b in zip(plan_names, plan_names[1:]) if a != b
            ),
            "checkpoints": draft.checkpoints
            + [
                f"Calls {n}" + (f" with {spoken_pairs(a, set())}" if a else "")
                for n, a in zip(plan_names, literal)
            ]
            + ([f"Tells the user {told}."] if facts else []),
            "expected_outcome": draft.outcome,
            "difficulty": _difficulty(draft.kind, len(draft.steps)),
        },
    }


def _replay(draft: Draft) -> tuple[list[dict[str, Any]], list[str]]:
    """The state predicates and facts of a draft, from replaying its plan on a copy of its
    state: what changed (plus the draft's guards), and what the answer must state."""
    initial = draft.state
    final, new_ids, results = copy_json(initial), [], []
    for step in draft.steps:
        results.append(simulate(final, step.tool, resolve_arguments(step.args, results), new_ids))
    ref_of = {
        rid: f"$ref:{i}.id"
        for i, r in enumerate(results)
        if isinstance(r, dict) and str(r.get("id", "")).startswith("<new:")
        for rid in [r["id"]]
    }
    preds = (
        diff_predicates(initial, final, {s.tool.sem.collection for s in draft.steps}) + draft.guards
    )
    if not preds and draft.steps and not any(s.tool.mutating for s in draft.steps):
        coll = draft.steps[0].tool.sem.collection  # read-only: nothing may change
        preds.append({"path": coll, "op": "count_equals", "value": len(initial.get(coll, {}))})
    if draft.facts is not None:
        return preds, draft.facts
    facts = dedupe(
        f
        for i, (s, r) in enumerate(zip(draft.steps, results))
        for f in step_facts(s, i, r, ref_of)
        if len(f) >= 2  # a one-character fact ('3') would be found in any answer
    )
    return preds, facts


def _human_fact(fact: str, steps: list[Step]) -> str:
    """'$ref:0.id' → 'the id of the new order'."""
    if not is_ref(fact):
        return fact
    step = steps[int(fact[len(REF) :].split(".")[0])]
    return f"the id of the new {label(step.tool.sem.entity)}"


def _difficulty(kind: str, steps: int) -> str:
    if kind == "unsupported":
        return "easy"
    score = steps + (1 if kind in ("conditional", "error_recovery", "missing_argument") else 0)
    return "easy" if score <= 1 else "medium" if score == 2 else "hard"


def _literal(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if not is_ref(v)}
