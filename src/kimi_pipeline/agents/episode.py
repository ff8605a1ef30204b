"""The episode loop: a user simulator, a tool-using agent and an environment play one task.

``run_episode`` is the multi-turn dialogue K2 synthesises at scale (K2 report §3.1):
system prompt, the user's opening, then the agent alternates tool calls (executed by the
environment, results appended as tool messages) and replies to the user, who answers,
reveals withheld facts when asked, asks for the next part of its request, or ends the
dialogue; the offline agent is told how the user splits the request (``UserScript.for_agent``)
so it acts only on what has been asked. Every failure — an endpoint error,
unparseable tool-call JSON, a call to a tool the agent does not have — becomes a recorded
event in the trajectory, never an exception. RL reuses the same loop for its rollouts.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.agents.policy import ImperfectionConfig, policy_request
from kimi_pipeline.envs.base import FaultConfig, make_environment
from kimi_pipeline.envs.user_sim import UserConfig, UserSimulator
from kimi_pipeline.llm.base import ChatBackend
from kimi_pipeline.records import Agent, Message, Task, ToolSpec, Trajectory, TrajectoryOutcome


class EpisodeConfig(BaseModel):
    """Limits and randomness of one episode."""

    model_config = ConfigDict(extra="forbid")

    max_user_turns: int = Field(8, ge=1, description="User turns before the dialogue is cut.")
    max_agent_steps: int = Field(
        24, ge=1, description="Agent moves (tool-call rounds + replies) before the episode is cut."
    )
    faults: FaultConfig = Field(default_factory=FaultConfig, description="Tool-result randomness.")
    user: UserConfig = Field(
        default_factory=UserConfig,
        description="How users unfold their request over turns (one part per turn, a follow-up).",
    )
    imperfections: ImperfectionConfig = Field(
        default_factory=ImperfectionConfig,
        description="Offline agent's deliberate mistakes (ground truth for the filter's judge).",
    )


async def run_episode(
    agent: Agent,
    task: Task,
    tools: list[ToolSpec],
    agent_backend: ChatBackend,
    user_backend: ChatBackend,
    persona: str,
    seed: int,
    config: EpisodeConfig,
) -> Trajectory:
    start = time.perf_counter()
    offered = [tool.as_openai_tool() for tool in tools]
    env = make_environment(agent.environment, config.faults)
    env.reset(tools, task.initial_state, seed, task.scripted_faults)
    initial_state = env.snapshot()
    user = UserSimulator(user_backend, task, persona, seed, max_turns=config.max_user_turns,
                         config=config.user)
    messages = [Message(role="system", content=agent.system_prompt)]
    tokens = {"prompt": 0, "completion": 0}
    outcome: dict[str, Any] = {
        "injected_faults": [], "agent_imperfections": [], "agent_corrections": [], "errors": []
    }
    end_reason, finished = "step_limit", False
    try:
        turn = await user.opening()
        messages.append(Message(role="user", content=turn.content))
        for _ in range(config.max_agent_steps):
            request = policy_request(task, messages, offered, seed, config.imperfections,
                                     user.script.for_agent())
            reply = await agent_backend.acomplete(request)
            tokens["prompt"] += reply.usage.prompt_tokens
            tokens["completion"] += reply.usage.completion_tokens
            outcome["agent_imperfections"] += reply.meta.get("imperfections", [])
            outcome["agent_corrections"] += reply.meta.get("corrections", [])
            if reply.error:
                outcome["errors"].append(f"agent backend: {reply.error}")
                end_reason = "agent_error"
                break
            if reply.tool_calls:
                messages.append(Message(role="assistant", content=reply.content, tool_calls=reply.tool_calls))
                for call in reply.tool_calls:
                    result = env.step(call)
                    if result.fault:
                        outcome["injected_faults"].append(f"{call.name}:{result.fault}")
                    if result.error in ("invalid_json", "unknown_tool"):
                        outcome["errors"].append(f"{result.error}: {call.name}")
                    messages.append(Message(role="tool", tool_call_id=call.id, name=call.name,
                                            content=result.content))
                continue
            messages.append(Message(role="assistant", content=reply.content or ""))
            turn = await user.respond(messages)
            if turn.done:
                end_reason, finished = turn.end_reason or "done", True
                break
            messages.append(Message(role="user", content=turn.content))
        final_state = env.snapshot()
    finally:
        env.close()
    return Trajectory(
        trajectory_id=f"{task.task_id}~s{seed}",
        task_id=task.task_id,
        agent_id=agent.agent_id,
        messages=messages,
        tools=offered,
        initial_state=initial_state,
        final_state=final_state,
        rubric=task.rubric,
        outcome=TrajectoryOutcome(finished=finished, end_reason=end_reason, **outcome),
        persona=persona,
        environment=agent.environment,
        seed=seed,
        backend=getattr(agent_backend, "name", "unknown"),
        prompt_tokens=tokens["prompt"],
        completion_tokens=tokens["completion"],
        latency_s=round(time.perf_counter() - start, 6),
    )
