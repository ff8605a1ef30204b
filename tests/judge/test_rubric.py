"""The rubric judge on hand-made trajectories: each criterion passing and failing with its
reason, hallucinated success, '$ref' facts, refusals, the frame-row path, the LLM judge."""

import asyncio
import json

import pytest
from pydantic import ValidationError

from kimi_pipeline.judge.criteria import CRITERIA
from kimi_pipeline.judge.rubric import JudgeConfig, RuleJudge, make_judge
from kimi_pipeline.judge.rubric_llm import LlmJudge
from kimi_pipeline.llm.base import ChatResponse, make_backend, OfflineBackendConfig
from kimi_pipeline.records import Message, TaskRubric, ToolCall, Trajectory, to_frame

S = {"type": "string"}


def tool(name, description, properties, required):
    params = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": params},
    }


TOOLS = [
    tool(
        "create_order",
        "Place a new order.",
        {"product": S, "quantity": {"type": "integer", "minimum": 1}},
        ["product", "quantity"],
    ),
    tool("get_order", "Get one order by id.", {"order_id": S}, ["order_id"]),
    tool("cancel_order", "Cancel an order.", {"order_id": S, "reason": S}, ["order_id"]),
    tool("delete_order", "Delete an order.", {"order_id": S}, ["order_id"]),
]
ORDERS = {"orders": {"ORD-1": {"product": "Mug", "status": "open"}}}
CANCELLED = {"orders": {"ORD-1": {"product": "Mug", "status": "cancelled"}}}


def user(text):
    return Message(role="user", content=text)


def say(text):
    return Message(role="assistant", content=text)


def calls(*specs):
    """An assistant tool-call turn from (call id, tool name, arguments) triples."""
    return Message(
        role="assistant", tool_calls=[ToolCall(id=i, name=n, arguments=a) for i, n, a in specs]
    )


def result(call_id, name, payload):
    return Message(role="tool", tool_call_id=call_id, name=name, content=json.dumps(payload))


def error(call_id, name, kind="transient"):
    return result(call_id, name, {"error": {"code": 503, "type": kind, "message": kind}})


def trajectory(
    messages,
    rubric,
    final_state=CANCELLED,
    end="satisfied",
    finished=True,
    imperfections=(),
    initial_state=ORDERS,
    tools=TOOLS,
):
    return Trajectory(
        trajectory_id=f"t-{len(messages)}-{end}",
        task_id="task",
        agent_id="agent",
        messages=[Message(role="system", content="You help with orders."), *messages],
        tools=tools,
        initial_state=initial_state,
        final_state=final_state,
        rubric=rubric,
        outcome={
            "finished": finished,
            "end_reason": end,
            "agent_imperfections": list(imperfections),
        },
        persona="terse",
        environment="simulated",
        seed=1,
        backend="offline",
    )


CANCEL_RUBRIC = TaskRubric(
    state_predicates=[
        {"path": "orders.ORD-1", "op": "equals", "field": "status", "value": "cancelled"}
    ],
    required_facts=["ORD-1", "cancelled"],
    required_calls=[{"name": "cancel_order", "arguments": {"order_id": "ORD-1"}}],
    forbidden_calls=["delete_order"],
    order_constraints=[("get_order", "cancel_order")],
    checkpoints=[
        "Calls get_order",
        "Calls cancel_order with order id ORD-1",
        "Tells the user ORD-1.",
    ],
    difficulty="medium",
)


