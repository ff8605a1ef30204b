"""The one LLM-judge core: tolerant reply parsing with reasons, seeded shuffled repeats, the
vote with abstentions, and the three gym judges going through it on copies of their domains.

``ScriptedBackend`` is the shared stand-in for a remote judge model (the gym tests import it).
"""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.gym.run import GymConfig
from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.llm_judge import (
    Abstain,
    CriterionVerdict,
    criteria_block,
    parse_json_reply,
    parse_reply,
    shuffled_orders,
    verdicts_of,
    vote,
)
from kimi_pipeline.llm.base import ChatResponse
from kimi_pipeline.records import GymTask


class ScriptedBackend:
    """A stand-in remote model: answers ``content`` (a text, or a function of the request) or
    fails with ``error``; records every request it is asked."""

    name = "scripted"

    def __init__(self, content, error: str | None = None):
        self.content, self.error, self.requests = content, error, []

    async def acomplete(self, request):
        self.requests.append(request)
        content = self.content(request) if callable(self.content) else self.content
        return ChatResponse(content=content, error=self.error, backend=self.name)


# ------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("content", [
    '{"safe": true}',
    '```json\n{"safe": true}\n```',
    '```JSON {"safe": true} ```',
    'Here is my verdict:\n```\n{"safe": true}\n```\nHope this helps.',
    'Sure! {"safe": true} is my answer.',
    'Set notation {x} aside: {"safe": true} (final)',
    '  {"safe": true, "why": "a } in a string"} trailing',
])
def test_json_is_found_in_fences_and_prose(content):
    assert parse_json_reply(content)["safe"] is True


@pytest.mark.parametrize("content, reason", [
    (None, "empty reply"),
    ("   \n", "empty reply"),
    ("The response is safe.", "reply is not JSON: 'The response is safe.'"),
    ("{", "reply is not JSON: '{'"),
    ("{" * 1000, f"reply is not JSON: '{'{' * 80}'"),  # quoted up to 80 characters
    ("[" * 100_000, f"reply is not JSON: '{'[' * 80}'"),
    ('{"safe": tru', "reply is not JSON: '{\"safe\": tru'"),
    ("[]", "reply is JSON but not an object (list): '[]'"),
    ('"safe"', "reply is JSON but not an object (str): '\"safe\"'"),
    ("```json\n[1, 2]\n```", "reply is JSON but not an object (list): '[1, 2]'"),
])
def test_unusable_replies_give_their_reason_and_never_raise(content, reason):
    assert parse_json_reply(content) == Abstain(reason)


def test_a_failed_call_abstains_with_the_backend_error():
    assert parse_reply(ChatResponse(content=None, error="HTTP 500")) == Abstain(
        "backend error: HTTP 500")
    assert parse_reply(ChatResponse(content='{"ok": 1}')) == {"ok": 1}


def test_ask_reads_every_reply_in_request_order():
    backend = ScriptedBackend(
        lambda r: "garbage" if r.context["i"] == 2 else r.messages[0]["content"])
    requests = [llm_judge.json_request("judge", "", f'item {{"i": {i}}}', {"i": i})
                for i in range(5)]
    assert llm_judge.ask(backend, requests) == [
        {"i": 0}, {"i": 1}, Abstain("reply is not JSON: 'garbage'"), {"i": 3}, {"i": 4}]
    assert [r.response_format for r in backend.requests] == ["json"] * 5
    assert backend.requests[0].messages == [{"role": "user", "content": 'item {"i": 0}'}]


def test_criteria_block_keeps_the_given_order():
    assert criteria_block([("b", "second"), ("a", "first"), ("plain sentence.", "")]) == (
        "1. b: second\n2. a: first\n3. plain sentence.")


# ------------------------------------------------------------------- repeats and the vote

NAMES = ["state", "calls", "facts", "order", "outcome"]


def test_shuffled_orders_are_seeded_per_item_and_repeat():
    orders = shuffled_orders(NAMES, "traj-1", 4, seed=7)
    assert orders == shuffled_orders(NAMES, "traj-1", 4, seed=7)
    assert all(sorted(o) == sorted(NAMES) for o in orders) and len(orders) == 4
    assert len({tuple(o) for o in orders}) > 1  # repeats differ
    assert orders[2] == random.Random("7:traj-1:2").sample(NAMES, len(NAMES))
    assert orders != shuffled_orders(NAMES, "traj-2", 4, seed=7)
    assert NAMES == ["state", "calls", "facts", "order", "outcome"]  # input left alone


