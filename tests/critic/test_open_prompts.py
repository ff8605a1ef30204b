"""The open_prompts input: seeds, personas, the deterministic generator and the LLM writer path."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from pydantic import ValidationError

from kimi_pipeline.critic.open_prompts import (
    CATEGORIES,
    PERSONAS,
    SEEDS,
    TEMPLATES,
    TOPICS,
    WRITER_ROLE,
    OpenPromptsConfig,
    PromptPlan,
    accept_written_prompt,
    category_quotas,
    generate_open_prompts,
    make_open_prompts,
    normalise,
    render_prompt,
    write_prompts,
    writer_request,
)
from kimi_pipeline.llm.base import ChatResponse
from kimi_pipeline.llm.offline import ROLE_MODULES, OfflineBackend


class ScriptedBackend:
    """A stand-in remote model answering each request with the next scripted reply."""

    name = "scripted"

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []

    async def acomplete(self, request):
        self.requests.append(request)
        reply = self.replies[(len(self.requests) - 1) % len(self.replies)]
        if isinstance(reply, ChatResponse):
            return reply
        return ChatResponse(content=reply(request) if callable(reply) else reply,
                            backend=self.name)


def test_seeds_are_ten_per_category_from_known_personas():
    assert Counter(category for category, _, _ in SEEDS) == {c: 10 for c in CATEGORIES}
    assert {persona for _, persona, _ in SEEDS} <= set(PERSONAS)
    assert len({normalise(text) for _, _, text in SEEDS}) == len(SEEDS)
    assert len(PERSONAS) >= 12
    assert all(p.description and p.intros and p.closers for p in PERSONAS.values())


def test_default_set_has_48_prompts_covering_every_category_and_persona():
    prompts = make_open_prompts({})
    assert len(prompts) == 48
    assert Counter(p.category for p in prompts) == {c: 12 for c in CATEGORIES}
    assert {p.persona for p in prompts} == set(PERSONAS)
    assert Counter(p.source for p in prompts) == {"seed": 40, "generated": 8}
    assert len({normalise(p.prompt) for p in prompts}) == 48
    assert len({p.prompt_id for p in prompts}) == 48


def test_generated_only_set_is_balanced_over_personas_and_unique():
    prompts = make_open_prompts({"include_seeds": False, "count": 48, "seed": 3})
    assert all(p.source == "generated" for p in prompts)
    personas = Counter(p.persona for p in prompts)
    assert set(personas) == set(PERSONAS) and max(personas.values()) == 4
    assert len({normalise(p.prompt) for p in prompts}) == 48
    assert not {normalise(p.prompt) for p in prompts} & {normalise(t) for _, _, t in SEEDS}


def test_same_seed_same_prompts_and_ids_other_seed_other_prompts():
    config = {"include_seeds": False, "count": 30, "seed": 11}
    first, again = make_open_prompts(config), make_open_prompts(config)
    assert [p.model_dump() for p in first] == [p.model_dump() for p in again]
    other = make_open_prompts({**config, "seed": 12})
    assert [p.prompt for p in other] != [p.prompt for p in first]


def test_large_requests_stay_duplicate_free():
    prompts = make_open_prompts({"count": 400, "seed": 5})
    assert len(prompts) == 400
    assert len({normalise(p.prompt) for p in prompts}) == 400


def test_prompts_are_short_and_mention_their_topic():
    plans = [PromptPlan("explanation", "night_nurse", "jet lag", t, 0, 1) for t in range(4)]
    for plan in plans:
        text = render_prompt(plan)
        assert "jet lag" in text and text.startswith(PERSONAS["night_nurse"].intros[0])
        assert len(text.split()) < 60


def test_category_shares_from_a_dict_or_a_list():
    prompts = make_open_prompts({"count": 20, "categories": {"advice": 3, "open_qa": 1}})
    assert Counter(p.category for p in prompts) == {"advice": 15, "open_qa": 5}
    listed = make_open_prompts({"count": 8, "categories": ["creative_writing"]})
    assert {p.category for p in listed} == {"creative_writing"} and len(listed) == 8
    assert sum(category_quotas({c: 1.0 for c in CATEGORIES}, 7).values()) == 7


@pytest.mark.parametrize("bad", [
    {"categories": {"poetry": 1}},
    {"categories": {"advice": 0}},
    {"count": 0},
    {"cuont": 10},
])
def test_config_refuses_unknown_categories_shares_and_keys(bad):
    with pytest.raises(ValidationError):
        OpenPromptsConfig.model_validate(bad)


def test_config_fields_are_documented_and_default_to_offline():
    config = OpenPromptsConfig()
    assert config.backend.kind == "offline" and config.count == 48 and config.include_seeds
    assert all(f.description for f in OpenPromptsConfig.model_fields.values())


def test_writer_role_is_served_offline_by_the_templates():
    assert ROLE_MODULES[WRITER_ROLE] == "kimi_pipeline.critic.offline.open_prompt_writer"
    plan = PromptPlan("advice", "truck_driver", "sleeping well", 0, 1, None)
    request = writer_request(plan)
    assert request.role == WRITER_ROLE and "sleeping well" in request.messages[-1]["content"]
    assert OfflineBackend().complete(request).content == render_prompt(plan)


def test_a_model_writes_the_prompts_when_its_replies_are_usable():
    def written(request):
        return f"Honest question about {request.context['topic']}: what now?"

    backend = ScriptedBackend([written])
    config = OpenPromptsConfig(include_seeds=False, count=6)
    prompts = generate_open_prompts(config, random.Random(0), backend)
    assert len(backend.requests) == 6
    assert all(p.prompt.startswith("Honest question about") for p in prompts)


@pytest.mark.parametrize("reply", [
    "", "   ", None, "Sure! Here is a prompt: tell me about rain.",
    "I can't help with writing prompts.", "Rain?", "word " * 200,
])
def test_unusable_replies_fall_back_to_the_template_and_are_counted(reply):
    plans = [PromptPlan("open_qa", "vegetable_farmer", "nuclear power", 1, 0, 0)]
    written, fallbacks = write_prompts(plans, ScriptedBackend([reply]))
    assert fallbacks == 1 and written == [(plans[0], render_prompt(plans[0]))]


def test_failed_calls_and_repeated_replies_fall_back_too():
    plans = [PromptPlan("advice", "night_nurse", "public speaking", t, 0, None) for t in range(3)]
    same = "How do I stop shaking when I speak at staff meetings?"
    backend = ScriptedBackend([same, same, ChatResponse(content=None, error="timeout")])
    written, fallbacks = write_prompts(plans, backend)
    assert fallbacks == 2
    assert [text for _, text in written] == [same, render_prompt(plans[1]),
                                            render_prompt(plans[2])]


def test_labels_and_quotes_around_a_written_prompt_are_removed():
    assert accept_written_prompt('Prompt: "What should I plant in a shady garden?"') == (
        "What should I plant in a shady garden?")


def test_offline_templates_are_accepted_as_written_without_fallback():
    plans = [PromptPlan(c, p, TOPICS[c][0], t, i, k) for c in CATEGORIES for p in PERSONAS
             for t in range(len(TEMPLATES[c])) for i in (0, 1) for k in (None, 0, 1)]
    written, fallbacks = write_prompts(plans, OfflineBackend())
    assert fallbacks == 0 and len(written) == len(plans)
