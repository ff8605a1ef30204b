"""Agentic evaluation: a model plays held-out tasks as the agent in the synthesis world.

The SFT model is trained on filtered trajectories; what matters is whether it then acts as a
tool-using agent on tasks it has not seen. ``evaluate_agent`` puts any backend (``hf`` for our
model or a checkpoint, ``openai`` for an endpoint, ``offline`` as the ceiling) in the agent's
seat of ``run_episode``, with the offline user simulator as the user and the task's
environment executing its calls, and measures:

- **parse validity**: tool calls that parsed (a name and a JSON-object of arguments) over all
  calls attempted. An attempt that did not parse is in the trajectory as a ``ToolCall`` with
  ``raw_arguments`` (see ``llm.tool_parsing``), so the rates are read from the trajectories
  and mean the same for every backend;
- **schema validity**: calls naming a tool the agent was offered with arguments valid against
  that tool's JSON schema (the environment's own validator, ``envs.base.compile_tool``), over
  all calls attempted;
- **right tool**: parsed calls naming a tool the task's rubric requires (``required_calls``),
  over all calls attempted in tasks that require any — did the model pick the tool the task
  needs among the 3-8 it was offered;
- **rubric success**: the filter's judge verdict (``judge.rubric``, rule judge by default):
  a trajectory passes when every critical criterion passes (state predicates, required /
  forbidden calls and order, facts in the final answer, no false success claim, expected
  outcome, dialogue finished, checkpoints);
- **turns**: agent moves (assistant messages) and user turns per episode, and the counts.
A rate over zero calls is 0.0 (a model that never calls a tool made no valid call); the
counts sit next to it.

Held-out tasks: the SFT split is by agent (``SftExample.split``), so the tasks of validation
agents were never seen in training. ``held_out_tasks`` keeps the tasks of the given agents (and
/ or of the given trajectories, whose id is ``<task_id>~s<seed>``) and takes a deterministic
subset of ``n_tasks``: the lowest blake2b(seed:task_id), independent of row order. Episodes
run concurrently (``episodes_in_flight``) so the ``hf`` backend batches their requests; each
episode's seed and persona derive from its task id, as in synthesis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Iterable

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.agents.policy import ImperfectionConfig
from kimi_pipeline.agents.synthesis import split_playable, tool_lookup
from kimi_pipeline.agents.episode import EpisodeConfig, run_episode
from kimi_pipeline.agents.rollout import WorkItem, plan_work
from kimi_pipeline.envs.base import compile_tool
from kimi_pipeline.judge.rubric import JudgeConfig, Verdict, make_judge
from kimi_pipeline.llm.base import (
    BackendConfig,
    BackendSettings,
    ChatBackend,
    ChatRequest,
    ChatResponse,
    HFBackendConfig,
    make_backend,
    OfflineBackendConfig,
)
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.records import Agent, Task, ToolSpec, Trajectory, from_frame

NO_IMPERFECTIONS = ImperfectionConfig(
    wrong_argument_rate=0, missing_argument_rate=0, skip_clarification_rate=0, give_up_rate=0,
    hallucinated_success_rate=0, corrected_mistake_rate=0,
)

log = logging.getLogger(__name__)


class EvaluationConfig(BaseModel):
    """How the agent evaluation samples tasks and plays them."""

    model_config = ConfigDict(extra="forbid")

    n_tasks: int = Field(64, ge=1, description="Held-out tasks played (deterministic subset).")
    max_new_tokens: int = Field(
        256, ge=1, description="Token budget of each agent move (overrides the backend's)."
    )
    temperature: float = Field(
        0.0, ge=0, description="Agent sampling temperature (0 = greedy; overrides the backend's)."
    )
    episode: EpisodeConfig = Field(
        default_factory=lambda: EpisodeConfig(
            max_user_turns=4, max_agent_steps=12, imperfections=NO_IMPERFECTIONS
        ),
        description="Episode limits and tool-result faults. The offline agent's deliberate "
        "imperfections are off, so evaluating it measures the world's ceiling.",
    )
    episodes_in_flight: int = Field(
        32, ge=1, description="Episodes played concurrently (the hf backend batches their moves)."
    )
    user_backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="Backend of the user simulator (offline)."
    )
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="Judge deciding rubric success (rule judge)."
    )
    seed: int = Field(0, description="Seed of the task subset and of every episode.")
    hf_backend: BackendConfig = Field(
        default_factory=lambda: HFBackendConfig(),
        description="Settings of the hf backend each compared model runs under (compare_models "
        "sets model_path per model): batch size, device, dtype, cpu_threads.",
    )


@dataclass
class Evaluation:
    """Per-episode rows (one per task played), the summary, and the trajectories themselves."""

    rows: pl.DataFrame
    summary: dict[str, Any]
    trajectories: list[Trajectory]


# ------------------------------------------------------------------------------ held-out tasks


def validation_agent_ids(sft_dataset: pl.DataFrame) -> list[str]:
    """Agents of the SFT validation split (never seen in training)."""
    rows = sft_dataset.filter(pl.col("split") == "validation")
    return sorted(rows["agent_id"].unique().to_list())


def _rank(seed: int, task_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{task_id}".encode(), digest_size=8).digest()


def held_out_tasks(
    tasks: pl.DataFrame,
    n_tasks: int,
    seed: int = 0,
    agent_ids: Iterable[str] | None = None,
    trajectory_ids: Iterable[str] | None = None,
) -> pl.DataFrame:
    """Rows of ``tasks`` whose agent is in ``agent_ids`` and whose task played one of
    ``trajectory_ids`` (each filter applies only when given), at most ``n_tasks`` of them."""
    if agent_ids is not None:
        tasks = tasks.filter(pl.col("agent_id").is_in(sorted(set(agent_ids))))
    if trajectory_ids is not None:
        task_ids = {t.rsplit("~s", 1)[0] for t in trajectory_ids}
        tasks = tasks.filter(pl.col("task_id").is_in(sorted(task_ids)))
    ranked = sorted(tasks["task_id"].to_list(), key=lambda t: _rank(seed, t))[:n_tasks]
    return tasks.filter(pl.col("task_id").is_in(ranked)).sort("task_id")


# ------------------------------------------------------------------------------ playing


class SamplingOverride:
    """A backend whose every request gets the evaluation's temperature and token budget."""

    def __init__(self, backend: ChatBackend, temperature: float, max_tokens: int):
        self.backend, self.temperature, self.max_tokens = backend, temperature, max_tokens
        self.name = getattr(backend, "name", "unknown")

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        return await self.backend.acomplete(
            replace(request, temperature=self.temperature, max_tokens=self.max_tokens)
        )


