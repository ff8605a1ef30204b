"""Builders of small trajectory frames for the curation tests."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from kimi_pipeline.records import (
    Message,
    TaskRubric,
    ToolCall,
    Trajectory,
    TrajectoryOutcome,
    to_frame,
)

LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    },
}


def trajectory(
    tid: str,
    request: str,
    *,
    agent: str = "agent-1",
    answer: str = "Your order ORD-1 has shipped and arrives on Friday.",
    calls: list[tuple[str, dict[str, Any], str]] | None = None,
    persona: str = "terse",
    system: str = "You are a helpful order assistant.",
) -> Trajectory:
    """system, user, one assistant turn per call (each followed by its result), final answer."""
    messages = [Message(role="system", content=system)]
    if request:
        messages.append(Message(role="user", content=request))
    for k, (name, arguments, result) in enumerate(
        calls
        if calls is not None
        else [("lookup_order", {"order_id": "ORD-1"}, '{"status": "shipped"}')]
    ):
        messages.append(
            Message(
                role="assistant",
                tool_calls=[ToolCall(id=f"call_{k}", name=name, arguments=arguments)],
            )
        )
        messages.append(Message(role="tool", content=result, tool_call_id=f"call_{k}", name=name))
    messages.append(Message(role="assistant", content=answer))
    return Trajectory(
        trajectory_id=tid,
        task_id=f"task-{tid}",
        agent_id=agent,
        messages=messages,
        tools=[LOOKUP],
        initial_state={},
        final_state={},
        rubric=TaskRubric(difficulty="easy"),
        outcome=TrajectoryOutcome(finished=True, end_reason="satisfied"),
        persona=persona,
        environment="simulated",
        seed=0,
        backend="offline",
    )


def frame(
    trajectories: list[Trajectory], scores: list[float] | None = None, **columns: list
) -> pl.DataFrame:
    """Trajectories as the catalog stores them, plus ``judge_score`` and any extra columns."""
    scores = scores if scores is not None else [0.5] * len(trajectories)
    out = to_frame(trajectories, Trajectory).with_columns(
        judge_score=pl.Series(scores, dtype=pl.Float64)
    )
    return out.with_columns(**{name: pl.Series(values) for name, values in columns.items()})


def with_bad_row(df: pl.DataFrame, tid: str = "broken") -> pl.DataFrame:
    """``df`` plus a row whose ``messages`` is not JSON."""
    bad = df.head(1).with_columns(
        trajectory_id=pl.lit(tid), messages=pl.lit('[{"role": "user", "content": ')
    )
    return pl.concat([df, bad])


def loads(value: str) -> Any:
    return json.loads(value)
