"""Agents: a sampled tool bundle plus a synthesised system prompt (K2 stage 2, K2 report §3.1).

K2 builds thousands of agents, each a system prompt over a bundle of tools. A bundle here is
mostly one application domain (so tasks can chain tools on the same resources: create, list,
update the same entity) plus 0–2 *distractors* from other domains that a good agent never
needs; which tools are distractors is recorded on the agent. Domains whose tools act on one
collection in several ways (a create + list + update of orders) are preferred, since they
are the ones that allow multi-step tasks.

The system prompt (role, policies, constraints, tone) comes from the ``agent_writer`` role:
an LLM reads the prompt messages and answers JSON ``{"system_prompt": "..."}``; the offline
program (``agents/offline/agent_writer.py``) writes a deterministic, varied prompt from the same
structured context. Either reply
is parsed the same way and a malformed one becomes a quarantine record (``Rejection``), never
an exception.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many
from kimi_pipeline.records import Agent, QuarantineRecord, ToolSpec

Rejection = QuarantineRecord  # a refused LLM reply, kept with its reason
STAGE = "synthesis"
ROLE = "agent_writer"
MUTATING = ("create", "update", "delete")


class AgentConfig(BaseModel):
    """How tool bundles are sampled and how system prompts are accepted."""

    model_config = ConfigDict(extra="forbid")

    min_tools: int = Field(3, ge=1, description="Fewest tools in a bundle (distractors included).")
    max_tools: int = Field(8, ge=1, description="Most tools in a bundle (distractors included).")
    min_domain_tools: int = Field(
        3,
        ge=1,
        description="Main domains need at least this many tools; smaller domains are "
        "used only when no domain is that large.",
    )
    distractor_rate: float = Field(
        0.35,
        ge=0,
        le=1,
        description="Chance that each of the max_distractors slots gets a tool from another "
        "domain.",
    )
    max_distractors: int = Field(2, ge=0, description="Most distractor tools per bundle.")
    chainable_weight: float = Field(
        3.0,
        ge=1,
        description="Sampling weight of domains with a collection several operations act on "
        "(create + list + update …), relative to 1.0 for the others.",
    )
    min_prompt_chars: int = Field(
        80, ge=1, description="System prompts shorter than this are rejected as malformed."
    )

    @model_validator(mode="after")
    def _sizes(self) -> "AgentConfig":
        if self.min_tools > self.max_tools:
            raise ValueError(f"min_tools ({self.min_tools}) > max_tools ({self.max_tools})")
        return self


def reject(step: str, ref: str, reason: str, original: Any) -> Rejection:
    text = original if isinstance(original, str) else json.dumps(original, default=str)
    return Rejection(
        stage=STAGE,
        step=step,
        source="llm",
        source_ref=ref,
        reason=reason,
        original=(text or "")[:65536],
    )


# ------------------------------------------------------------------------------------ bundles


def semantics_of(tool: ToolSpec) -> ToolSemantics:
    return infer_semantics(tool.name, tool.description, tool.parameters)


@dataclass
class _Domain:
    name: str
    category: str
    tools: list[ToolSpec]
    anchors: dict[str, list[ToolSpec]]  # collection -> its tools, for collections worth chaining
    weight: float


def _domains(tools: list[ToolSpec], config: AgentConfig) -> list[_Domain]:
    grouped: dict[str, list[ToolSpec]] = defaultdict(list)
    for tool in tools:
        if tool.domain:
            grouped[tool.domain].append(tool)
    domains = []
    for name in sorted(grouped):
        members = grouped[name]
        by_collection: dict[str, list[ToolSpec]] = defaultdict(list)
        for tool in members:
            by_collection[semantics_of(tool).collection].append(tool)
        anchors = {c: ts for c, ts in by_collection.items() if _chainable(ts)}
        weight = config.chainable_weight if anchors else 1.0
        domains.append(_Domain(name, members[0].category or "general", members, anchors, weight))
    large = [d for d in domains if len(d.tools) >= config.min_domain_tools]
    return large or domains


def _chainable(tools: list[ToolSpec]) -> bool:
    """Several operations on one collection, at least one of them changing it."""
    ops = {semantics_of(t).operation for t in tools}
    return len(ops) >= 2 and bool(ops & set(MUTATING))


def _environment(tools: list[ToolSpec]) -> str:
    """'simulated' unless every tool belongs to one real-execution environment ('env:<kind>/…')."""
    kinds = {
        t.tool_id.split(":", 1)[1].split("/", 1)[0] if t.source == "environment" else None
        for t in tools
    }
    return kinds.pop() if len(kinds) == 1 and None not in kinds else "simulated"


def _pick_core(domain: _Domain, size: int, rng: random.Random) -> list[ToolSpec]:
    """Tools of one anchor collection first (so tasks can chain), then the rest of the domain."""
    rest = list(domain.tools)
    rng.shuffle(rest)
    if domain.anchors:
        anchor = rng.choice(sorted(domain.anchors))
        first = list(domain.anchors[anchor])
        rng.shuffle(first)
        chosen = {id(t) for t in first}
        rest = first + [t for t in rest if id(t) not in chosen]
    return _unique_names(rest, size, taken=set())


def _unique_names(candidates: list[ToolSpec], size: int, taken: set[str]) -> list[ToolSpec]:
    """Up to ``size`` tools whose names are not taken yet (a bundle cannot offer one name twice)."""
    picked = []
    for tool in candidates:
        if len(picked) == size:
            break
        if tool.name not in taken:
            taken.add(tool.name)
            picked.append(tool)
    return picked


def sample_bundle(
    domains: list[_Domain], pool: list[ToolSpec], config: AgentConfig, rng: random.Random
) -> tuple[_Domain, list[ToolSpec], list[ToolSpec]]:
    """(main domain, core tools, distractors) for one agent."""
    domain = rng.choices(domains, weights=[d.weight for d in domains])[0]
    size = rng.randint(config.min_tools, config.max_tools)
    wanted = sum(rng.random() < config.distractor_rate for _ in range(config.max_distractors))
    core = _pick_core(domain, max(1, size - wanted), rng)
    if _environment(core) != "simulated":  # a real environment runs only its own tools
        return domain, core, []
    others = [pool[rng.randrange(len(pool))] for _ in range(4 * wanted)] if pool else []
    others = [t for t in others if t.domain != domain.name and t.source != "environment"]
    distractors = _unique_names(others, wanted, taken={t.name for t in core})
    return domain, core, distractors


# ------------------------------------------------------------------------------- the role


def agent_request(
    agent_id: str, domain: _Domain, core: list[ToolSpec], distractors: list[ToolSpec], seed: int
) -> ChatRequest:
    """The ``agent_writer`` request: prompt messages plus the same facts as structure."""
    tools = [
        {
            "name": t.name,
            "description": t.description[:300],
            "operation": semantics_of(t).operation,
            "collection": semantics_of(t).collection,
        }
        for t in core + distractors
    ]
    listing = "\n".join(f"- {t['name']}: {t['description']}" for t in tools)
    user = (
        f"Domain: {domain.name} (category: {domain.category}).\n"
        f"Tools the assistant has:\n{listing}\n\n"
        "Write the assistant's system prompt: its role, its policies (e.g. confirm before "
        "destructive actions, never invent ids, ask for missing required information), its "
        'constraints and its tone. Answer with JSON only: {"system_prompt": "..."}.'
    )
    return ChatRequest(
        role=ROLE,
        messages=[
            {
                "role": "system",
                "content": "You design system prompts for tool-using "
                "customer-facing assistants. Answer with a single JSON object.",
            },
            {"role": "user", "content": user},
        ],
        response_format="json",
        seed=seed,
        context={
            "agent_id": agent_id,
            "domain": domain.name,
            "category": domain.category,
            "tools": tools,
            "distractors": [t.name for t in distractors],
            "seed": seed,
        },
    )


def parse_system_prompt(
    reply: ChatResponse, ref: str, config: AgentConfig
) -> tuple[str | None, Rejection | None]:
    if reply.error:
        return None, reject(ROLE, ref, f"backend error: {reply.error}", reply.content or "")
    try:
        data = json.loads(reply.content or "")
    except json.JSONDecodeError as exc:
        return None, reject(ROLE, ref, f"reply is not JSON: {exc}", reply.content or "")
    prompt = data.get("system_prompt") if isinstance(data, dict) else None
    if not isinstance(prompt, str) or len(prompt.strip()) < config.min_prompt_chars:
        return None, reject(
            ROLE,
            ref,
            f"reply has no 'system_prompt' string of at least {config.min_prompt_chars} characters",
            reply.content or "",
        )
    return prompt.strip(), None


def sample_agents(
    tools: list[ToolSpec], n_agents: int, backend: ChatBackend, config: AgentConfig, seed: int
) -> tuple[list[Agent], list[Rejection]]:
    """``n_agents`` agents over ``tools``; agent i depends only on (tools, config, seed, i)."""
    domains = _domains(tools, config)
    if not domains or n_agents <= 0:
        return [], []
    drafts, requests = [], []
    for index in range(n_agents):
        agent_seed = random.Random(f"agent:{seed}:{index}").getrandbits(31)
        domain, core, distractors = sample_bundle(domains, tools, config, random.Random(agent_seed))
        agent_id = f"agent-{seed}-{index:05d}"
        drafts.append((agent_id, domain, core, distractors, agent_seed))
        requests.append(agent_request(agent_id, domain, core, distractors, agent_seed))
    agents, rejections = [], []
    for (agent_id, domain, core, distractors, agent_seed), reply in zip(
        drafts, complete_many(backend, requests)
    ):
        prompt, rejection = parse_system_prompt(reply, agent_id, config)
        if rejection:
            rejections.append(rejection)
            continue
        agents.append(
            Agent(
                agent_id=agent_id,
                category=domain.category,
                domain=domain.name,
                system_prompt=prompt,
                tool_ids=[t.tool_id for t in core + distractors],
                distractor_tool_ids=[t.tool_id for t in distractors],
                environment=_environment(core),
                seed=agent_seed,
            )
        )
    return agents, rejections
