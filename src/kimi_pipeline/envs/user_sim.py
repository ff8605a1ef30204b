"""The user simulator: the human side of a synthesised tool-use dialogue.

K2's trajectories are dialogues between a tool-using agent and *users with distinct
communication styles*. A persona changes how things are said, never what is true: every
persona wants exactly the task's ``request``, gives the values of ``task.hidden_info`` only
when the agent asks for them (always the same values), says it does not know anything else,
and ends the dialogue when the agent has answered (``satisfied``), failed (``agent_gave_up``),
rightly refused an unsupported request (``satisfied_with_refusal``), tried its patience
(``user_gave_up``) or run out of turns (``max_turns``).

Like tau-bench users, a user does not always say everything in its first message. Per
episode, a ``UserScript`` is drawn from the seed (rates in ``UserConfig``): a request with
several parts (a chain of steps, a check and then a condition: ``envs.state.request_stages``)
may be asked for one part per turn, the next once the agent has answered the previous one,
so a later turn adds a request the rubric already checks; a satisfied user may ask one
follow-up question on the final answer, and a refused one may push back once, which the rubric
does not penalise; the changes-mind persona opens with a variant and corrects it in its second
message to the real goal, whose values the rubric's required calls hold. The agent's side of
the script (which parts make a stage, whether a correction is coming) is ``for_agent``.

Each turn goes through the LLM protocol: a ``user_simulator`` request whose messages are a
real role-play prompt (persona, goal, the parts in order, private details, the ``###STOP###``
convention) plus the visible dialogue seen from the user's side, and whose context holds the
same facts as structure. An LLM backend plays the user from the messages; the offline program
of the role (``envs.offline.user_simulator``) plays it from the context, deterministically from
the seed and the turn index. Both replies are parsed the same way (``parse_reply``).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.envs.state import request_stages
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, Usage
from kimi_pipeline.records import Message, Task

ROLE = "user_simulator"
STOP = "###STOP###"
END_REASONS = ("satisfied_with_refusal", "satisfied", "agent_gave_up", "user_gave_up", "max_turns")


# -------------------------------------------------------------------------------------- personas


@dataclass(frozen=True)
class Persona:
    """A communication style: how the user writes, never what the user wants."""

    name: str
    style: str  # one line on the writing style, read by the role-play prompt
    description: str  # behaviour over the dialogue, read by the role-play prompt


PERSONAS: dict[str, Persona] = {
    p.name: p
    for p in (
        Persona("terse", "Very short messages, no greetings, no pleasantries, lower case.",
                "Answers exactly what is asked in as few words as possible."),
        Persona("verbose", "Long, friendly messages with background and apologies.",
                "Explains the situation at length; gives private details only when asked."),
        Persona("vague", "Hesitant, imprecise wording; leaves out ids, numbers and names.",
                "Withholds the specifics of the request until the agent asks for them."),
        Persona("impatient", "Short, pushy messages demanding speed.",
                "Pushes the agent to hurry; gives up if the agent asks more than two "
                "questions in a row."),
        Persona("non_native", "Simple grammar, dropped articles, occasional word-order errors; "
                "ids, names and numbers are always written exactly.",
                "Cooperative and polite, answers questions plainly."),
        Persona("changes_mind", "Casual and a little indecisive.",
                "First asks for a variant of the goal, then in the second message corrects "
                "it to the real goal and sticks to it."),
        Persona("polite_formal", "Formal, courteous register, complete sentences.",
                "Thanks the agent, answers precisely and formally."),
        Persona("expert", "Technical jargon (endpoints, params, idempotency), no hand-holding.",
                "When asked for any detail, gives all private details at once as name=value."),
    )
}
_PERSONA_NAMES = tuple(PERSONAS)


def pick_persona(rng: random.Random) -> str:
    """A persona name drawn uniformly with the caller's seeded generator."""
    return rng.choice(_PERSONA_NAMES)


# ------------------------------------------------------------------------------- the script