def cancel_dialogue(answer="Order ORD-1 is now cancelled.", order_id="ORD-1", extra=(), **kw):
    """Look the order up, cancel it, say so: the good path, with knobs to break it."""
    messages = [
        user("cancel ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        result("c0", "get_order", {"id": "ORD-1", "status": "open"}),
        calls(("c1", "cancel_order", {"order_id": order_id})),
        result("c1", "cancel_order", {"id": order_id, "status": "cancelled"}),
        *extra,
        say(answer),
    ]
    return trajectory(messages, kw.pop("rubric", CANCEL_RUBRIC), **kw)


def verdict(t, **config):
    return RuleJudge(JudgeConfig(**config)).judge(t)


def reason(v, name):
    return next(c.reason for c in v.criteria if c.name == name)


def test_good_trajectory_passes_every_criterion():
    v = verdict(cancel_dialogue())
    assert v.passed and v.score == 1.0 and v.judge == "rule"
    assert [c.name for c in v.criteria] == list(CRITERIA)
    assert all(c.passed and c.reason for c in v.criteria)


BROKEN = {
    "state_predicates": (dict(final_state=ORDERS), "orders.ORD-1.status equals cancelled"),
    "required_calls": (dict(order_id="ORD-2"), "order_id=ORD-2 (expected ORD-1)"),
    "forbidden_calls": (
        dict(
            extra=[
                calls(("c2", "delete_order", {"order_id": "ORD-1"})),
                error("c2", "delete_order", "forbidden"),
            ]
        ),
        "called delete_order",
    ),
    "required_facts": (dict(answer="Your order is now cancelled."), "does not state: ORD-1"),
    "outcome": (dict(end="agent_gave_up"), "not satisfied (end: agent_gave_up)"),
    "dialogue_finished": (dict(end="max_turns", finished=False), "dialogue cut (max_turns)"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_each_criterion_fails_with_its_reason(name):
    knobs, why = BROKEN[name]
    v = verdict(cancel_dialogue(**knobs))
    assert not v.passed and name in v.failed() and v.score < 1.0
    assert why in reason(v, name)


def test_required_call_that_only_failed_does_not_count():
    messages = [
        user("cancel ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        result("c0", "get_order", {"id": "ORD-1"}),
        calls(("c1", "cancel_order", {"order_id": "ORD-1"})),
        error("c1", "cancel_order"),
        say("Sorry, I can't cancel ORD-1 right now."),
    ]
    v = verdict(trajectory(messages, CANCEL_RUBRIC, final_state=ORDERS, end="agent_gave_up"))
    assert "every call failed (transient)" in reason(v, "required_calls")
    assert "no successful call of cancel_order" in reason(v, "checkpoints")


def test_order_constraint_is_checked_on_first_successful_calls():
    messages = [
        user("cancel ORD-1"),
        calls(("c0", "cancel_order", {"order_id": "ORD-1"})),
        result("c0", "cancel_order", {"id": "ORD-1", "status": "cancelled"}),
        calls(("c1", "get_order", {"order_id": "ORD-1"})),
        result("c1", "get_order", {"id": "ORD-1", "status": "cancelled"}),
        say("Order ORD-1 is now cancelled."),
    ]
    v = verdict(trajectory(messages, CANCEL_RUBRIC))
    assert v.failed() == ["order_constraints"]
    assert reason(v, "order_constraints") == "cancel_order succeeded before get_order"


def test_hallucinated_success_is_caught():
    """The agent claims the cancellation without making the call (policy's hallucinated_success)."""
    messages = [
        user("cancel ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        result("c0", "get_order", {"id": "ORD-1", "status": "open"}),
        say("All done! Order ORD-1 is now cancelled."),
    ]
    v = verdict(trajectory(messages, CANCEL_RUBRIC, final_state=ORDERS))
    assert not v.passed
    assert {"state_predicates", "required_calls", "no_false_success_claim"} <= set(v.failed())
    assert "claims a change ('is now') but no state-changing call succeeded" in reason(
        v, "no_false_success_claim"
    )


def test_hallucinated_last_step_after_a_real_change_is_caught():
    rubric = TaskRubric(
        required_calls=[
            {"name": "create_order", "arguments": {"product": "Lamp"}},
            {"name": "cancel_order", "arguments": {}},
        ],
        difficulty="medium",
    )
    messages = [
        user("order a lamp, then cancel it"),
        calls(("c0", "create_order", {"product": "Lamp", "quantity": 1})),
        result("c0", "create_order", {"id": "ORD-9"}),
        say("All done! I created order ORD-9. Order ORD-9 is now cancelled."),
    ]
    v = verdict(trajectory(messages, rubric, final_state=ORDERS))
    assert "required cancel_order never called" in reason(v, "no_false_success_claim")


def test_success_claim_without_any_successful_call():
    v = verdict(
        trajectory(
            [user("cancel ORD-1"), say("Done! I've cancelled ORD-1.")],
            TaskRubric(difficulty="easy"),
            final_state=ORDERS,
        )
    )
    assert not v.passed and v.failed() == ["no_false_success_claim"]
    assert "no tool call succeeded" in reason(v, "no_false_success_claim")


def test_change_claim_needs_a_state_changing_call():
    messages = [
        user("cancel ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        result("c0", "get_order", {"id": "ORD-1", "status": "open"}),
        say("I have cancelled order ORD-1."),
    ]
    v = verdict(trajectory(messages, TaskRubric(difficulty="easy"), final_state=ORDERS))
    assert "no state-changing call succeeded" in reason(v, "no_false_success_claim")


def test_claim_right_after_a_failure_is_false_and_admitting_failure_is_not():
    base = [
        user("cancel ORD-1"),
        calls(("c0", "cancel_order", {"order_id": "ORD-1"})),
        result("c0", "cancel_order", {"id": "ORD-1", "status": "cancelled"}),
        calls(("c1", "get_order", {"order_id": "ORD-1"})),
        error("c1", "get_order", "server_error"),
    ]
    rubric = TaskRubric(difficulty="easy")
    claimed = verdict(trajectory([*base, say("All done! ORD-1 has been cancelled.")], rubric))
    assert "right after get_order failed" in reason(claimed, "no_false_success_claim")
    admitted = verdict(
        trajectory([*base, say("I cancelled ORD-1 but I'm unable to confirm it.")], rubric)
    )
    assert "no_false_success_claim" not in admitted.failed()


CREATE_RUBRIC = TaskRubric(
    state_predicates=[{"path": "orders", "op": "count_equals", "value": 2}],
    required_facts=["$ref:0.id", "3"],
    required_calls=[{"name": "create_order", "arguments": {"product": "Lamp", "quantity": 3}}],
    difficulty="easy",
)
CREATED = {"orders": {**ORDERS["orders"], "ORD-9": {"product": "Lamp", "quantity": 3}}}


def create_dialogue(answer):
    """A transient error first: the error result is no '$ref' step, the retry's result is 0."""
    messages = [
        user("order 3 lamps"),
        calls(("c0", "create_order", {"product": "Lamp", "quantity": 3})),
        error("c0", "create_order"),
        calls(("c1", "create_order", {"product": "Lamp", "quantity": 3})),
        result("c1", "create_order", {"id": "ORD-9", "product": "Lamp", "quantity": 3}),
        say(answer),
    ]
    return trajectory(messages, CREATE_RUBRIC, final_state=CREATED)


def test_ref_fact_resolves_from_the_successful_results():
    assert verdict(create_dialogue("I created order ord-9 with 3 lamps.")).passed
    v = verdict(create_dialogue("I created order ORD-90 with 3 lamps."))
    assert v.failed() == ["required_facts"]
    assert "ORD-9 ($ref:0.id)" in reason(v, "required_facts")


def test_ref_fact_that_does_not_resolve_fails():
    messages = [user("order 3 lamps"), say("I created order ORD-9 with 3 lamps.")]
    v = verdict(trajectory(messages, CREATE_RUBRIC, final_state=CREATED))
    assert "$ref:0.id (does not resolve" in reason(v, "required_facts")


@pytest.mark.parametrize(
    "fact, answer, stated",
    [
        ("1500", "The total is 1,500.00 EUR.", True),
        ("12.5", "Weight: 12.50 kg.", True),
        ("5", "You have 15 orders.", False),
        ("Please handle with care.", "Note: please handle with care, thanks", True),
        ("BSK-76", "Basket BSK-761 is ready.", False),
    ],
)
def test_facts_are_case_and_number_format_tolerant(fact, answer, stated):
    rubric = TaskRubric(required_facts=[fact], difficulty="easy")
    v = verdict(trajectory([user("hi"), say(answer)], rubric, final_state=ORDERS))
    assert ("required_facts" not in v.failed()) is stated


def test_a_fact_told_in_an_earlier_answer_counts_once_a_call_succeeded():
    """A user who asks one part per turn hears the lookup's facts before asking for the next."""
    lookup = [calls(("c0", "get_order", {"order_id": "ORD-1"})),
              result("c0", "get_order", {"id": "ORD-1", "status": "open"})]
    cancel = [calls(("c1", "cancel_order", {"order_id": "ORD-1"})),
              result("c1", "cancel_order", {"id": "ORD-1", "status": "cancelled"})]
    staged = [user("look up ORD-1"), *lookup, say("Order ORD-1 is open."),
              user("now cancel it"), *cancel, say("Done: it is now cancelled.")]
    assert verdict(trajectory(staged, CANCEL_RUBRIC)).passed
    before_any_call = [user("cancel ORD-1"), say("Let me look ORD-1 up."), *lookup, *cancel,
                       say("Done: it is now cancelled.")]
    v = verdict(trajectory(before_any_call, CANCEL_RUBRIC))
    assert v.failed() == ["required_facts"]
    assert "does not state: ORD-1" in reason(v, "required_facts")


UNSUPPORTED = TaskRubric(
    state_predicates=[{"path": "orders", "op": "count_equals", "value": 1}],
    forbidden_calls=["delete_order"],
    checkpoints=[
        "Recognises that none of its tools can do this.",
        "Says so politely and offers what it can do instead, without calling any "
        "state-changing tool.",
    ],
    expected_outcome="refuse_unsupported",
    difficulty="easy",
)


def test_refusal_of_an_unsupported_request_passes():
    messages = [
        user("print my orders and mail them"),
        say("I'm sorry, but I can't do that: none of my tools can. I can look up orders."),
    ]
    assert verdict(
        trajectory(messages, UNSUPPORTED, final_state=ORDERS, end="satisfied_with_refusal")
    ).passed


def test_claiming_the_impossible_fails_an_unsupported_request():
    messages = [
        user("print my orders and mail them"),
        say("Done! I've taken care of that for you."),
    ]
    v = verdict(trajectory(messages, UNSUPPORTED, final_state=ORDERS))
    assert {"outcome", "no_false_success_claim", "checkpoints"} <= set(v.failed())
    assert reason(v, "outcome") == "the final answer does not refuse the unsupported request"


def test_refusal_after_a_state_changing_call_fails():
    messages = [
        user("print my orders"),
        calls(("c0", "cancel_order", {"order_id": "ORD-1"})),
        result("c0", "cancel_order", {"id": "ORD-1"}),
        say("Sorry, I cannot print orders."),
    ]
    v = verdict(trajectory(messages, UNSUPPORTED, end="satisfied_with_refusal"))
    assert "refused but called cancel_order" in reason(v, "outcome")
    assert "calls cancel_order" in reason(v, "checkpoints")


def test_ask_user_outcome_needs_a_question():
    rubric = TaskRubric(expected_outcome="ask_user", difficulty="easy")
    asked = verdict(
        trajectory(
            [user("cancel my order"), say("Which order do you mean?")],
            rubric,
            final_state=ORDERS,
            end="user_gave_up",
        )
    )
    assert "outcome" not in asked.failed()
    told = verdict(trajectory([user("cancel my order"), say("Okay.")], rubric, final_state=ORDERS))
    assert reason(told, "outcome") == "the final answer asks the user nothing"


def test_checkpoint_asking_before_guessing():
    rubric = TaskRubric(
        required_calls=[{"name": "cancel_order", "arguments": {"order_id": "ORD-1"}}],
        checkpoints=[
            "Asks the user for the order id (order_id) before calling cancel_order, "
            "instead of guessing it."
        ],
        difficulty="medium",
    )
    guessed = [
        user("cancel my order"),
        calls(("c0", "cancel_order", {"order_id": "ORD-1"})),
        result("c0", "cancel_order", {"id": "ORD-1"}),
        say("Order ORD-1 is now cancelled."),
    ]
    v = verdict(trajectory(guessed, rubric))
    assert (
        v.failed() == ["checkpoints"]
        and reason(v, "checkpoints") == "calls cancel_order without asking"
    )
    asked = [
        user("cancel my order"),
        say("Could you tell me the order id?"),
        user("ORD-1"),
        *guessed[1:],
    ]
    assert verdict(trajectory(asked, rubric)).passed


def test_checkpoint_retry_after_transient_failure():
    rubric = TaskRubric(
        checkpoints=["Retries get_order after its first call fails with a transient error."],
        difficulty="easy",
    )
    gave_up = [
        user("show ORD-1"),
        calls(("c0", "get_order", {"order_id": "ORD-1"})),
        error("c0", "get_order"),
        say("Sorry, I'm unable to look it up."),
    ]
    v = verdict(trajectory(gave_up, rubric, final_state=ORDERS))
    assert reason(v, "checkpoints") == "does not retry get_order after it failed"


def test_non_critical_criteria_only_lower_the_score():
    t = cancel_dialogue(answer="Your order is now cancelled.")
    critical = [n for n in CRITERIA if n != "required_facts"]
    v = verdict(t, critical=critical)
    assert v.passed and v.score == pytest.approx(8 / 9)
    assert not verdict(t).passed


def test_config_is_validated_with_clear_messages():
    with pytest.raises(ValidationError, match="unknown judge criteria"):
        JudgeConfig(criteria=["vibes"])
    with pytest.raises(ValidationError, match="not in criteria"):
        JudgeConfig(criteria=["outcome"], critical=["required_facts"])
    with pytest.raises(ValidationError):
        JudgeConfig(temperature=0.3)
    with pytest.raises(ValueError, match="unknown judge kind"):
        make_judge({"kind": "oracle"})
    assert all(f.description for f in JudgeConfig.model_fields.values())


HAND_MADE = [
    cancel_dialogue(),
    cancel_dialogue(order_id="ORD-2"),
    cancel_dialogue(answer="All done!", final_state=ORDERS),
    create_dialogue("I created order ORD-9 with 3 lamps."),
    trajectory(
        [user("print my orders"), say("I'm sorry, I can't do that.")],
        UNSUPPORTED,
        final_state=ORDERS,
        end="satisfied_with_refusal",
    ),
]


def test_frame_rows_are_judged_like_records():
    judge = RuleJudge()
    from_records = judge.judge_many(HAND_MADE)
    from_rows = judge.judge_frame(to_frame(HAND_MADE, Trajectory))
    assert from_rows == from_records
    assert [v.passed for v in from_records] == [True, False, False, True, True]


OFFLINE = OfflineBackendConfig()


def test_offline_llm_judge_gives_the_rule_verdicts():
    llm = make_judge({"kind": "llm", "backend": OFFLINE.model_dump(), "repeats": 3})
    rule = RuleJudge().judge_many(HAND_MADE)
    voted = llm.judge_many(HAND_MADE)
    assert [v.judge for v in voted] == ["llm"] * len(HAND_MADE)
    assert [(v.passed, v.score, v.failed()) for v in voted] == [
        (v.passed, v.score, v.failed()) for v in rule
    ]
    assert "3/3 repeats passed" in voted[0].criteria[0].reason


def test_llm_requests_shuffle_criteria_and_carry_a_real_prompt():
    judge = LlmJudge(JudgeConfig(kind="llm", backend=OFFLINE, repeats=4))
    requests = judge.requests(cancel_dialogue())
    orders = [tuple(r.context["criteria"]) for r in requests]
    assert len(set(orders)) > 1 and all(sorted(o) == sorted(CRITERIA) for o in orders)
    assert orders == [tuple(r.context["criteria"]) for r in judge.requests(cancel_dialogue())]
    prompt = requests[0].messages[1]["content"]
    assert requests[0].role == "judge" and requests[0].response_format == "json"
    assert (
        "[assistant calls] cancel_order" in prompt
        and "~ orders.ORD-1 status: open -> cancelled" in prompt
    )
    assert prompt.index(orders[0][0]) < prompt.index(orders[0][1])


class MalformedJudgeDouble:
    """Test double for a judge model: garbage for the repeats listed in ``bad`` (all by
    default), the offline judge's reply otherwise; counts requests in flight at once."""

    name = "double"

    def __init__(self, bad=None):
        self.bad, self.seen, self.in_flight, self.most = bad, 0, 0, 0
        self.offline = make_backend(OFFLINE)

    async def acomplete(self, request):
        repeat, self.seen = self.seen, self.seen + 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        if self.bad is None or repeat in self.bad:
            return ChatResponse(content="The trajectory looks fine to me!")
        return await self.offline.acomplete(request)


def test_unparseable_replies_fail_the_trajectory_without_raising():
    double = MalformedJudgeDouble()
    verdicts = make_judge({"kind": "llm", "repeats": 3}, backend=double).judge_many(HAND_MADE[:2])
    assert [v.passed for v in verdicts] == [False, False]
    assert verdicts[0].criteria[0].name == "judge_replies"
    assert (
        verdicts[0]
        .criteria[0]
        .reason.startswith("judge replies unparseable: repeat 0: reply is not JSON")
    )
    assert double.most > 1  # the requests ran concurrently


def test_a_malformed_repeat_abstains_and_the_others_decide():
    double = MalformedJudgeDouble(bad={0})
    v = make_judge({"kind": "llm", "repeats": 3}, backend=double).judge_many([cancel_dialogue()])[0]
    assert v.passed and v.score == 1.0
    assert "2/2 repeats passed" in v.criteria[0].reason
    assert "abstained: repeat 0: reply is not JSON" in v.criteria[0].reason