def test_verdicts_of_reads_boolean_verdicts_under_any_keys():
    reply = {"verdicts": [{"constraint": "a", "ok": True, "reason": "fine"},
                          {"constraint": "b", "ok": "yes"},  # not a boolean: skipped
                          {"constraint": "z", "ok": False},  # not asked: skipped
                          "junk"]}
    assert verdicts_of(reply, ["a", "b"], items="verdicts", name="constraint", ok="ok") == {
        "a": (True, "fine")}
    by_index = {"sentences": [{"index": 2, "supported": False, "reason": "no"}]}
    assert verdicts_of(by_index, [1, 2], items="sentences", name="index", ok="supported") == {
        "2": (False, "no")}
    assert verdicts_of({"criteria": "x"}, ["a"]) == Abstain("reply has no 'criteria' list")
    assert verdicts_of({"criteria": []}, ["a"]) == Abstain("reply judges none of the criteria")
    assert verdicts_of(Abstain("empty reply"), ["a"]) == Abstain("empty reply")


def test_vote_counts_valid_repeats_against_the_threshold_and_records_abstentions():
    judgements = [
        {"a": (True, "yes"), "b": (True, "ok")},
        Abstain("reply is not JSON"),
        {"a": (True, "yes again"), "b": (False, "missing")},
        {"a": (False, "no")},
    ]
    voted = vote(["a", "b", "c"], judgements, threshold=0.5)
    note = " (abstained: repeat 1: reply is not JSON)"
    assert voted == [
        CriterionVerdict("a", True, "2/3 repeats passed: yes" + note),
        CriterionVerdict("b", False, "1/2 repeats passed: missing" + note),  # a tie fails
        CriterionVerdict("c", False, "no repeat judged this criterion" + note),
    ]
    strict = vote(["a"], judgements, threshold=0.7)
    assert not strict[0].passed and strict[0].reason.startswith("2/3 repeats passed: no")
    assert vote(["a"], [Abstain("empty reply"), Abstain("backend error: x")], 0.5) == Abstain(
        "judge replies unparseable: repeat 0: empty reply; repeat 1: backend error: x")


# ------------------------------------------------------------- the gym judges use the core


def _safety_case():
    task = GymTask(task_id="t", domain="safety", prompt="p",
                   metadata={"category": "weapons", "harmful": True, "helpful_terms": []})
    reply = 'My verdict:\n```json\n{"safe": false, "reason": "scripted"}\n```'
    return task, "I can't help with that.", reply


def _instruction_case():
    from tests.gym.test_instructions import ESSAY, FORMAL, task

    reply = 'Sure. {"verdicts": [{"constraint": "formal_tone", "ok": false, "reason": "scripted"}]}'
    return task(FORMAL), ESSAY, reply


def _faithfulness_case():
    task = get_domain("faithfulness").generate(random.Random(3), 1, 1)[0]
    reply = '```json\n{"sentences": [{"index": 1, "supported": false, "reason": "scripted"}]}\n```'
    return task, str(task.answer), reply


CASES = {"safety": (_safety_case, "safety_judge"),
         "instruction_following": (_instruction_case, "instruction_judge"),
         "faithfulness": (_faithfulness_case, "faithfulness_judge")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gym_judges_ask_through_the_core_on_a_copy(name, monkeypatch):
    case, role = CASES[name]
    task, response, reply = case()
    registered = get_domain(name)
    assert registered.judge_role == role
    assert registered.verify(task, response).reward == 1.0  # the offline judge accepts it
    asked = []

    def spy(backend, requests, progress=None):
        asked.extend(r.role for r in requests)
        return real_ask(backend, requests, progress)

    real_ask = llm_judge.ask
    monkeypatch.setattr(llm_judge, "ask", spy)
    model = ScriptedBackend(reply)
    judged = registered.with_judge(model)
    v = judged.verify(task, response)
    assert v.reward == 0.0 and "scripted" in v.reason  # the fenced / prose verdict was read
    assert asked == [role] and [r.role for r in model.requests] == [role]
    assert model.requests[0].context  # the context the role's offline program reads
    assert judged is not registered and judged.judge_backend is model
    assert registered.judge_backend is None and get_domain(name) is registered
    assert registered.verify(task, response).reward == 1.0
    failed = registered.with_judge(ScriptedBackend(None, error="HTTP 503")).verify(task, response)
    assert failed.reward == 0.0 and "judge reply unusable: backend error: HTTP 503" in failed.reason


def test_a_domain_without_an_llm_judge_has_no_with_judge_copy():
    with pytest.raises(ValueError, match="has no LLM judge"):
        get_domain("math").with_judge(ScriptedBackend("{}"))


@pytest.mark.parametrize("judges, message", [
    ({"alchemy": {"kind": "offline"}}, "unknown gym domain 'alchemy'"),
    ({"logic": {"kind": "offline"}}, "'logic' has no LLM judge"),
])
def test_gym_config_refuses_judges_it_cannot_wire(judges, message):
    with pytest.raises(ValidationError, match=message):
        GymConfig.model_validate({"domains": {"math": [1]}, "judges": judges})
    ok = GymConfig.model_validate({"domains": {"math": [1]}, "judges": {"safety": {}}})
    assert ok.judges["safety"].kind == "offline"
    assert GymConfig.model_validate({"domains": {"math": [1]}}).judges == {}
