"""The ``open_prompts`` input: subjective prompts, with the people asking them, for the critic.

The critic stage needs prompts that have no checkable answer — creative writing, open
questions, advice, explanations — so the policy's answers can only be compared under rubrics.
They come from two places:

- **seeds**: forty hand-written prompts, ten per category, each from one of the personas;
- **generated**: an expansion that combines a category's request templates and topics with a
  persona (who they are, how they phrase things). The expansion is the offline program of the
  LLM role ``open_prompt_writer`` (``critic/offline/open_prompt_writer.py``): with
  ``backend.kind: offline`` the templates write the prompts, with ``openai`` or ``hf`` a model
  rewrites each planned (category, persona, topic) into its own words. A reply that is empty or does not read as a prompt falls back to the
  template text and is counted, never fatal.

Everything is deterministic for a given ``seed``; ids are hashes of category and text, so a
rerun with the same configuration yields the same prompts with the same ids. Prompts are
deduplicated (case, spacing and punctuation ignored) against the seeds and each other.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kimi_pipeline.llm.base import (
    BackendConfig,
    ChatBackend,
    ChatRequest,
    complete_many,
    make_backend,
    OfflineBackendConfig,
)
from kimi_pipeline.records import OpenPrompt

log = logging.getLogger(__name__)

WRITER_ROLE = "open_prompt_writer"
CATEGORIES = ("creative_writing", "open_qa", "advice", "explanation")
CATEGORY_GUIDES = {
    "creative_writing": "a request for an original piece: a poem, a story, a scene, a song",
    "open_qa": "an open question of opinion or judgement with no single right answer",
    "advice": "a request for practical advice about the asker's own situation",
    "explanation": "a request to explain how or why something works, for this asker",
}


@dataclass(frozen=True)
class Persona:
    """Someone who asks: who they are and the way they tend to phrase a request."""

    key: str
    description: str
    intros: tuple[str, ...]  # how they introduce themselves or their situation
    closers: tuple[str, ...]  # what they tend to add at the end


PERSONAS: dict[str, Persona] = {p.key: p for p in (
    Persona("night_nurse", "a nurse who works night shifts on a busy ward",
            ("I'm a nurse on night shifts.", "I work nights on a hospital ward."),
            ("I only get short breaks, so keep it practical.", "I'm reading this on my break.")),
    Persona("cs_freshman", "a first-year computer science student",
            ("I'm in my first year of a CS degree.", "I'm a CS freshman."),
            ("I know some Python but not much theory.",
             "Pretend I've never taken a theory class.")),
    Persona("retired_carpenter", "a retired carpenter who likes plain talk",
            ("I was a carpenter for forty years and I'm retired now.", "Retired woodworker here."),
            ("Plain words please, no fancy jargon.", "Don't dress it up, just tell me straight.")),
    Persona("bakery_owner", "the owner of a small neighbourhood bakery",
            ("I run a small bakery with three employees.", "I own a little corner bakery."),
            ("Money and time are both tight for me.", "I need ideas that cost next to nothing.")),
    Persona("non_native_speaker", "a non-native English speaker, still learning the language",
            ("English is not my first language, sorry for mistakes.", "I am learning English."),
            ("Please use easy words.", "Please answer with simple sentences.")),
    Persona("toddler_parent", "a tired parent of a two-year-old",
            ("My daughter is two and I'm running on very little sleep.",
             "Parent of a toddler here."),
            ("I have about five minutes before nap time ends.", "Short answers help, I'm tired.")),
    Persona("history_teacher", "a high-school history teacher",
            ("I teach history to sixteen-year-olds.", "I'm a high-school history teacher."),
            ("Something I could use in class would be ideal.", "My students get bored easily.")),
    Persona("truck_driver", "a long-haul truck driver who spends many nights on the road",
            ("I drive trucks cross-country.", "I'm a long-haul driver, often away for weeks."),
            ("I'll have this read aloud while I drive, so no tables.",
             "Keep it easy to listen to.")),
    Persona("biology_phd", "a doctoral student in marine biology",
            ("I'm a PhD student in marine biology.", "I'm doing a doctorate in biology."),
            ("Feel free to be technical.", "I'd like the nuance, not the textbook version.")),
    Persona("teen_writer", "a fifteen-year-old who wants to become a novelist",
            ("I'm fifteen and I want to be a writer.", "I'm a teenager who writes a lot."),
            ("Be honest, but not harsh.", "I want to learn from it, not just read it.")),
    Persona("vegetable_farmer", "a vegetable farmer on a small family farm",
            ("I grow vegetables on a small family farm.", "I'm a farmer with about ten acres."),
            ("Keep it down to earth.", "I don't have much patience for theory.")),
    Persona("new_manager", "a software engineer who just became a team manager",
            ("I just became an engineering manager after years of coding.",
             "I was promoted to manage my old team."),
            ("Give me something I can try this week.", "I don't want management buzzwords.")),
)}

SEEDS: tuple[tuple[str, str, str], ...] = (  # (category, persona, prompt), written by hand
    ("creative_writing", "teen_writer", "I'm fifteen and trying to get better at writing. Could "
     "you write a short story about a girl who finds a hand-drawn map inside a library book?"),
    ("creative_writing", "night_nurse",
     "Write a short poem about the quiet of a hospital corridor at three in the morning."),
    ("creative_writing", "retired_carpenter",
     "Write a poem about an old workbench that has outlived the man who built it."),
    ("creative_writing", "toddler_parent", "Make up a bedtime story about a sleepy hedgehog who "
     "can't find his blanket. Keep it gentle, she's only two."),
    ("creative_writing", "truck_driver", "Write a song verse about driving through the desert at "
     "night with only the radio for company."),
    ("creative_writing", "vegetable_farmer", "Write a very short story about the first rain after "
     "a long drought, told from a farmhouse porch."),
    ("creative_writing", "cs_freshman", "Write a funny little poem about debugging code at "
     "midnight when the bug turns out to be a missing comma."),
    ("creative_writing", "history_teacher", "Write a diary entry by a Roman soldier posted on "
     "Hadrian's Wall in the middle of winter."),
    ("creative_writing", "non_native_speaker", "Please write a small story about a cat who moves "
     "to a new city and feels lonely. Use simple words please."),
    ("creative_writing", "bakery_owner",
     "Write a short, warm poem I could print on the paper bags of my bakery."),
    ("open_qa", "cs_freshman",
     "Should everyone learn to program, or is that advice overhyped?"),
    ("open_qa", "history_teacher",
     "Why do some historical figures turn into legends while others are forgotten?"),
    ("open_qa", "biology_phd",
     "Is it ethical to try to bring back extinct animals like the woolly mammoth?"),
    ("open_qa", "truck_driver",
     "Will self-driving trucks really replace drivers like me, and how soon?"),
    ("open_qa", "retired_carpenter", "Are things really built worse today than fifty years ago, "
     "or is that just nostalgia talking?"),
    ("open_qa", "new_manager",
     "What makes a team feel like a team rather than a group of people sharing an office?"),
    ("open_qa", "vegetable_farmer",
     "Should cities set aside more of their land for growing food?"),
    ("open_qa", "night_nurse",
     "Why do patients trust some doctors instantly and never warm up to others?"),
    ("open_qa", "teen_writer", "What makes a villain in a book stick in your memory?"),
    ("open_qa", "non_native_speaker",
     "Why is English spelling so different from how the words sound?"),
    ("advice", "night_nurse",
     "I work three night shifts a week. How can I sleep better during the day?"),
    ("advice", "bakery_owner",
     "A chain bakery just opened across the street from mine. How should I respond?"),
    ("advice", "toddler_parent", "My two-year-old has a tantrum every time we leave the "
     "playground. What can I do differently?"),
    ("advice", "cs_freshman", "I'm falling behind in my algorithms course and the midterm is in "
     "three weeks. How should I catch up?"),
    ("advice", "new_manager", "I now manage people who were my peers last month. How do I give "
     "them critical feedback without it getting awkward?"),
    ("advice", "retired_carpenter", "I retired in spring and I feel a bit lost without work. How "
     "do people find a new routine after retiring?"),
    ("advice", "non_native_speaker", "I have a job interview in English next week and I am very "
     "nervous. How can I prepare?"),
    ("advice", "truck_driver",
     "How can I eat healthier when most of my meals come from truck stops?"),
    ("advice", "biology_phd", "My thesis advisor rarely answers my emails. How do I get the "
     "guidance I need without burning the bridge?"),
    ("advice", "vegetable_farmer",
     "Is it worth selling at farmers' markets, or should I stick to wholesale buyers?"),
    ("explanation", "bakery_owner", "Explain how a sourdough starter makes bread rise."),
    ("explanation", "cs_freshman",
     "Can you explain recursion without using the factorial example?"),
    ("explanation", "history_teacher", "Explain why the Roman Empire split into east and west, "
     "in a way sixteen-year-olds would follow."),
    ("explanation", "night_nurse",
     "Explain why working nights is so hard on the body's internal clock."),
    ("explanation", "retired_carpenter",
     "Why does wood warp, and why do some boards warp more than others?"),
    ("explanation", "toddler_parent",
     "Why do toddlers say no to everything? Is it just a phase?"),
    ("explanation", "non_native_speaker", "Can you explain what inflation is, in easy English?"),
    ("explanation", "vegetable_farmer", "Explain how rotating crops keeps the soil healthy."),
    ("explanation", "biology_phd",
     "Explain how CRISPR finds the right place in the genome to cut."),
    ("explanation", "new_manager",
     "Explain the difference between a manager and a leader, if there really is one."),
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "creative_writing": (
        "Write a short poem about {topic}.",
        "Write a very short story about {topic}.",
        "Write a limerick about {topic}.",
        "Describe {topic} in one vivid paragraph, like the opening of a novel.",
        "Write a six-line poem about {topic} without using the word 'love'.",
    ),
    "open_qa": (
        "What do you think makes {topic} so hard to get right?",
        "Is {topic} overrated or underrated, in your view?",
        "What are the strongest arguments for and against {topic}?",
        "How might {topic} look in fifty years?",
        "Why do people disagree so strongly about {topic}?",
    ),
    "advice": (
        "How can I get better at {topic}?",
        "What is a realistic first step toward {topic}?",
        "I keep failing at {topic}. What should I change?",
        "What mistakes do beginners make with {topic}, and how do I avoid them?",
    ),
    "explanation": (
        "Explain {topic} in simple terms.",
        "Can you explain {topic} with an everyday analogy?",
        "What is {topic}, and why does it matter?",
        "Explain {topic} to someone who has never heard of it.",
    ),
}

TOPICS: dict[str, tuple[str, ...]] = {
    "creative_writing": (
        "the first snow of the year", "a lighthouse that lost its keeper", "an old bicycle",
        "a city at four in the morning", "a kitchen on a holiday morning",
        "a friendship that ended quietly", "the last day of summer",
        "a robot learning to garden", "moving to a new country", "a thunderstorm over the sea",
        "a lost umbrella", "a grandmother's recipe box",
    ),
    "open_qa": (
        "remote work", "homework for young children", "driverless transport",
        "social media for teenagers", "learning Latin in school", "a four-day work week",
        "standardised testing", "the public library", "space tourism", "tipping in restaurants",
        "the open-plan office", "nuclear power",
    ),
    "advice": (
        "sleeping well", "saving money on groceries", "saying no to extra work",
        "keeping houseplants alive", "public speaking", "learning a language as an adult",
        "staying in touch with old friends", "running regularly", "sticking to a budget",
        "cooking healthy meals quickly", "negotiating a raise", "keeping a tidy workspace",
    ),
    "explanation": (
        "compound interest", "vaccination", "inflation", "photosynthesis",
        "public-key encryption", "the greenhouse effect", "the jet stream", "a credit score",
        "jet lag", "the stock market", "noise cancellation", "sourdough fermentation",
    ),
}


class OpenPromptsConfig(BaseModel):
    """How the ``open_prompts`` input is made."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the generator; same seed, same prompts and ids.")
    count: int = Field(48, ge=1, description="Prompts in total, seeds included.")
    categories: dict[str, float] = Field(
        default_factory=lambda: {c: 1.0 for c in CATEGORIES},
        description="Share of each category (creative_writing, open_qa, advice, explanation); "
        "a list means equal shares. Shares need not sum to 1.",
    )
    include_seeds: bool = Field(
        True, description="Start from the hand-written seeds (as many as each category's share "
        "allows) and generate only the rest."
    )
    backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig, description="Who writes the generated prompts: "
        "'offline' = the templates; 'openai' / 'hf' = a model, with the templates as fallback."
    )

    @field_validator("categories", mode="before")
    @classmethod
    def _list_means_equal_shares(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {category: 1.0 for category in value}
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
        if any(share < 0 for share in value.values()) or not any(value.values()):
            raise ValueError("category shares must be >= 0 and not all 0")
        return value


@dataclass(frozen=True)
class PromptPlan:
    """One prompt to write: what it asks (template and topic) and who asks it."""

    category: str
    persona: str
    topic: str
    template: int  # index into TEMPLATES[category]
    intro: int  # index into the persona's intros
    closer: int | None  # index into the persona's closers, or None for no closing remark


def render_prompt(plan: PromptPlan) -> str:
    """The template text of a plan: the persona's intro, the request, maybe a closing remark."""
    persona = PERSONAS[plan.persona]
    request = TEMPLATES[plan.category][plan.template].format(topic=plan.topic)
    closer = [] if plan.closer is None else [persona.closers[plan.closer]]
    return " ".join([persona.intros[plan.intro], request, *closer])


def normalise(text: str) -> str:
    """Dedup key: lower case, punctuation and extra spaces removed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def category_quotas(categories: Mapping[str, float], count: int) -> dict[str, int]:
    """``count`` split by share (largest remainder; ties go to the earlier category)."""
    total = sum(categories.values())
    exact = {c: count * share / total for c, share in categories.items()}
    quotas = {c: int(v) for c, v in exact.items()}
    by_remainder = sorted(categories, key=lambda c: (-(exact[c] - quotas[c]), CATEGORIES.index(c)))
    for category in by_remainder[: count - sum(quotas.values())]:
        quotas[category] += 1
    return quotas


def prompt_id(category: str, text: str) -> str:
    """Stable id of a prompt: its category and a hash of its text."""
    return f"open_{category}_{hashlib.sha1(normalise(text).encode()).hexdigest()[:10]}"


def _pick_seeds(quotas: Mapping[str, int], rng: random.Random) -> list[OpenPrompt]:
    picked = []
    for category, quota in quotas.items():
        pool = [s for s in SEEDS if s[0] == category]
        chosen = pool if quota >= len(pool) else rng.sample(pool, quota)
        picked += [OpenPrompt(prompt_id=prompt_id(c, text), category=c, persona=p, prompt=text,
                              source="seed") for c, p, text in chosen]
    return picked


def _persona_picker(rng: random.Random, used: Counter[str]):
    """Next persona: the least used so far, ties broken in a seeded random order."""
    order = list(PERSONAS)
    rng.shuffle(order)

    def pick() -> str:
        chosen = min(order, key=lambda key: (used[key], order.index(key)))
        used[chosen] += 1
        return chosen

    return pick


def plan_open_prompts(
    quotas: Mapping[str, int], rng: random.Random, taken: set[str], used: Counter[str]
) -> list[PromptPlan]:
    """Plans for ``quotas`` new prompts per category, none of whose texts is in ``taken``.

    Each (template, topic) pair is used once before any is reused with another persona;
    ``used`` counts personas already asked (the seeds), so every persona gets its turn.
    """
    next_persona = _persona_picker(rng, used)
    combos = {}
    for category in quotas:
        pairs = [(t, topic) for t in range(len(TEMPLATES[category])) for topic in TOPICS[category]]
        rng.shuffle(pairs)
        combos[category] = iter(pairs * len(PERSONAS))
    slots = [c for c, n in quotas.items() for _ in range(n)]
    rng.shuffle(slots)
    plans = []
    for category in slots:
        persona = next_persona()
        for template, topic in combos[category]:
            closer = rng.randrange(2) if rng.random() < 0.6 else None
            plan = PromptPlan(category, persona, topic, template, rng.randrange(2), closer)
            key = normalise(render_prompt(plan))
            if key not in taken:
                taken.add(key)
                plans.append(plan)
                break
        else:
            log.warning("open_prompts: no unused %s prompt left to generate", category)
    return plans


# ---------------------------------------------------------------------------- the LLM writer

_WRITER_SYSTEM = (
    "You write realistic messages that people send to a chat assistant, used to train and "
    "evaluate it. Write ONE message from the person described, in their own voice, of the "
    "requested kind and about the given topic. One to three sentences. Reply with the message "
    "only: no quotation marks, no title, no answer to it."
)


def writer_request(plan: PromptPlan) -> ChatRequest:
    """The ``open_prompt_writer`` request asking a model to write the prompt ``plan`` describes."""
    persona = PERSONAS[plan.persona]
    user = (
        f"Kind of message: {plan.category} ({CATEGORY_GUIDES[plan.category]}).\n"
        f"Who writes it: {persona.description}; they tend to open like \"{persona.intros[0]}\" "
        f"and add things like \"{persona.closers[0]}\"\n"
        f"Topic: {plan.topic}\n"
        f"A plain example of such a message: {render_prompt(plan)}"
    )
    return ChatRequest(
        role=WRITER_ROLE,
        messages=[{"role": "system", "content": _WRITER_SYSTEM}, {"role": "user", "content": user}],
        context=asdict(plan),
        max_tokens=200,
    )


_LABEL = re.compile(r"^(?:prompt|message|user|request)\s*:\s*", re.I)
_NOT_A_PROMPT = re.compile(
    r"^(?:sure|certainly|of course|here(?:'s| is)|i (?:can(?:'t|not)|won't|am unable)|sorry|"
    r"as an ai)\b", re.I,
)


def accept_written_prompt(text: str | None) -> str | None:
    """The model's reply as a prompt, or None when it is empty or does not read as one."""
    cleaned = _LABEL.sub("", (text or "").strip()).strip().strip("\"'“”").strip()
    words = len(cleaned.split())
    if not 4 <= words <= 90 or cleaned.count("\n") > 3 or _NOT_A_PROMPT.match(cleaned):
        return None
    return cleaned


def write_prompts(
    plans: list[PromptPlan], backend: ChatBackend, taken: set[str] | None = None
) -> tuple[list[tuple[PromptPlan, str]], int]:
    """Each plan with its text as the backend writes it, and how many fell back to the template.

    A reply that fails, is empty, does not read as a prompt or repeats a prompt already in
    ``taken`` (dedup keys) or written before is replaced by the plan's template text; a plan
    whose template text is taken as well is dropped.
    """
    replies = complete_many(backend, [writer_request(plan) for plan in plans])
    seen = set(taken or ())
    written, fallbacks = [], 0
    for plan, reply in zip(plans, replies):
        text = None if reply.error else accept_written_prompt(reply.content)
        if text is None or normalise(text) in seen:
            text, fallbacks = render_prompt(plan), fallbacks + 1
        if normalise(text) not in seen:
            seen.add(normalise(text))
            written.append((plan, text))
    return written, fallbacks


# ------------------------------------------------------------------------------ entry points


def generate_open_prompts(
    config: OpenPromptsConfig, rng: random.Random, backend: ChatBackend | None = None
) -> list[OpenPrompt]:
    """Seeds (when included) plus generated prompts: ``config.count`` in all, by category share."""
    quotas = category_quotas(config.categories, config.count)
    seeds = _pick_seeds(quotas, rng) if config.include_seeds else []
    seeded = Counter(s.category for s in seeds)
    to_generate = {c: quotas[c] - seeded[c] for c in quotas}
    taken = {normalise(s.prompt) for s in seeds}
    plans = plan_open_prompts(to_generate, rng, set(taken), Counter(s.persona for s in seeds))
    written, fallbacks = write_prompts(plans, backend or make_backend(config.backend), taken)
    if fallbacks:
        log.info("open_prompts: %d of %d written prompts fell back to their template",
                 fallbacks, len(plans))
    generated = [
        OpenPrompt(prompt_id=prompt_id(plan.category, text), category=plan.category,
                   persona=plan.persona, prompt=text, source="generated")
        for plan, text in written
    ]
    return seeds + generated


def make_open_prompts(config: OpenPromptsConfig | Mapping[str, Any]) -> list[OpenPrompt]:
    """The ``open_prompts`` input from its configuration (a model or parameters mapping)."""
    if not isinstance(config, OpenPromptsConfig):
        config = OpenPromptsConfig.model_validate(dict(config))
    return generate_open_prompts(config, random.Random(config.seed))
