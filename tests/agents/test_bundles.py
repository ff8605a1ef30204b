"""Agents: bundle sizes, domain purity, recorded distractors, determinism, bad LLM replies."""

from __future__ import annotations

import time

import pytest

from kimi_pipeline.agents.bundles import AgentConfig, sample_agents
from kimi_pipeline.llm.base import ChatResponse
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.records import Agent, QuarantineRecord, ToolSpec


def _tool(
    domain: str,
    category: str,
    name: str,
    description: str,
    props: dict,
    required: list[str] = (),
    output_schema: dict | None = None,
) -> ToolSpec:
    return ToolSpec(
        tool_id=f"synthetic:{domain}/{name}",
        name=name,
        description=description,
        parameters={"type": "object", "properties": props, "required": list(required)},
        output_schema=output_schema,
        source="synthetic",
        source_ref=f"{domain}/{name}",
        category=category,
        domain=domain,
    )


S = {"type": "string"}


def sample_tools() -> list[ToolSpec]:
    """A small repository: three rich domains, a small one, and a tool without a domain."""
    shop = [
        (
            "create_order",
            "Place a new order.",
            {
                "customer_email": {"type": "string", "format": "email"},
                "product": S,
                "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
                "shipping_city": S,
            },
            ["customer_email", "product", "quantity"],
        ),
        (
            "list_orders",
            "Search orders.",
            {"customer_email": S, "product": S, "limit": {"type": "integer", "minimum": 1}},
            [],
        ),
        ("get_order", "Get one order by id.", {"order_id": S}, ["order_id"]),
        ("cancel_order", "Cancel an order.", {"order_id": S, "reason": S}, ["order_id"]),
        (
            "update_order",
            "Change an order.",
            {
                "order_id": S,
                "shipping_city": S,
                "quantity": {"type": "integer", "minimum": 1, "maximum": 10},
            },
            ["order_id"],
        ),
        ("delete_order", "Delete an order.", {"order_id": S}, ["order_id"]),
    ]
    calendar = [
        (
            "create_event",
            "Create a calendar event.",
            {
                "summary": S,
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "location": S,
            },
            ["summary", "start", "end"],
        ),
        ("list_events", "List events.", {"location": S, "summary": S}, []),
        ("get_event", "Read an event.", {"event_id": S}, ["event_id"]),
        (
            "update_event",
            "Edit an event.",
            {"event_id": S, "summary": S, "location": S},
            ["event_id"],
        ),
        ("delete_event", "Remove an event.", {"event_id": S}, ["event_id"]),
    ]
    helpdesk = [
        (
            "create_ticket",
            "Open a support ticket.",
            {
                "subject": S,
                "priority": {"type": "string", "enum": ["low", "normal", "urgent"]},
                "requester_email": {"type": "string", "format": "email"},
            },
            ["subject", "priority", "requester_email"],
        ),
        (
            "list_tickets",
            "Find tickets.",
            {
                "priority": {"type": "string", "enum": ["low", "normal", "urgent"]},
                "requester_email": S,
            },
            [],
        ),
        ("get_ticket", "Read a ticket.", {"ticket_id": S}, ["ticket_id"]),
        ("close_ticket", "Close a ticket.", {"ticket_id": S}, ["ticket_id"]),
        (
            "send_notification",
            "Send a notification to someone.",
            {"recipient": S, "message": S},
            ["recipient", "message"],
        ),
    ]
    weather = [
        ("get_weather", "Current weather in a city.", {"city": S}, ["city"]),
        (
            "get_forecast",
            "Forecast for a city.",
            {"city": S, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
            ["city"],
        ),
    ]
    tools = [_tool("online_shop", "retail", *t) for t in shop]
    tools += [_tool("calendar", "productivity", *t) for t in calendar]
    tools += [_tool("helpdesk", "support", *t) for t in helpdesk]
    tools += [_tool("weather", "travel", *t) for t in weather]
    tools.append(
        ToolSpec(
            tool_id="mcp:time/get_current_time",
            name="get_current_time",
            description="Current time in a time zone.",
            parameters={"type": "object", "properties": {"timezone": S}, "required": ["timezone"]},
            source="mcp",
            source_ref="time",
        )
    )
    return tools


class ScriptedBackend:
    """Test double for a chat backend: answers every request with the same canned reply."""

    name = "scripted"

    def __init__(self, content: str | None, error: str | None = None):
        self.content, self.error = content, error

    async def acomplete(self, request):
        return ChatResponse(content=self.content, error=self.error, backend=self.name)


def _agents(n=200, seed=7, config=None):
    return sample_agents(sample_tools(), n, OfflineBackend(), config or AgentConfig(), seed)


def test_bundle_sizes_domain_purity_and_recorded_distractors():
    tools = {t.tool_id: t for t in sample_tools()}
    config = AgentConfig(min_tools=3, max_tools=6)
    agents, rejected = _agents(config=config)
    assert len(agents) == 200 and not rejected
    assert all(isinstance(a, Agent) for a in agents)
    with_distractors = 0
    for agent in agents:
        assert 3 <= len(agent.tool_ids) <= 6
        assert len(set(agent.tool_ids)) == len(agent.tool_ids)
        assert len({tools[i].name for i in agent.tool_ids}) == len(agent.tool_ids)  # unique names
        assert set(agent.distractor_tool_ids) <= set(agent.tool_ids)
        assert len(agent.distractor_tool_ids) <= config.max_distractors
        core = [tools[i] for i in agent.tool_ids if i not in agent.distractor_tool_ids]
        assert {t.domain for t in core} == {agent.domain}
        assert all(tools[i].domain != agent.domain for i in agent.distractor_tool_ids)
        assert agent.category == core[0].category
        with_distractors += bool(agent.distractor_tool_ids)
    assert 0 < with_distractors < len(agents)
    # the small 'weather' domain (2 tools < min_domain_tools) is never a main domain
    assert {a.domain for a in agents} == {"online_shop", "calendar", "helpdesk"}


def test_system_prompts_have_role_policies_constraints_tone_and_vary():
    agents, _ = _agents(n=50)
    prompts = [a.system_prompt for a in agents]
    for prompt in prompts:
        assert prompt.startswith("You are")
        for section in ("Policies:", "Constraints:", "Tone:"):
            assert section in prompt
        assert "invent" in prompt or "missing" in prompt or "tools you have" in prompt
    assert len(set(prompts)) > 40


def test_destructive_bundles_get_a_confirmation_policy():
    tools = {t.tool_id: t for t in sample_tools()}
    agents, _ = _agents(n=60)
    for agent in agents:
        names = [tools[i].name for i in agent.tool_ids]
        if any(n.startswith(("delete_", "cancel_", "close_", "update_")) for n in names):
            assert "cancel" in agent.system_prompt.lower() or "delet" in agent.system_prompt.lower()


def test_deterministic_in_seed_and_independent_of_count():
    a, _ = _agents(n=30, seed=3)
    b, _ = _agents(n=30, seed=3)
    c, _ = _agents(n=30, seed=4)
    d, _ = _agents(n=10, seed=3)
    assert [x.model_dump() for x in a] == [x.model_dump() for x in b]
    assert [x.model_dump() for x in a] != [x.model_dump() for x in c]
    assert [x.model_dump() for x in a[:10]] == [x.model_dump() for x in d]


@pytest.mark.parametrize(
    "content,error,reason",
    [
        ("not json at all", None, "not JSON"),
        ('{"prompt": "wrong key"}', None, "system_prompt"),
        ('{"system_prompt": "too short"}', None, "system_prompt"),
        ('["a list"]', None, "system_prompt"),
        (None, "HTTP 500 after 4 retries", "backend error"),
    ],
)
def test_malformed_llm_reply_becomes_a_rejection(content, error, reason):
    agents, rejected = sample_agents(
        sample_tools(), 5, ScriptedBackend(content, error), AgentConfig(), seed=1
    )
    assert agents == []
    assert len(rejected) == 5
    assert all(isinstance(r, QuarantineRecord) and r.step == "agent_writer" for r in rejected)
    assert all(reason in r.reason for r in rejected)


def test_a_well_formed_llm_reply_is_used():
    prompt = "You are a careful assistant. " * 5
    agents, rejected = sample_agents(
        sample_tools(),
        3,
        ScriptedBackend(f'{{"system_prompt": "{prompt}"}}'),
        AgentConfig(),
        seed=1,
    )
    assert not rejected and [a.system_prompt for a in agents] == [prompt.strip()] * 3


def test_config_is_strict():
    with pytest.raises(ValueError):
        AgentConfig(min_tools=5, max_tools=3)
    with pytest.raises(ValueError):
        AgentConfig(bogus=1)


def test_2000_agents_offline_prints_its_speed():
    tools = sample_tools()
    sample_agents(tools, 10, OfflineBackend(), AgentConfig(), seed=0)  # warm caches
    start = time.perf_counter()
    agents, _ = sample_agents(tools, 2000, OfflineBackend(), AgentConfig(), seed=0)
    elapsed = time.perf_counter() - start
    print(f"\n2000 agents offline: {elapsed:.3f} s")
    assert len(agents) == 2000