class UserConfig(BaseModel):
    """How often users unfold their request over several turns (drawn once per episode)."""

    model_config = ConfigDict(extra="forbid")

    stepwise_rate: float = Field(
        0.75, ge=0, le=1,
        description="Chance a user whose request has several parts (a chain of steps, a check "
        "and then a condition) asks for one part per turn, the next once the agent has "
        "answered the previous one, instead of everything in the first message.")
    follow_up_rate: float = Field(
        0.25, ge=0, le=1,
        description="Chance a user asks one follow-up question on the agent's final answer "
        "(what was done, with the ids) before ending satisfied, or pushes back once on a "
        "refusal before accepting it; the rubric penalises neither (the agent recaps, or "
        "holds its refusal).")


@dataclass(frozen=True)
class UserScript:
    """How one user unfolds the task over the dialogue."""

    parts: tuple[str, ...]  # what the user asks for, one part per turn (one part: all at once)
    bounds: tuple[int, ...]  # plan steps served once each part is done, counted from the start
    follow_up: bool  # asks one follow-up question on the final answer (or pushes back once)
    corrects: bool  # the opening is a variant that the second message corrects

    def for_agent(self) -> dict[str, Any]:
        """What the offline agent may know: how the plan is split into what the user asks per
        turn, and that the opening will be corrected (so it confirms before acting)."""
        return {"stages": list(self.bounds), "corrects": self.corrects}


def draw_script(task: Task, persona: str, seed: int, config: UserConfig,
                max_turns: int = 8) -> UserScript:
    """The episode's script, from the seed alone: the same seed gives the same script. A
    script whose planned messages would not fit under ``max_turns`` (with one turn to spare)
    drops its follow-up, then its parts."""
    rng = random.Random(f"user-script:{seed}")
    stepwise, follow_up = rng.random(), rng.random()  # always both: one rate never shifts the other
    stages = request_stages(task.kind, task.request, len(task.plan))
    whole = [(task.request, len(task.plan))]
    if stepwise >= config.stepwise_rate or not _hidden_in_first(task, stages[0][1]):
        stages = whole
    wants = follow_up < config.follow_up_rate
    wants = wants and _planned(task, persona, len(stages), wants) < max_turns
    if _planned(task, persona, len(stages), wants) >= max_turns:
        stages = whole
    return UserScript(tuple(p for p, _ in stages), tuple(b for _, b in stages), wants,
                      persona == "changes_mind")


def _planned(task: Task, persona: str, parts: int, follow_up: bool) -> int:
    """User messages a script needs: each part (twice for a vague user, who gives the ids when
    asked), a correction, an answer with the withheld values, a follow-up."""
    per_part = 2 if persona == "vague" else 1
    return (parts * per_part + (persona == "changes_mind") + bool(task.hidden_info)
            + follow_up)


def _hidden_in_first(task: Task, steps: int) -> bool:
    """Withheld values must belong to the first part: the agent asks for them before acting."""
    first = [call.arguments for call in task.plan[:steps]]
    return all(any(args.get(k) == v for args in first) for k, v in task.hidden_info.items())


# --------------------------------------------------------------------------- the prompt (LLM)