async def play_all(items: list[WorkItem], agent: ChatBackend, user: ChatBackend,
                   config: EvaluationConfig) -> list[Trajectory]:
    """Every work item as an episode, ``episodes_in_flight`` at a time, results in order."""
    gate = asyncio.Semaphore(config.episodes_in_flight)

    async def play(item: WorkItem) -> Trajectory:
        async with gate:
            return await run_episode(item.agent, item.task, item.tools, agent, user,
                                     item.persona, item.seed, config.episode)

    return list(await asyncio.gather(*(play(item) for item in items)))


# ------------------------------------------------------------------------------ measuring


def call_counts(trajectory: Trajectory, tools: list[ToolSpec],
                task: Task | None = None) -> dict[str, int]:
    """Tool calls attempted, parsed, schema-valid for the tools offered, and (for a task that
    requires calls) attempted and naming a required tool."""
    offered = {t.name: t for t in tools}
    required = {c.name for c in task.rubric.required_calls} if task else set()
    counts = Counter(tool_calls=0, parsed_calls=0, schema_valid_calls=0,
                     calls_in_tool_tasks=0, right_tool_calls=0)
    for message in trajectory.messages:
        for call in message.tool_calls:
            counts["tool_calls"] += 1
            counts["calls_in_tool_tasks"] += bool(required)
            if not call.name or call.raw_arguments is not None:
                continue
            counts["parsed_calls"] += 1
            counts["right_tool_calls"] += call.name in required
            spec = offered.get(call.name)
            validator = compile_tool(spec).validator if spec else None
            counts["schema_valid_calls"] += bool(validator and validator.is_valid(call.arguments))
    return dict(counts)


