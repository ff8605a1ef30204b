"""Agentic evaluation: held-out task choice, and the offline agent, a random tiny model and a
model trained to emit one fixed call, each played through the world and judged."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from kimi_pipeline.agents.evaluate import (
    EvaluationConfig,
    compare_models,
    evaluate_agent,
    held_out_tasks,
    validation_agent_ids,
)
from kimi_pipeline.agents.policy import to_openai
from kimi_pipeline.envs.base import FaultConfig
from kimi_pipeline.llm.base import HFBackendConfig, make_backend, OfflineBackendConfig
from kimi_pipeline.llm.hf_backend import HFBackend, cpu_threads
from kimi_pipeline.records import Agent, ExpectedCall, Task, TaskRubric, ToolSpec, to_frame
from tests.agents.test_episode import build_world
from tests.llm.test_hf_backend import FORCED, save, tiny_model, train_forced
from tests.training import make_tokenizer

QUIET = FaultConfig(transient_error_rate=0, partial_result_rate=0, empty_result_rate=0,
                    edge_case_rate=0)
CUSTOMERS = ["Ana", "Omar", "Zoë", "Björn"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def world():
    return build_world()


def desk_world():
    """A one-agent world with short prompts: an order desk with two tools."""
    def tool(name, prop):
        return ToolSpec(tool_id=f"synthetic:shop/{name}", name=name, source="synthetic",
                        description=f"{name.replace('_', ' ').capitalize()}.", source_ref="test",
                        parameters={"type": "object", "properties": {prop: {"type": "string"}},
                                    "required": [prop]})

    tools = [tool("search_orders", "customer"), tool("cancel_order", "order_id")]
    agent = Agent(agent_id="desk", category="shop", domain="orders", seed=0,
                  system_prompt="You are an order desk agent.", tool_ids=[t.tool_id for t in tools])
    tasks = [
        Task(task_id=f"desk/{i}", agent_id="desk", kind="single_call", seed=i,
             request=f"Find the orders of {name}.",
             plan=[ExpectedCall(name="search_orders", arguments={"customer": name})],
             rubric=TaskRubric(required_calls=[ExpectedCall(name="search_orders",
                                                        arguments={"customer": name})],
                           checkpoints=["calls search_orders"], difficulty="easy"))
        for i, name in enumerate(CUSTOMERS)
    ]
    return tools, [agent], tasks


def desk_config(steps: int = 3, **kw) -> EvaluationConfig:
    episode = EvaluationConfig().episode.model_copy(
        update={"max_agent_steps": steps, "max_user_turns": 2, "faults": QUIET})
    kw.setdefault("max_new_tokens", 24)
    return EvaluationConfig(n_tasks=len(CUSTOMERS), episode=episode, **kw)


# ------------------------------------------------------------------------------ held-out tasks


def test_held_out_tasks_are_of_validation_agents_and_deterministic(world):
    _, agents, tasks = world
    frame = to_frame(tasks, Task)
    held = sorted(agents)[:2]
    sft = pl.DataFrame({"agent_id": sorted(agents), "trajectory_id": [f"x~s{i}" for i in
                                                                      range(len(agents))],
                        "split": ["validation"] * 2 + ["train"] * (len(agents) - 2)})
    assert validation_agent_ids(sft) == held
    picked = held_out_tasks(frame, 5, seed=3, agent_ids=held)
    assert picked.height == 5 and set(picked["agent_id"]) <= set(held)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=1)
    assert held_out_tasks(shuffled, 5, seed=3, agent_ids=held).equals(picked)
    assert not held_out_tasks(frame, 5, seed=4, agent_ids=held).equals(picked)
    one = picked["task_id"][0]
    by_trajectory = held_out_tasks(frame, 5, trajectory_ids=[f"{one}~s123"])
    assert by_trajectory["task_id"].to_list() == [one]


# ------------------------------------------------------------------------------ offline agent


def test_offline_agent_is_valid_and_successful(world):
    tools, agents, tasks = world
    held = sorted(agents)[:3]
    evaluation = evaluate_agent(OfflineBackendConfig(), to_frame(tasks, Task),
                                to_frame(list(agents.values()), Agent),
                                to_frame(tools, ToolSpec), EvaluationConfig(n_tasks=10),
                                agent_ids=held)
    s = evaluation.summary
    assert s["episodes"] == evaluation.rows.height == 10 and s["backend"] == "offline"
    assert set(evaluation.rows["agent_id"]) <= set(held)
    assert s["tool_calls"] > 0 and s["parse_validity_rate"] == 1.0
    assert s["schema_validity_rate"] >= 0.9 and s["success_rate"] >= 0.8
    assert s["calls_in_tool_tasks"] > 0 and s["right_tool_rate"] >= 0.9  # it calls what tasks need
    assert s["mean_agent_turns"] > 1 and s["finished_rate"] >= 0.9
    assert s["tasks_skipped"] == 0
    row = evaluation.rows.row(0, named=True)
    assert row["tool_calls"] >= row["parsed_calls"] >= row["schema_valid_calls"]
    assert isinstance(json.loads(row["failed_criteria"]), list)


# ------------------------------------------------------------------------------ hf agents


def test_random_tiny_model_scores_zero_without_crashing(tmp_path):
    tokenizer = make_tokenizer()
    path = save(tiny_model(tokenizer, init=0.5), tokenizer, tmp_path / "random")
    tools, agents, tasks = desk_world()
    config = HFBackendConfig(model_path=str(path), device="cpu", max_batch_size=8)
    evaluation = evaluate_agent(config, tasks, agents, tools, desk_config())
    s = evaluation.summary
    assert s["episodes"] == len(CUSTOMERS) and s["backend"] == "hf"
    assert s["parse_validity_rate"] <= 0.1 and s["schema_validity_rate"] <= 0.1
    assert s["success_rate"] == 0.0 and s["completion_tokens"] > 0
    assert 0 <= s["agent_error_rate"] <= 1 and s["mean_agent_turns"] >= 1


def test_an_evaluation_is_reused_for_the_same_weights_tasks_and_settings_only(tmp_path):
    """rl reads the sft stage's evaluation: sft_model's episodes are not played twice."""
    tokenizer = make_tokenizer()
    first = save(tiny_model(tokenizer, init=0.5), tokenizer, tmp_path / "first")
    copy = shutil.copytree(first, tmp_path / "copy")  # the catalog's next version of it
    other = save(tiny_model(tokenizer, init=0.4), tokenizer, tmp_path / "other")
    tools, agents, tasks = desk_world()
    frames = (to_frame(tasks, Task), to_frame(agents, Agent), to_frame(tools, ToolSpec))
    sft = pl.DataFrame({"agent_id": ["desk"], "split": ["validation"]})
    config = desk_config(hf_backend=HFBackendConfig(device="cpu", max_batch_size=8))
    known, _ = compare_models({"sft": str(first)}, sft, *frames, config)
    again, rows = compare_models({"sft_model": str(copy), "rl_model": str(other)}, sft, *frames,
                                 config, known=known)
    assert again["sft_model"] == {**known["sft"], "reused": True}
    assert "reused" not in again["rl_model"] and set(rows["model"]) == {"rl_model"}
    longer = config.model_copy(update={"max_new_tokens": 32})
    replayed, rows = compare_models({"sft_model": str(copy)}, sft, *frames, longer, known=known)
    assert "reused" not in replayed["sft_model"] and rows.height == len(CUSTOMERS)


@pytest.fixture(scope="module")
def forced_backend(tmp_path_factory):
    """A tiny model trained to answer every desk prompt with search_orders(customer=Ana).

    Its training prompts are the openings of the offline agent's dialogues of the same tasks
    (same seeds, so the same persona-worded requests), i.e. the prompts of the first move."""
    tokenizer = make_tokenizer()
    tools, agents, tasks = desk_world()
    played = evaluate_agent(OfflineBackendConfig(), tasks, agents, tools, desk_config())
    probe = HFBackend(HFBackendConfig(), model=tiny_model(tokenizer), tokenizer=tokenizer)
    prompts = []
    for trajectory in played.trajectories:
        messages = [to_openai(m) for m in trajectory.messages]
        prompts.append(probe.encode(messages[:2], trajectory.tools))
    path = save(train_forced(tokenizer, prompts, FORCED), tokenizer,
                tmp_path_factory.mktemp("forced_desk"))
    return make_backend(HFBackendConfig(model_path=str(path), device="cpu"))


def test_forced_call_parses_end_to_end(forced_backend):
    """Text → hf backend parse → episode → environment → judge: the fixed call is counted as
    parsed and schema-valid, the task asking for Ana's orders gets its required call, and the
    concurrent episodes' moves shared one generate call. (One move per episode: the model
    was trained on opening prompts only.)"""
    tools, agents, tasks = desk_world()
    evaluation = evaluate_agent(forced_backend, tasks, agents, tools, desk_config(steps=1))
    s, rows = evaluation.summary, evaluation.rows
    assert s["tool_calls"] == len(CUSTOMERS) and s["mean_agent_turns"] == 1
    assert s["parse_validity_rate"] == 1.0 and s["schema_validity_rate"] == 1.0
    assert set(rows["end_reason"]) == {"step_limit"} and s["success_rate"] == 0.0
    failed = {r["task_id"]: json.loads(r["failed_criteria"]) for r in rows.iter_rows(named=True)}
    assert "required_calls" not in failed["desk/0"]  # the Ana task got its call
    assert all("required_calls" in failed[f"desk/{i}"] for i in (1, 2, 3))
    assert forced_backend.stats.batch_sizes[-1] == len(CUSTOMERS)


def test_cut_call_is_recorded_as_the_episode_records_endpoint_errors(forced_backend):
    tools, agents, tasks = desk_world()
    evaluation = evaluate_agent(forced_backend, tasks, agents, tools,
                                desk_config(steps=1, max_new_tokens=12))
    s = evaluation.summary
    assert s["tool_calls"] > 0 and s["parse_validity_rate"] == 0.0
    errors = evaluation.trajectories[0].outcome.errors
    assert errors and errors[0] == "invalid_json: search_orders"
