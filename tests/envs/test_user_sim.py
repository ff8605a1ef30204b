"""The user simulator: persona styles, ask-only disclosure, endings, determinism, LLM path."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from kimi_pipeline.envs.user_sim import (
    PERSONAS,
    STOP,
    UserConfig,
    UserSimulator,
    UserTurn,
    parse_reply,
    pick_persona,
)
from kimi_pipeline.llm.base import ChatResponse, Usage
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.records import ExpectedCall, Message, Task, TaskRubric

REQUEST = "Please cancel the order ORD-7 and refund 3 items to my card."
KEY_FACTS = ("ORD-7", "3 items")


def make_task(kind: str = "missing_argument", request: str = REQUEST, **hidden) -> Task:
    return Task(
        task_id="t-1", agent_id="a-1", kind=kind, request=request,
        hidden_info=hidden or {"account_id": "ACC-19", "quantity": 3},
        rubric=TaskRubric(difficulty="easy"), seed=0,
    )


def run(coro):
    return asyncio.run(coro)


def play(persona: str, agent_lines: list[str], task: Task | None = None, seed: int = 1,
         max_turns: int = 8) -> list[UserTurn]:
    """Opening, then one user turn per agent line; stops early when the user ends."""
    sim = UserSimulator(OfflineBackend(), task or make_task(), persona, seed, max_turns)

    async def go() -> list[UserTurn]:
        turns = [await sim.opening()]
        messages = [Message(role="system", content="You are a shop agent."),
                    Message(role="user", content=turns[0].content)]
        for line in agent_lines:
            messages.append(Message(role="assistant", content=line))
            turn = await sim.respond(messages)
            turns.append(turn)
            if turn.done:
                break
            messages.append(Message(role="user", content=turn.content))
        return turns

    return run(go())


def opening(persona: str, seed: int = 1, task: Task | None = None) -> str:
    return play(persona, [], task, seed)[0].content


# ---------------------------------------------------------------------------------- personas


def test_registry_has_the_eight_styles_and_pick_is_seeded():
    assert {"terse", "verbose", "vague", "impatient", "non_native", "changes_mind",
            "polite_formal", "expert"} <= set(PERSONAS)
    picks = [pick_persona(random.Random(s)) for s in range(200)]
    assert set(picks) == set(PERSONAS)
    assert picks == [pick_persona(random.Random(s)) for s in range(200)]


def test_openings_differ_in_style_but_keep_the_key_facts():
    texts = {p: opening(p) for p in PERSONAS}
    assert len(set(texts.values())) == len(PERSONAS)
    for persona, text in texts.items():
        if persona in ("vague", "changes_mind"):
            continue
        for fact in KEY_FACTS:
            assert fact in text, (persona, text)
    assert len(texts["terse"]) < len(REQUEST) < len(texts["verbose"])
    assert "please" not in texts["terse"].lower()
    assert "the order" not in texts["non_native"] and "order ORD-7" in texts["non_native"]


def test_vague_withholds_specifics_until_asked():
    first = opening("vague")
    assert not any(fact in first for fact in KEY_FACTS)
    turns = play("vague", ["Could you tell me which order you mean?"])
    assert all(fact in turns[1].content for fact in KEY_FACTS)


def test_changes_mind_asks_a_variant_then_corrects_to_the_real_goal():
    turns = play("changes_mind", ["Sure, I can refund 4 items. Shall I?"])
    assert "ORD-7" in turns[0].content and "4 items" in turns[0].content
    assert "3 items" not in turns[0].content
    assert "ORD-7" in turns[1].content and "3 items" in turns[1].content
    assert "changed my mind" in turns[1].content or "scratch that" in turns[1].content


def test_non_native_keeps_ids_and_values_exact():
    task = make_task(request='Rename the file "the report.txt" to a new name for project PRJ-42.')
    text = opening("non_native", task=task)
    assert '"the report.txt"' in text and "PRJ-42" in text
    assert "the file" not in text


# -------------------------------------------------------------------------------- disclosure


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_hidden_info_only_when_asked_and_always_the_same(persona):
    turns = play(persona, ["Let me look into that for you.",
                           "Which account should I use?",
                           "Sorry, which account was it again?"])
    assert "ACC-19" not in turns[0].content
    assert "ACC-19" not in turns[1].content  # a progress note asks nothing
    assert "ACC-19" in turns[2].content and "ACC-19" in turns[3].content
    if persona != "expert":  # the expert gives every detail at once, by design
        assert "3" not in turns[2].content.replace("ACC-19", "")


def test_expert_gives_all_details_at_once():
    turns = play("expert", ["What's the quantity?"])
    assert "account_id=ACC-19" in turns[1].content and "quantity=3" in turns[1].content


@pytest.mark.parametrize("question,value", [
    ("How many would you like?", "3"),
    ("Can you share your account ID?", "ACC-19"),
    ("What quantity do you need?", "3"),
])
def test_field_detected_by_synonyms(question, value):
    assert value in play("polite_formal", [question])[1].content


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_unknown_ask_gets_dont_know(persona):
    if persona == "changes_mind":  # its second message is the correction
        turns = play(persona, ["Noted.", "What is your date of birth?"])
    else:
        turns = play(persona, ["What is your date of birth?"])
    reply = turns[-1].content.lower()
    assert not turns[-1].done
    assert any(w in reply for w in ("know", "idea", "matter", "n/a", "not sure", "dunno",
                                    "unset", "default")), reply
    assert "acc-19" not in reply


# ---------------------------------------------------------------------------------- endings


def test_satisfied_on_a_final_answer_even_with_a_courtesy_question():
    turns = play("terse", ["Done! Order ORD-7 has been cancelled and 3 items refunded. "
                           "Is there anything else I can help with?"])
    assert turns[-1] == UserTurn(None, True, "satisfied")


def test_agent_gave_up():
    turns = play("verbose", ["I'm sorry, but I cannot complete this request."])
    assert (turns[-1].done, turns[-1].end_reason) == (True, "agent_gave_up")


def test_refusal_accepted_for_unsupported_task():
    task = make_task(kind="unsupported", request="Book me a flight to Mars on ticket TK-1.")
    turns = play("polite_formal", ["I'm sorry, I don't have a tool for booking flights. "
                                   "Would you like help with something else?"], task)
    assert (turns[-1].done, turns[-1].end_reason) == (True, "satisfied_with_refusal")


def test_impatient_gives_up_after_three_questions_in_a_row():
    asks = ["Which account?", "And the quantity?", "What is the reason?", "Which card?"]
    turns = play("impatient", asks)
    assert [t.done for t in turns] == [False, False, False, True]
    assert turns[-1].end_reason == "user_gave_up"
    patient = play("polite_formal", asks)
    assert not any(t.done for t in patient)


def test_progress_note_gets_a_nudge_and_max_turns_ends_it():
    turns = play("verbose", ["Let me check."] * 10, max_turns=3)
    assert [t.done for t in turns] == [False, False, False, True]
    assert turns[-1].end_reason == "max_turns" and turns[-1].content is None


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_turns_different_seeds_different_phrasing():
    lines = ["Which account?", "How many?", "All done, the refund has been processed."]
    for persona in PERSONAS:
        assert play(persona, lines, seed=7) == play(persona, lines, seed=7)
        openings = {opening(persona, seed=s) for s in range(12)}
        assert len(openings) > 1, persona


class RecordingOffline(OfflineBackend):
    """Test double: the offline backend, keeping every request it was sent."""

    def __init__(self):
        super().__init__()
        self.requests = []

    async def acomplete(self, request):
        self.requests.append(request)
        return self.complete(request)


def test_user_never_sees_system_prompt_or_tool_results():
    backend = RecordingOffline()
    sim = UserSimulator(backend, make_task(), "terse", 3)

    async def go():
        await sim.opening()
        return await sim.respond([
            Message(role="system", content="SECRET POLICY"),
            Message(role="user", content="cancel ORD-7"),
            Message(role="assistant", content=None),
            Message(role="tool", content='{"account_id": "ACC-99"}', tool_call_id="c1"),
            Message(role="assistant", content="Which account?"),
        ])

    turn = run(go())
    assert "ACC-19" in turn.content
    request = backend.requests[-1]
    sent = " ".join(str(m["content"]) for m in request.messages) + str(request.context)
    assert "SECRET POLICY" not in sent and "ACC-99" not in sent
    assert [m["role"] for m in request.context["dialogue"]] == ["user", "assistant"]


# ------------------------------------------------------------------------------ LLM path


class ScriptedUserLLM:
    """Test double for a remote chat backend: replays fixed texts and records requests."""

    name = "scripted"

    def __init__(self, replies: list[str]):
        self.replies = list(replies)
        self.requests = []

    async def acomplete(self, request):
        self.requests.append(request)
        return ChatResponse(content=self.replies.pop(0), usage=Usage(120, 9), backend=self.name)


def test_llm_backend_plays_the_user_through_the_same_protocol():
    llm = ScriptedUserLLM(["hi, cancel ORD-7 pls", "Thanks! ###STOP### satisfied"])
    sim = UserSimulator(llm, make_task(), "terse", seed=4)

    async def go():
        first = await sim.opening()
        end = await sim.respond([Message(role="user", content=first.content),
                                 Message(role="assistant", content="Cancelled ORD-7.")])
        return first, end

    first, end = run(go())
    assert first == UserTurn("hi, cancel ORD-7 pls", False, None)
    assert first.usage.prompt_tokens == 120 and first.usage.completion_tokens == 9
    assert (end.done, end.end_reason, end.content) == (True, "satisfied", "Thanks!")
    system = llm.requests[0].messages[0]
    assert system["role"] == "system" and STOP in system["content"]
    assert "ACC-19" in system["content"] and REQUEST in system["content"]
    roles = [m["role"] for m in llm.requests[1].messages]
    assert roles == ["system", "user", "assistant", "user"]  # agent turns read as 'user'
    ctx = llm.requests[1].context
    assert ctx["persona"] == "terse" and ctx["turn"] == 1 and ctx["seed"] == 4
    assert ctx["hidden_info"] == {"account_id": "ACC-19", "quantity": 3}


CHAIN = Task(
    task_id="t-2", agent_id="a-1", kind="chained",
    request="Could you find the order with product Mug, then cancel it? Thanks!",
    plan=[ExpectedCall(name="list_orders", arguments={"product": "Mug"}),
          ExpectedCall(name="cancel_order", arguments={"order_id": "$ref:0.items.0.id"})],
    rubric=TaskRubric(difficulty="medium"), seed=0,
)
STEPWISE = UserConfig(stepwise_rate=1.0, follow_up_rate=1.0)


def test_stepwise_user_asks_the_next_part_once_the_first_is_answered():
    sim = UserSimulator(OfflineBackend(), CHAIN, "polite_formal", 3, config=STEPWISE)
    assert sim.script.parts == ("Could you find the order with product Mug? Thanks!", "cancel it")
    assert sim.script.for_agent() == {"stages": [1, 2], "corrects": False}

    async def go():
        messages = [Message(role="user", content=(await sim.opening()).content)]
        turns = []
        for line in ("Which product was it again?", "I found 1 order: ORD-3 (product: Mug).",
                     "Order ORD-3 has been cancelled.", "To recap: order ORD-3 was cancelled."):
            messages.append(Message(role="assistant", content=line))
            turns.append(await sim.respond(messages))
            messages.append(Message(role="user", content=turns[-1].content or ""))
        return messages[0].content, turns

    first, (answer, part, follow_up, end) = run(go())
    assert "find the order with product Mug" in first and "cancel" not in first
    assert "cancel it" not in answer.content  # a question is answered, not a part added
    assert part.content.endswith(": cancel it.") and not part.done
    assert not follow_up.done and "summarise what has been done" in follow_up.content
    assert (end.done, end.end_reason) == (True, "satisfied")


def test_llm_user_prompt_carries_the_parts_and_the_follow_up():
    llm = ScriptedUserLLM(["hello, please find the order with product Mug"])
    sim = UserSimulator(llm, CHAIN, "verbose", seed=4, config=STEPWISE)
    run(sim.opening())
    prompt = llm.requests[0].messages[0]["content"]
    assert f"Your goal: {CHAIN.request}" in prompt
    assert "(1) Could you find the order with product Mug? Thanks! (2) cancel it" in prompt
    assert "first message asks only for part (1)" in prompt and "follow-up question" in prompt
    assert llm.requests[0].context["parts"] == list(sim.script.parts)
    plain = ScriptedUserLLM(["hi"])
    run(UserSimulator(plain, CHAIN, "verbose", seed=4).opening())
    assert "part (1)" not in plain.requests[0].messages[0]["content"]


@pytest.mark.parametrize("text,expected", [
    ("###STOP### agent_gave_up", (None, True, "agent_gave_up")),
    ("ok bye ###STOP### satisfied_with_refusal", ("ok bye", True, "satisfied_with_refusal")),
    ("###STOP###", (None, True, "satisfied")),
    ("what's next?", ("what's next?", False, None)),
])
def test_parse_reply(text, expected):
    assert parse_reply(text) == expected


def test_backend_error_ends_the_dialogue_with_the_reason():
    class FailingLLM:  # test double: a backend whose call failed for good
        name = "failing"

        async def acomplete(self, request):
            return ChatResponse(content=None, error="timeout after 4 retries")

    turn = run(UserSimulator(FailingLLM(), make_task(), "terse", 0).opening())
    assert (turn.done, turn.end_reason, turn.error) == (True, "simulator_error",
                                                       "timeout after 4 retries")


def test_unknown_persona_is_refused():
    with pytest.raises(ValueError, match="unknown persona"):
        UserSimulator(OfflineBackend(), make_task(), "pirate", 0)


# ----------------------------------------------------------------------------------- speed


def test_offline_turns_are_fast():
    backend, task = OfflineBackend(), make_task()
    lines = ["Which account?", "How many?", "Done, the refund has been processed."]

    async def dialogues(n: int) -> int:
        turns = 0
        for i in range(n):
            sim = UserSimulator(backend, task, pick_persona(random.Random(i)), i)
            messages = [Message(role="user", content=(await sim.opening()).content)]
            turns += 1
            for line in lines:
                messages.append(Message(role="assistant", content=line))
                turn = await sim.respond(messages)
                turns += 1
                if turn.done:
                    break
                messages.append(Message(role="user", content=turn.content))
        return turns

    start = time.perf_counter()
    turns = run(dialogues(500))
    elapsed = time.perf_counter() - start
    assert turns >= 1500
    print(f"\n{turns / elapsed:,.0f} user-simulator turns/s")