def episode_row(item: WorkItem, trajectory: Trajectory, verdict: Verdict) -> dict[str, Any]:
    roles = Counter(m.role for m in trajectory.messages)
    return {
        "trajectory_id": trajectory.trajectory_id,
        "task_id": item.task.task_id,
        "agent_id": item.agent.agent_id,
        "task_kind": item.task.kind,
        "difficulty": item.task.rubric.difficulty,
        "environment": trajectory.environment,
        "persona": trajectory.persona,
        "passed": verdict.passed,
        "score": verdict.score,
        "failed_criteria": json.dumps(verdict.failed()),
        "agent_turns": roles["assistant"],
        "user_turns": roles["user"],
        **call_counts(trajectory, item.tools, item.task),
        "finished": trajectory.outcome.finished,
        "end_reason": trajectory.outcome.end_reason,
        "errors": len(trajectory.outcome.errors),
        "prompt_tokens": trajectory.prompt_tokens,
        "completion_tokens": trajectory.completion_tokens,
        "latency_s": trajectory.latency_s,
    }


def _rate(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 6) if denominator else 0.0


def summarise(rows: pl.DataFrame, backend: str, wall_s: float) -> dict[str, Any]:
    """Rates, means and counts over the episode rows."""
    n = rows.height
    total = {c: int(rows[c].sum()) if n else 0 for c in (
        "tool_calls", "parsed_calls", "schema_valid_calls", "calls_in_tool_tasks",
        "right_tool_calls", "completion_tokens", "prompt_tokens")}
    mean = {c: round(float(rows[c].mean()), 6) if n else 0.0 for c in (
        "score", "agent_turns", "user_turns")}
    by_kind = {} if not n else {
        r["task_kind"]: round(float(r["passed"]), 6)
        for r in rows.group_by("task_kind").agg(pl.col("passed").mean()).iter_rows(named=True)}
    return {
        "backend": backend,
        "episodes": n,
        "passed": int(rows["passed"].sum()) if n else 0,
        **total,
        "parse_validity_rate": _rate(total["parsed_calls"], total["tool_calls"]),
        "schema_validity_rate": _rate(total["schema_valid_calls"], total["tool_calls"]),
        "right_tool_rate": _rate(total["right_tool_calls"], total["calls_in_tool_tasks"]),
        "success_rate": _rate(int(rows["passed"].sum()) if n else 0, n),
        "mean_score": mean["score"],
        "mean_agent_turns": mean["agent_turns"],
        "mean_user_turns": mean["user_turns"],
        "finished_rate": _rate(int(rows["finished"].sum()) if n else 0, n),
        "agent_error_rate": _rate(int((rows["end_reason"] == "agent_error").sum()) if n else 0, n),
        "success_by_kind": dict(sorted(by_kind.items())),
        "wall_s": round(wall_s, 3),
        "completion_tokens_per_s": _rate(total["completion_tokens"], wall_s),
    }


# ------------------------------------------------------------------------------ entry point


def _frame(data: pl.DataFrame | list[Task]) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    from kimi_pipeline.records import to_frame

    return to_frame(data, Task)


def _agents(data: pl.DataFrame | Iterable[Agent]) -> dict[str, Agent]:
    records = from_frame(data, Agent, "evaluation")[0] if isinstance(data, pl.DataFrame) else data
    return {a.agent_id: a for a in records}


def _tools(data: pl.DataFrame | list[ToolSpec]) -> list[ToolSpec]:
    return from_frame(data, ToolSpec, "evaluation")[0] if isinstance(data, pl.DataFrame) else data


