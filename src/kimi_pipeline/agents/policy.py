"""The agent's side of a synthesised dialogue: the request an agent answers each turn.

Every move of the agent — one tool call, a question to the user, a refusal or the final answer —
goes through the LLM protocol as an ``agent`` request (``policy_request``): the dialogue in the
OpenAI chat format (``to_openai``, system prompt first), the tools, and a context with the task,
the seed, the imperfection rates and the user's script as an agent may know it. An LLM agent
answers from the messages and tools alone; the role's offline program (``agents.offline.agent``)
plays the task's reference plan from the context.

K2 keeps only the trajectories a judge accepts (K2 report §3.1), so the synthetic agent must
sometimes fail in the ways real models fail, or the filter has nothing to reject:
``ImperfectionConfig`` holds the per-episode rates of the offline agent's deliberate mistakes
(``IMPERFECTIONS``), each reported in ``ChatResponse.meta["imperfections"]`` of the turn where it
happens: the ground truth the judge's verdicts are checked against (``judge.quality``). It also
holds the rate of mistakes the agent corrects (a refused call, then the right one), reported in
``meta["corrections"]``: the trajectory stays correct and shows the recovery from an error.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.llm.base import ChatRequest
from kimi_pipeline.records import Message, Task

ROLE = "agent"
IMPERFECTIONS = (
    "wrong_argument",
    "missing_argument",
    "skip_clarification",
    "give_up",
    "hallucinated_success",
)


class ImperfectionConfig(BaseModel):
    """Per-episode rates of the offline agent's deliberate mistakes."""

    model_config = ConfigDict(extra="forbid")

    wrong_argument_rate: float = Field(
        0.05, ge=0, le=1, description="One literal argument of one call gets a wrong value."
    )
    missing_argument_rate: float = Field(
        0.04, ge=0, le=1, description="One required argument of one call is left out."
    )
    skip_clarification_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="On a task with withheld information, guess the value instead of asking.",
    )
    give_up_rate: float = Field(
        0.04, ge=0, le=1, description="Stop before one plan step and give up."
    )
    hallucinated_success_rate: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Claim success without making the last state-changing call "
        "(on unsupported requests: claim to have done the impossible).",
    )
    corrected_mistake_rate: float = Field(
        0.15,
        ge=0,
        le=1,
        description="Not an imperfection: one call first goes out with a mistake the API "
        "refuses (a required argument left out or an argument named as in another tool: 400; "
        "a near-miss tool name or an id that does not exist: 404), and the agent's next call, "
        "after reading the error, is the right one. The task is still solved; SFT keeps the "
        "refused call out of its labels (curation.sft_format).",
    )


def to_openai(message: Message) -> dict[str, Any]:
    """A record message in the OpenAI chat format."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.raw_arguments
                    if c.raw_arguments is not None
                    else json.dumps(c.arguments, ensure_ascii=False),
                },
            }
            for c in message.tool_calls
        ]
    if message.role == "tool":
        out.update(tool_call_id=message.tool_call_id, name=message.name)
    return out


def policy_request(
    task: Task,
    messages: list[Message],
    tools: list[dict[str, Any]],
    seed: int,
    imperfections: ImperfectionConfig,
    user: dict[str, Any] | None = None,
) -> ChatRequest:
    """The agent's next-move request: the dialogue (system prompt first) and the tools; the
    context carries the task, the imperfection rates and the user's script as the offline
    program may know it (``UserScript.for_agent``: plan steps per part asked, a coming
    correction; None: the user asks for everything at once)."""
    return ChatRequest(
        role=ROLE,
        messages=[to_openai(m) for m in messages],
        tools=tools,
        seed=seed,
        context={
            "task": task.model_dump(mode="json"),
            "seed": seed,
            "imperfections": imperfections.model_dump(),
            "user": user or {},
        },
    )
