"""Multi-turn users end to end: user simulator, offline agent, world model and rule judge.

A user may ask for a multi-part request one part per turn, follow up on the answer, push back
on a refusal, correct its opening or leave the ids out until asked; the agent acts only on
what has been asked, and the judge's verdict follows the rubric, which checks every part.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.agents.policy import IMPERFECTIONS, ImperfectionConfig
from kimi_pipeline.agents.tasks import TaskConfig, write_all_tasks
from kimi_pipeline.envs.state import request_stages
from kimi_pipeline.envs.base import FaultConfig
from kimi_pipeline.agents.episode import EpisodeConfig, run_episode
from kimi_pipeline.envs.offline.user_simulator import shaped_request, variant_request
from kimi_pipeline.envs.user_sim import PERSONAS, UserConfig, draw_script
from kimi_pipeline.judge.rubric import RuleJudge
from kimi_pipeline.llm.base import ChatResponse
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.records import Task, Trajectory
from tests.agents.test_bundles import sample_tools

STEPWISE = UserConfig(stepwise_rate=1.0, follow_up_rate=0.0)
PLAIN = UserConfig(stepwise_rate=0.0, follow_up_rate=0.0)
FOLLOW_UP = UserConfig(stepwise_rate=0.0, follow_up_rate=1.0)
QUIET = FaultConfig(transient_error_rate=0, partial_result_rate=0, empty_result_rate=0,
                    edge_case_rate=0)
ZERO = ImperfectionConfig(**{f"{name}_rate": 0.0 for name in IMPERFECTIONS})
JUDGE = RuleJudge()


@pytest.fixture(scope="module")
def world():
    tools = sample_tools()
    backend = OfflineBackend()
    agents, _ = sample_agents(tools, 40, backend, AgentConfig(), seed=3)
    tasks, _ = write_all_tasks(agents, tools, backend, TaskConfig(tasks_per_agent=6), seed=3)
    index = {t.tool_id: t for t in tools}
    bundles = {a.agent_id: [index[i] for i in a.tool_ids] for a in agents}
    return {a.agent_id: a for a in agents}, bundles, tasks


def play(world, task: Task, persona: str, user: UserConfig, seed: int = 7,
         agent_backend=None) -> Trajectory:
    agents, bundles, _ = world
    config = EpisodeConfig(faults=QUIET, imperfections=ZERO, user=user)
    return asyncio.run(run_episode(agents[task.agent_id], task, bundles[task.agent_id],
                                   agent_backend or OfflineBackend(), OfflineBackend(), persona,
                                   seed, config))


def stages(task: Task) -> list[tuple[str, int]]:
    return request_stages(task.kind, task.request, len(task.plan))


def staged_tasks(world, last_part_acts: bool = False) -> list[Task]:
    """Tasks whose request splits into parts (no withheld values or scripted faults)."""
    out = [t for t in world[2] if len(stages(t)) > 1 and not t.hidden_info
           and not t.scripted_faults]
    if last_part_acts:  # the last part needs a call (a conditional's branch may need none)
        out = [t for t in out if stages(t)[-1][1] > stages(t)[-2][1]]
    return out


def user_turns(trajectory: Trajectory) -> list[tuple[int, str]]:
    return [(i, m.content) for i, m in enumerate(trajectory.messages) if m.role == "user"]


def call_positions(trajectory: Trajectory) -> list[int]:
    """Index of the message holding each successful tool call, in order."""
    ok = {m.tool_call_id for m in trajectory.messages
          if m.role == "tool" and '"error"' not in (m.content or "")}
    return [i for i, m in enumerate(trajectory.messages) for c in m.tool_calls if c.id in ok]


# ------------------------------------------------------------------- one part per turn


def test_stepwise_user_asks_one_part_per_turn_and_the_judge_passes_the_agent_that_follows(world):
    tasks = staged_tasks(world)
    assert {t.kind for t in tasks} >= {"chained", "conditional"}
    for task in tasks:
        parts = stages(task)
        trajectory = play(world, task, "polite_formal", STEPWISE)
        users = user_turns(trajectory)
        assert len(users) == len(parts), [m.content for m in trajectory.messages]
        for (_, text), (part, _) in zip(users[1:], parts[1:]):
            assert shaped_request("polite_formal", part) in text
        bounds = [steps for _, steps in parts]
        for step, position in enumerate(call_positions(trajectory)):
            part = next(j for j, bound in enumerate(bounds) if bound > step)
            assert users[part][0] < position, f"step {step} called before part {part} was asked"
        verdict = JUDGE.judge(trajectory)
        assert verdict.passed, (task.request, verdict.failed())
        assert len(user_turns(play(world, task, "polite_formal", PLAIN))) == 1


class FirstPartOnly:
    """Test double for an agent that serves the opening and then ignores what the user adds:
    it answers every later request with its last answer again."""

    name = "first-part-only"

    def __init__(self):
        self.inner = OfflineBackend()

    async def acomplete(self, request):
        users = [m for m in request.messages if m["role"] == "user"]
        said = [m["content"] for m in request.messages if m["role"] == "assistant"
                and m.get("content")]
        if len(users) > 1 and said:
            return ChatResponse(content=said[-1])
        return await self.inner.acomplete(request)


def test_a_part_asked_in_a_later_turn_is_checked_by_the_rubric(world):
    for task in staged_tasks(world, last_part_acts=True)[:12]:
        trajectory = play(world, task, "terse", STEPWISE, agent_backend=FirstPartOnly())
        assert len(user_turns(trajectory)) == len(stages(task))
        assert trajectory.outcome.end_reason == "satisfied"
        verdict = JUDGE.judge(trajectory)
        assert not verdict.passed and "required_calls" in verdict.failed(), task.request


# ------------------------------------------------------------- asking for what is missing


def _with_id_like_value(task: Task) -> bool:
    literal = [v for c in task.plan for v in c.arguments.values()
               if isinstance(v, str) and re.search(r"\d", v) and v in task.request]
    return bool(literal)


def test_vague_user_gives_the_ids_when_asked_and_the_agent_waits_for_them(world):
    tasks = [t for t in world[2] if t.kind == "single_call" and _with_id_like_value(t)][:10]
    assert tasks
    for task in tasks:
        trajectory = play(world, task, "vague", PLAIN)
        users = user_turns(trajectory)
        question = trajectory.messages[users[0][0] + 1]
        assert not question.tool_calls and "more specific" in question.content
        assert len(users) == 2 and task.request.rstrip(".?!") in users[1][1]
        assert all(position > users[1][0] for position in call_positions(trajectory))
        verdict = JUDGE.judge(trajectory)
        assert verdict.passed, (task.request, verdict.failed())


def _corrected_number(task: Task) -> tuple[str, int] | None:
    """(argument, value) of the plan whose number the changes-mind opening bumps."""
    opening = stages(task)[0][0]
    variant = variant_request(opening)
    if "what could you do about this" in variant:
        return None
    for call in task.plan:
        for name, value in call.arguments.items():
            if type(value) is int and str(value + 1) in variant and str(value + 1) not in opening:
                return name, value
    return None


def test_a_correction_is_acted_on_and_is_what_the_judge_checks(world):
    found = [(t, hit) for t in world[2] if not t.hidden_info and t.kind != "unsupported"
             for hit in [_corrected_number(t)] if hit]
    assert found
    for task, (name, value) in found[:6]:
        trajectory = play(world, task, "changes_mind", PLAIN)
        users = user_turns(trajectory)
        assert str(value + 1) in users[0][1] and str(value) in users[1][1]
        confirm = trajectory.messages[users[0][0] + 1]
        assert not confirm.tool_calls and "confirm" in confirm.content
        assert all(position > users[1][0] for position in call_positions(trajectory))
        assert JUDGE.judge(trajectory).passed
        acted_on_opening = trajectory.model_copy(deep=True)
        for message in acted_on_opening.messages:
            for call in message.tool_calls:
                if call.arguments.get(name) == value:
                    call.arguments[name] = value + 1
        verdict = JUDGE.judge(acted_on_opening)
        assert not verdict.passed and "required_calls" in verdict.failed()


# ------------------------------------------------------------- follow-ups and push-backs


def test_a_follow_up_question_gets_a_recap_the_judge_accepts(world):
    tasks = [t for t in world[2] if t.kind == "single_call" and not _with_id_like_value(t)][:8]
    for task in tasks:
        trajectory = play(world, task, "expert", FOLLOW_UP)
        users = user_turns(trajectory)
        assert len(users) == 2 and "final state" in users[1][1]
        assert trajectory.messages[-1].content.startswith("To recap: ")
        assert JUDGE.judge(trajectory).passed


def test_a_refused_user_pushes_back_once_and_the_refusal_holds(world):
    tasks = [t for t in world[2] if t.kind == "unsupported"][:6]
    assert tasks
    for task in tasks:
        trajectory = play(world, task, "impatient", FOLLOW_UP)
        assert len(user_turns(trajectory)) == 2
        assert trajectory.outcome.end_reason == "satisfied_with_refusal"
        assert "I can't do that" in trajectory.messages[-1].content
        assert not any(m.tool_calls for m in trajectory.messages)
        assert JUDGE.judge(trajectory).passed


# ------------------------------------------------------------------------ determinism


def test_same_seed_same_dialogue_and_the_script_varies_over_seeds(world):
    default = UserConfig()
    for task in world[2][:20]:
        first, again = (play(world, task, "non_native", default, seed=11) for _ in range(2))
        assert first.messages == again.messages and first.final_state == again.final_state
    task = staged_tasks(world)[0]
    half = UserConfig(stepwise_rate=0.5, follow_up_rate=0.5)
    scripts = [draw_script(task, "terse", seed, half) for seed in range(40)]
    assert scripts == [draw_script(task, "terse", seed, half) for seed in range(40)]
    assert {len(s.parts) for s in scripts} == {1, len(stages(task))}
    assert {s.follow_up for s in scripts} == {True, False}
    turns = {len(user_turns(play(world, task, "terse", half, seed=s))) for s in range(12)}
    assert len(turns) > 1


def test_scripts_fit_under_a_tight_turn_cap_for_every_persona(world):
    """Agentic evaluation caps users at 4 turns: a script that would not fit drops its
    follow-up, then its parts, so no dialogue is cut."""
    agents, bundles, _ = world
    eager = UserConfig(stepwise_rate=1.0, follow_up_rate=1.0)
    config = EpisodeConfig(max_user_turns=4, faults=QUIET, imperfections=ZERO, user=eager)
    tasks = staged_tasks(world)[:16] + [t for t in world[2] if t.hidden_info][:8]
    for task in tasks:
        for persona in sorted(PERSONAS):
            trajectory = asyncio.run(run_episode(
                agents[task.agent_id], task, bundles[task.agent_id], OfflineBackend(),
                OfflineBackend(), persona, 5, config))
            assert trajectory.outcome.end_reason != "max_turns", (persona, task.request)
            assert JUDGE.judge(trajectory).passed, (persona, task.request)