def spoken_value(value: Any) -> str:
    """A private detail's value as the user says it: yes/no, a comma list, JSON, or the text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(spoken_value(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def system_prompt(persona: Persona, task: Task, script: UserScript | None = None) -> str:
    """The role-play prompt an LLM reads to play this user for this task (and script)."""
    details = "; ".join(f"{k} = {spoken_value(v)}" for k, v in task.hidden_info.items()) or "none"
    refusal = (" The assistant may be unable to do this; a clear refusal is an acceptable outcome."
               if task.kind == "unsupported" else "")
    return (
        "You are role-playing a human user chatting with an AI assistant that can use tools. "
        "Stay in character and never mention that you are simulated.\n"
        f"Persona: {persona.name}. Style: {persona.style} Behaviour: {persona.description}\n"
        f"Your goal: {task.request}{refusal}\n"
        + (_script_lines(script) if script else "")
        + f"Private details (give each only when the assistant asks for it, always with exactly "
        f"this value): {details}.\n"
        "If the assistant asks for anything else, say you don't know or that it doesn't matter, "
        "in your style. Never invent ids or values.\n"
        "Write only your next message as the user. When the dialogue should end, write "
        f"{STOP} followed by one reason: 'satisfied' (the assistant completed your goal), "
        "'satisfied_with_refusal' (it clearly refused a request it cannot serve), "
        "'agent_gave_up' (it said it cannot do it or gave up) or 'user_gave_up' (you lost "
        "patience)."
    )


def _script_lines(script: UserScript) -> str:
    """The script as instructions: parts asked one per turn, the follow-up or push-back."""
    lines = ""
    if len(script.parts) > 1:
        parts = " ".join(f"({i}) {part}" for i, part in enumerate(script.parts, 1))
        lines += ("Do not ask for everything at once: your first message asks only for part (1); "
                  "each time the assistant has answered, ask for the next part, in order. Your "
                  f"goal is complete only when every part is done. Parts: {parts}\n")
    if script.follow_up:
        lines += ("When the assistant says it is done, ask one short follow-up question about the "
                  "result (what was done, with the ids) before ending; if it refuses, push back "
                  "once before accepting.\n")
    return lines


_START = {"role": "user", "content": "(The assistant is ready. Write your first message.)"}
_FLIP = {"assistant": "user", "user": "assistant"}  # the simulated user speaks as 'assistant'
_REASON = re.compile("|".join(END_REASONS))


def parse_reply(text: str | None) -> tuple[str | None, bool, str | None]:
    """(content, done, end_reason) from a user-simulator reply, offline or LLM alike."""
    text = (text or "").strip()
    if STOP not in text:
        return text, False, None
    before, _, after = text.partition(STOP)
    reason = _REASON.search(after)
    return before.strip() or None, True, reason.group(0) if reason else "satisfied"


# ---------------------------------------------------------------------------------- simulator


@dataclass
class UserTurn:
    """One user message, or the end of the dialogue and why."""

    content: str | None
    done: bool
    end_reason: str | None
    usage: Usage = field(default_factory=Usage, compare=False)
    latency_s: float = field(default=0.0, compare=False)
    error: str | None = None


def visible_dialogue(messages: list[Message]) -> list[dict[str, str]]:
    """What a human user sees: the user and assistant texts, no system prompt or tool traffic."""
    return [{"role": m.role, "content": m.content} for m in messages
            if m.role in _FLIP and m.content]


class UserSimulator:
    """Plays one persona through one task, one turn per call, through any chat backend."""

    def __init__(self, backend: ChatBackend, task: Task, persona: str, seed: int,
                 max_turns: int = 8, config: UserConfig | None = None):
        """``config`` sets the rates of the episode's script; None: a user who asks for
        everything at once and ends when served (no follow-up)."""
        if persona not in PERSONAS:
            raise ValueError(f"unknown persona {persona!r}; known: {sorted(PERSONAS)}")
        self.backend, self.task, self.persona = backend, task, persona
        self.seed, self.max_turns, self.turn = seed, max_turns, 0
        self.last_response: ChatResponse | None = None
        plain = UserConfig(stepwise_rate=0.0, follow_up_rate=0.0)
        self.script = draw_script(task, persona, seed, config or plain, max_turns)
        self._system = {"role": "system",
                        "content": system_prompt(PERSONAS[persona], task, self.script)}
        self._context = {
            "persona": persona, "request": task.request, "hidden_info": task.hidden_info,
            "kind": task.kind, "expected_outcome": task.rubric.expected_outcome, "seed": seed,
            "parts": list(self.script.parts), "follow_up": self.script.follow_up,
        }

    async def opening(self) -> UserTurn:
        self.turn = 0
        return await self._ask([])

    async def respond(self, messages: list[Message]) -> UserTurn:
        self.turn += 1
        reply = await self._ask(visible_dialogue(messages))
        if not reply.done and self.turn >= self.max_turns:
            return UserTurn(None, True, "max_turns", reply.usage, reply.latency_s)
        return reply

    async def _ask(self, dialogue: list[dict[str, str]]) -> UserTurn:
        flipped = [{"role": _FLIP[m["role"]], "content": m["content"]} for m in dialogue]
        response = await self.backend.acomplete(ChatRequest(
            role=ROLE, messages=[self._system, _START, *flipped], seed=self.seed,
            context={**self._context, "turn": self.turn, "dialogue": dialogue}))
        self.last_response = response
        if response.error:
            return UserTurn(None, True, "simulator_error", response.usage, response.latency_s,
                            response.error)
        content, done, reason = parse_reply(response.content)
        return UserTurn(content, done, reason, response.usage, response.latency_s)
