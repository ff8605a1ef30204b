"""Tasks: every kind, valid records, rubrics that hold when the plan is replayed on a reference
interpreter of the world-model semantics, withheld values, refusals, determinism, speed."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from jsonschema import Draft202012Validator

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.agents.tasks import KINDS, TaskConfig, write_all_tasks, write_tasks
from kimi_pipeline.envs.state import is_ref, request_stages, resolve_ref
from kimi_pipeline.envs.semantics import infer_semantics
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.records import Task, ToolSpec
from tests.agents.test_bundles import ScriptedBackend, sample_tools

# ------------------------------------------------- reference interpreter (world-model semantics)


class RefWorld:
    """Tiny reference of the world model: create/read/list/update/delete/action on
    {collection: {id: fields}}, schema validation, scripted transient faults. ``list_key`` is
    where list results put their items: 'items', or None for the collection's name (as the
    world model does for tools without an output schema)."""

    def __init__(
        self, tools: list[ToolSpec], state: dict, faults=(), list_key: str | None = "items"
    ):
        self.tools = {t.name: t for t in tools}
        self.state = json.loads(json.dumps(state))
        self.faults = {(f["tool"], f["call_index"]): f["fault"] for f in faults}
        self.calls, self.created, self.list_key = Counter(), 0, list_key

    def call(self, name: str, args: dict) -> dict:
        tool = self.tools.get(name)
        if tool is None:
            return {"error": {"code": 404, "type": "unknown_tool", "message": f"no tool {name}"}}
        if not Draft202012Validator(
            tool.parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
        ).is_valid(args):
            return {"error": {"code": 400, "type": "invalid_arguments", "message": "bad arguments"}}
        index, self.calls[name] = self.calls[name], self.calls[name] + 1
        if self.faults.get((name, index)) == "transient":
            return {
                "error": {"code": 503, "type": "transient", "message": "retry", "retryable": True}
            }
        sem = infer_semantics(tool.name, tool.description, tool.parameters)
        coll = self.state.get(sem.collection, {})
        rid = args.get(sem.id_param) if sem.id_param else None
        fields = {k: v for k, v in args.items() if k in sem.field_params}
        if sem.operation == "create":
            self.created += 1
            rid = rid or f"NEW-{self.created}"
            self.state.setdefault(sem.collection, {})[rid] = {**fields, "status": "active"}
            return {"id": rid, **self.state[sem.collection][rid]}
        if sem.operation == "list" or (sem.operation == "read" and rid is None):
            items = [
                {"id": k, **r}
                for k, r in coll.items()
                if all(_hit(r, p, args[p]) for p in sem.filter_params if p in args)
            ]
            if sem.operation == "read":
                return items[0] if items else {"generated": True, **args}
            return {self.list_key or sem.collection: items, "count": len(items)}
        if sem.operation == "action":
            self.state.setdefault("_events", {})[f"E{len(self.state.get('_events', {}))}"] = {
                "tool": name
            }
            return {"status": "ok"}
        if rid not in coll:
            return {"error": {"code": 404, "type": "not_found", "message": f"{rid} not found"}}
        if sem.operation == "update":
            coll[rid].update(fields)
            coll[rid]["status"] = sem.status_value or coll[rid].get("status")
        if sem.operation == "delete":
            del coll[rid]
            return {"id": rid, "deleted": True}
        return {"id": rid, **coll[rid]}


def _hit(record: dict, key: str, wanted) -> bool:
    """List filtering: case-insensitive substring for strings, equality otherwise; an argument
    that is no field of the record does not filter."""
    if key not in record:
        return True
    have = record[key]
    if isinstance(have, str) and isinstance(wanted, str):
        return wanted.lower() in have.lower()
    return have == wanted


def check(state: dict, pred) -> bool:
    """A state predicate, following the path semantics documented in envs/state.py."""
    coll, _, rid = pred.path.partition(".")
    node = state.get(coll, None if rid else {})
    if rid:
        node = node.get(rid) if isinstance(node, dict) else None
    if pred.op in ("exists", "absent"):
        present = node is not None and (pred.field is None or pred.field in node)
        return present if pred.op == "exists" else not present
    if pred.op == "count_equals":
        return len(node or {}) == pred.value
    if pred.op == "equals":
        return node is not None and (node.get(pred.field) if pred.field else node) == pred.value
    if rid:  # contains on a resource field
        return node is not None and pred.value in node.get(pred.field, ())
    return any(all(r.get(k) == v for k, v in pred.value.items()) for r in (node or {}).values())


def replay(
    task: Task, tools: list[ToolSpec], list_key: str | None = "items", retry=True
) -> tuple[RefWorld, list]:
    """Run the plan (resolving $ref, retrying a transient failure once) on the reference."""
    world, results = RefWorld(tools, task.initial_state, task.scripted_faults, list_key), []
    for step in task.plan:
        args = {k: resolve_ref(v, results) if is_ref(v) else v for k, v in step.arguments.items()}
        result = world.call(step.name, args)
        if retry and result.get("error", {}).get("retryable"):
            result = world.call(step.name, args)
        assert "error" not in result, (task.task_id, step, result)
        results.append(result)
    return world, results


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def written():
    tools = sample_tools()
    agents, _ = sample_agents(tools, 120, OfflineBackend(), AgentConfig(), seed=11)
    tasks, rejected = write_all_tasks(agents, tools, OfflineBackend(), TaskConfig(), seed=5)
    by_agent = {a.agent_id: a for a in agents}
    index = {t.tool_id: t for t in tools}
    bundles = {a.agent_id: [index[i] for i in a.tool_ids] for a in agents}
    return tasks, rejected, by_agent, bundles


def test_every_kind_is_written_and_validates(written):
    tasks, rejected, _, _ = written
    assert not rejected
    assert len(tasks) == 120 * 5
    kinds = Counter(t.kind for t in tasks)
    assert set(kinds) == set(KINDS), kinds
    assert all(isinstance(t, Task) for t in tasks)
    assert {t.rubric.difficulty for t in tasks} == {"easy", "medium", "hard"}
    assert len({t.task_id for t in tasks}) == len(tasks)
    for task in tasks:
        Task.model_validate_json(task.model_dump_json())  # JSON round trip


def test_plans_use_only_the_agents_non_distractor_tools_with_valid_arguments(written):
    tasks, _, agents, bundles = written
    for task in tasks:
        agent = agents[task.agent_id]
        core = {
            t.name: t for t in bundles[task.agent_id] if t.tool_id not in agent.distractor_tool_ids
        }
        for step in task.plan:
            assert step.name in core
            literal = {k: v for k, v in step.arguments.items() if not is_ref(v)}
            schema = dict(core[step.name].parameters)
            schema["required"] = [r for r in schema.get("required", []) if r in literal]
            validator = Draft202012Validator(
                schema, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            assert validator.is_valid(literal), (step, list(validator.iter_errors(literal)))


@pytest.mark.parametrize("list_key", ["items", None])
def test_rubric_predicates_hold_after_replaying_the_plan(written, list_key):
    tasks, _, _, bundles = written
    discriminating = 0
    for task in tasks:
        world, results = replay(task, bundles[task.agent_id], list_key=list_key)
        for pred in task.rubric.state_predicates:
            assert check(world.state, pred), (task.task_id, pred, world.state)
        if any(not check(task.initial_state, p) for p in task.rubric.state_predicates):
            discriminating += 1
        for fact in task.rubric.required_facts:  # facts come from tool results
            value = resolve_ref(fact, results) if is_ref(fact) else fact
            assert str(value) in json.dumps(results, ensure_ascii=False) + json.dumps(
                [s.arguments for s in task.plan], ensure_ascii=False
            ), (task.task_id, fact)
    mutating = [
        t for t in tasks if t.kind in ("chained", "error_recovery") and t.rubric.state_predicates
    ]
    assert discriminating >= len(mutating) // 2  # predicates tell the end state from the start


def test_chained_tasks_feed_one_result_into_the_next_call(written):
    tasks, _, _, _ = written
    chained = [t for t in tasks if t.kind == "chained"]
    assert chained
    for task in chained:
        assert len(task.plan) >= 2
        refs = [v for s in task.plan[1:] for v in s.arguments.values() if is_ref(v)]
        assert refs and all(v in ("$ref:0.id", "$ref:0.items.0.id") for v in refs)
        assert (
            task.rubric.order_constraints
            and task.rubric.order_constraints[0][0] == task.plan[0].name
        )


def test_conditional_tasks_follow_the_branch_the_state_decides(written):
    tasks, _, _, _ = written
    taken = skipped = 0
    checks = Counter()
    for task in (t for t in tasks if t.kind == "conditional"):
        checks[task.plan[0].name.split("_")[0]] += 1  # 'get' (by id) or 'list' (filtered to it)
        rid = task.rubric.required_facts[0]  # the resource checked
        collection = next(c for c, r in task.initial_state.items() if rid in r)
        status = task.initial_state[collection][rid]["status"]
        assert "if it is still " in task.request
        wanted = task.request.split("if it is still ")[1].split(",")[0]
        if len(task.plan) == 2:
            taken += 1
            assert status == wanted
        else:
            skipped += 1
            assert status != wanted and status in task.rubric.required_facts
            assert task.rubric.forbidden_calls
    assert taken and skipped
    assert checks["get"] and checks["list"]


def test_missing_argument_withholds_the_value_from_the_request(written):
    tasks, _, _, _ = written
    missing = [t for t in tasks if t.kind == "missing_argument"]
    assert missing
    for task in missing:
        assert task.hidden_info and task.rubric.expected_outcome == "complete"
        for name, value in task.hidden_info.items():
            assert str(value).lower() not in task.request.lower()
            assert any(s.arguments.get(name) == value for s in task.plan)
            assert any(name in c and "Asks" in c for c in task.rubric.checkpoints)


def test_unsupported_tasks_refuse_with_forbidden_state_changing_calls(written):
    tasks, _, agents, bundles = written
    unsupported = [t for t in tasks if t.kind == "unsupported"]
    assert unsupported
    for task in unsupported:
        assert task.plan == [] and task.rubric.expected_outcome == "refuse_unsupported"
        sems = [
            infer_semantics(t.name, t.description, t.parameters) for t in bundles[task.agent_id]
        ]
        changing = {s.tool_name for s in sems if s.operation not in ("read", "list")}
        assert set(task.rubric.forbidden_calls) == changing and changing
        assert all(p.op == "count_equals" for p in task.rubric.state_predicates)


def test_error_recovery_scripts_a_transient_fault_the_plan_survives(written):
    tasks, _, _, bundles = written
    recovery = [t for t in tasks if t.kind == "error_recovery"]
    assert recovery
    for task in recovery:
        (fault,) = task.scripted_faults
        assert fault["call_index"] == 0 and fault["fault"] == "transient"
        assert fault["tool"] in [s.name for s in task.plan]
        with pytest.raises(AssertionError):  # without the retry the plan fails
            replay(task, bundles[task.agent_id], retry=False)
        world, _ = replay(task, bundles[task.agent_id])
        assert all(check(world.state, p) for p in task.rubric.state_predicates)


def test_initial_state_has_entity_prefixed_ids(written):
    tasks, _, _, _ = written
    ids = [rid for t in tasks for coll in t.initial_state.values() for rid in coll]
    assert ids and all(rid[:3].isupper() and rid[3] == "-" and rid[4:].isdigit() for rid in ids)
    prefixes = {rid[:3] for rid in ids}
    assert {"ORD", "EVN", "TCK"} <= prefixes


def test_deterministic_in_seed():
    tools = sample_tools()
    agents, _ = sample_agents(tools, 6, OfflineBackend(), AgentConfig(), seed=2)
    one = [
        t.model_dump()
        for a in agents
        for t in write_tasks(a, tools, OfflineBackend(), TaskConfig(), 9)[0]
    ]
    two = [
        t.model_dump()
        for a in agents
        for t in write_tasks(a, tools, OfflineBackend(), TaskConfig(), 9)[0]
    ]
    other = [
        t.model_dump()
        for a in agents
        for t in write_tasks(a, tools, OfflineBackend(), TaskConfig(), 10)[0]
    ]
    assert one == two and one != other


def test_kind_weights_are_honoured_and_checked():
    tools = sample_tools()
    agents, _ = sample_agents(tools, 10, OfflineBackend(), AgentConfig(), seed=2)
    only = TaskConfig(kind_weights={"unsupported": 1.0}, tasks_per_agent=3)
    tasks, _ = write_all_tasks(agents, tools, OfflineBackend(), only, 1)
    assert {t.kind for t in tasks} == {"unsupported"} and len(tasks) == 30
    with pytest.raises(ValueError):
        TaskConfig(kind_weights={"teleport": 1.0})


def _good_task() -> dict:
    return {
        "kind": "single_call",
        "request": "Cancel order ORD-1.",
        "plan": [{"name": "cancel_order", "arguments": {"order_id": "ORD-1"}}],
        "initial_state": {"orders": {"ORD-1": {"status": "open"}}},
        "rubric": {
            "difficulty": "easy",
            "state_predicates": [
                {"path": "orders.ORD-1", "op": "equals", "field": "status", "value": "cancelled"}
            ],
        },
    }


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda t: t.pop("rubric"), "rubric"),
        (lambda t: t.update(kind="epic"), "kind"),
        (lambda t: t["plan"].append({"name": "launch_rocket", "arguments": {}}), "does not have"),
        (
            lambda t: t["plan"].insert(
                0, {"name": "get_order", "arguments": {"order_id": "$ref:1.id"}}
            ),
            "later step",
        ),
        (
            lambda t: t.update(kind="missing_argument", hidden_info={"order_id": "ORD-1"}),
            "gives away",
        ),
        (lambda t: t.update(kind="unsupported"), "empty plan"),
    ],
)
def test_malformed_llm_tasks_become_rejections(change, reason):
    tools = sample_tools()
    agents, _ = sample_agents(tools, 1, OfflineBackend(), AgentConfig(), seed=3)
    bad = _good_task()
    change(bad)
    reply = json.dumps({"tasks": [_good_task(), bad]})
    tasks, rejected = write_tasks(
        agents[0].model_copy(
            update={
                "tool_ids": [
                    "synthetic:online_shop/cancel_order",
                    "synthetic:online_shop/get_order",
                ]
            }
        ),
        tools,
        ScriptedBackend(reply),
        TaskConfig(),
        0,
    )
    assert len(tasks) == 1 and tasks[0].task_id.endswith("-t00")
    assert len(rejected) == 1 and reason in rejected[0].reason, rejected[0].reason
    assert rejected[0].step == "task_writer"


@pytest.mark.parametrize("content", ["{not json", '{"stories": []}', '"just text"'])
def test_unparseable_replies_become_one_rejection(content):
    tools = sample_tools()
    agents, _ = sample_agents(tools, 1, OfflineBackend(), AgentConfig(), seed=3)
    tasks, rejected = write_tasks(agents[0], tools, ScriptedBackend(content), TaskConfig(), 0)
    assert tasks == [] and len(rejected) == 1


# ------------------------------------------------------------------------- staged requests


def _words(text: str) -> set[str]:
    return set(text.translate(str.maketrans(",.?!", "    ")).split())


def test_request_stages_split_a_chain_into_one_clause_per_plan_step(written):
    tasks = [t for t in written[0] if t.kind == "chained" and len(t.plan) >= 2]
    assert tasks
    for task in tasks:
        stages = request_stages(task.kind, task.request, len(task.plan))
        assert [steps for _, steps in stages] == list(range(1, len(task.plan) + 1))
        first, rest = stages[0][0], [part for part, _ in stages[1:]]
        assert first[-1] in ".?!" and not any(" then " in p for p in [first, *rest])
        joiners = {"then", "and", "finally"}
        assert _words(task.request) - joiners <= _words(" ".join([first, *rest]))


def test_request_stages_split_a_conditional_into_the_check_and_the_condition(written):
    tasks = [t for t in written[0] if t.kind == "conditional"]
    assert tasks
    for task in tasks:
        (check, one), (condition, all_steps) = request_stages(task.kind, task.request,
                                                              len(task.plan))
        assert (one, all_steps) == (1, len(task.plan))
        assert "if it is still" not in check and check[-1] in ".?!"
        assert condition.startswith("if it is still ") and "otherwise" in condition


@pytest.mark.parametrize("kind,text,steps", [
    ("single_call", "Please cancel order ORD-1.", 1),
    ("chained", "Find the order, then cancel it.", 3),  # clauses do not match the plan
    ("chained", "Cancel the most recent order placed by Ana.", 2),  # free text
    ("unsupported", "Could you book me a flight, then a hotel?", 0),
])
def test_requests_that_do_not_split_are_one_part(kind, text, steps):
    assert request_stages(kind, text, steps) == [(text, steps)]


def test_speed_10000_tasks():
    tools = sample_tools()
    agents, _ = sample_agents(tools, 2000, OfflineBackend(), AgentConfig(), seed=0)
    write_all_tasks(agents[:20], tools, OfflineBackend(), TaskConfig(), 0)  # warm caches
    start, cpu = time.perf_counter(), time.process_time()
    tasks, _ = write_all_tasks(agents, tools, OfflineBackend(), TaskConfig(), 0)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\n{len(tasks)} tasks offline: {wall:.2f} s wall, {cpu:.2f} s CPU")
    assert len(tasks) == 10_000