def evaluate_agent(
    backend: ChatBackend | BackendConfig,
    tasks: pl.DataFrame | list[Task],
    agents: pl.DataFrame | Iterable[Agent],
    tools: pl.DataFrame | list[ToolSpec],
    config: EvaluationConfig | None = None,
    agent_ids: Iterable[str] | None = None,
    trajectory_ids: Iterable[str] | None = None,
) -> Evaluation:
    """Play ``n_tasks`` held-out tasks with ``backend`` as the agent; rows, summary, trajectories.

    ``tasks`` / ``agents`` / ``tools`` are the synthesis catalog frames (or records);
    ``agent_ids`` / ``trajectory_ids`` select the held-out tasks (see ``held_out_tasks``;
    ``validation_agent_ids(sft_dataset)`` gives the SFT validation agents)."""
    config = config or EvaluationConfig()
    agent_index = _agents(agents)
    chosen = held_out_tasks(_frame(tasks), config.n_tasks, config.seed, agent_ids, trajectory_ids)
    playable, orphans = split_playable(chosen, agent_index)
    records, unreadable = from_frame(playable, Task, "evaluation")
    items = plan_work(agent_index, records, tool_lookup(_tools(tools)), config.seed)
    model = make_backend(backend) if isinstance(backend, BackendSettings) else backend
    agent = SamplingOverride(model, config.temperature, config.max_new_tokens)
    start = time.perf_counter()
    trajectories = asyncio.run(play_all(items, agent, make_backend(config.user_backend), config))
    wall = time.perf_counter() - start
    verdicts = make_judge(config.judge).judge_many(trajectories)
    rows = pl.DataFrame([episode_row(i, t, v) for i, t, v in zip(items, trajectories, verdicts)])
    summary = summarise(rows, agent.name, wall)
    summary["tasks_skipped"] = len(orphans) + len(unreadable)
    summary["tool_call_enforcer"] = getattr(model, "enforcer", None) is not None
    return Evaluation(rows, summary, trajectories)


def evaluation_key(model: ModelFolder, held_out: list[str], tasks: pl.DataFrame,
                   config: EvaluationConfig) -> str:
    """What an agent evaluation's figures depend on: the weights, the settings, the held-out
    agents and their tasks (the evaluation is deterministic given these)."""
    theirs = tasks.filter(pl.col("agent_id").is_in(held_out)).sort("task_id")
    sha = hashlib.sha256(json.dumps([model.weights_identity(), held_out,
                                     config.model_dump(mode="json")], sort_keys=True).encode())
    sha.update(theirs.hash_rows(seed=0).to_numpy().tobytes())
    return sha.hexdigest()[:16]


def compare_models(
    model_paths: dict[str, str],
    sft_dataset: pl.DataFrame,
    tasks: pl.DataFrame,
    agents: pl.DataFrame,
    tools: pl.DataFrame,
    config: EvaluationConfig,
    known: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, dict[str, Any]], pl.DataFrame]:
    """Evaluate each ``{name: model folder}`` as the agent on the same SFT-held-out tasks.

    Returns the summaries by name (each with its ``evaluation_key``) and all episode rows with
    a ``model`` column, so the report can put the initial model and the trained one side by
    side. A model whose key matches a summary in ``known`` (an earlier stage's evaluation) is
    not played again: that summary is returned, marked ``reused``, and it has no rows.
    """
    held_out = validation_agent_ids(sft_dataset)
    previous = {s.get("evaluation_key"): s for s in (known or {}).values()}
    summaries, frames = {}, []
    for name, path in model_paths.items():
        key = evaluation_key(ModelFolder(path), held_out, tasks, config)
        if key in previous:
            log.info("agent evaluation: %s has the weights, held-out tasks and settings of an "
                     "evaluation already in the catalog; its figures are reused", name)
            summaries[name] = {**previous[key], "reused": True}
            continue
        settings = config.hf_backend.model_copy(update={"kind": "hf", "model_path": path})
        result = evaluate_agent(settings, tasks, agents, tools, config, agent_ids=held_out)
        summaries[name] = {**result.summary, "evaluation_key": key}
        frames.append(result.rows.with_columns(pl.lit(name).alias("model")))
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame(
        {"model": []}, schema={"model": pl.String})
    return summaries, rows
