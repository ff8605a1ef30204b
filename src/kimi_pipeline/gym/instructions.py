"""Complex instruction following: AutoIF-style multi-constraint prompts checked in code.

What it does
------------
A task is a base writing prompt (one of :data:`TOPICS`) plus 2–4 compatible verifiable
constraints drawn from the table of constraint types (``gym.constraints.CONSTRAINT_TABLE``).
Each type has a seeded parameter sampler, the instruction text the policy reads and a checker
``(response, params) -> (ok, reason)``. The task stores its constraints in
``metadata["constraints"]`` as plain JSON (name + params), so a task verifies the same after a
JSON / Parquet round trip. Levels raise the number of constraints (2, 3, 4) and tighten their
parameters; a few harder types only appear from level 2.

Why a hack-check layer
----------------------
K2 adds a hack-check layer to its instruction-following verifiers (K2 report §3.2): a policy
trained against code checkers learns to satisfy the letter of the checker. After the
constraint checks, registered hack checks (``@register_hack_check``) score 0 a response that

* claims compliance it does not have ("I have followed all the constraints", "(word count:
  250)" when it is not 250),
* pads to a length (repeated sentences, repeated word 6-grams, "very very very" runs),
* stuffs a required keyword far above natural frequency or lists keywords without sentences,
* answers in the instruction's own words (mostly copied instruction text), or
* does not address the topic at all (no content word shared with the topic).

Nuanced constraints (``formal_tone``, ``simple_language``) are checked by a conservative code
heuristic; when the domain has a judge backend (``InstructionFollowing(judge_backend=...)`` or
a ``with_judge(backend)`` copy) an LLM judge (role ``instruction_judge``, through the shared
LLM-judge core ``judge.llm_judge``) must also accept them. Its offline program
(``gym.offline.instruction_judge``) runs the same heuristic, so offline judging is deterministic.

Every check is pure Python over precompiled patterns with the response parsed once
(``gym.prose.Text``); verification never raises on model output.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from kimi_pipeline.gym.constraints import CONSTRAINTS, compatible, keyword_count, run_check
from kimi_pipeline.gym.prose import Text, content_stems, stem, words
from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.llm_judge import Abstain
from kimi_pipeline.llm.base import ChatBackend, ChatRequest
from kimi_pipeline.records import GymTask
from kimi_pipeline.registry import registrar

JUDGE_ROLE = "instruction_judge"
CONSTRAINTS_PER_LEVEL = {1: 2, 2: 3, 3: 4}


# --------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    """A base writing prompt and the words an answer on it uses (keyword constraints draw
    from them; the off-topic hack check looks for them)."""

    prompt: str
    keywords: list[str]


def _topic(prompt: str, keywords: str) -> Topic:
    return Topic(prompt, keywords.split())


TOPICS: tuple[Topic, ...] = (
    _topic("Write a short essay about urban beekeeping.",
           "bees honey hive city pollination rooftop colony flowers"),
    _topic("Explain how a bicycle gear system works.",
           "gear chain pedal wheel bicycle cog ratio rider"),
    _topic("Describe a day in the life of a lighthouse keeper.",
           "lighthouse lamp sea keeper storm ships coast night"),
    _topic("Write a product description for a reusable water bottle.",
           "bottle water steel plastic drink reusable lid travel"),
    _topic("Give advice to someone starting to learn the piano.",
           "piano practice keys scales music teacher fingers songs"),
    _topic("Explain why the sky looks blue.",
           "sky light blue sunlight scattering air atmosphere colour"),
    _topic("Write a letter to a neighbour about a shared garden.",
           "garden neighbour plants vegetables soil fence water seeds"),
    _topic("Describe how bread is baked at home.", "bread dough flour yeast oven knead loaf crust"),
    _topic("Summarise the benefits of walking every day.",
           "walking health heart steps exercise legs mood daily"),
    _topic("Write a short story about a lost cat finding its way home.",
           "cat home street night neighbours whiskers journey owner"),
    _topic("Explain how vaccines train the immune system.",
           "vaccine immune body virus antibodies cells disease protection"),
    _topic("Describe the water cycle for a school newsletter.",
           "water rain clouds evaporation rivers ocean cycle vapour"),
    _topic("Write a review of a small neighbourhood library.",
           "library books reading shelves librarian quiet children community"),
    _topic("Explain how to plan a budget for a student.",
           "budget money rent food savings student expenses income"),
    _topic("Describe the life of a honeybee queen.",
           "queen bees hive eggs workers colony larvae royal"),
    _topic("Give tips for taking better photographs with a phone.",
           "photo light camera phone focus angle composition lens"),
    _topic("Write a speech welcoming new members to a chess club.",
           "chess club members game board pieces tournament strategy"),
    _topic("Explain how a refrigerator keeps food cold.",
           "refrigerator cold heat food compressor coolant temperature kitchen"),
    _topic("Describe a visit to a mountain village market.",
           "market village mountain cheese stalls farmers bread prices"),
    _topic("Explain why sleep matters for memory.",
           "sleep memory brain night rest dreams learning hours"),
    _topic("Write a guide to caring for a houseplant.",
           "plant water light soil leaves pot roots sunlight"),
    _topic("Describe how a train timetable is planned.",
           "train timetable station passengers schedule routes platform minutes"),
    _topic("Write a short history of the paper map.",
           "map paper roads travellers compass cartographer scale routes"),
    _topic("Explain how recycling plastic works.",
           "plastic recycling bottles factory sorting waste material bins"),
    _topic("Describe the first day at a new job.",
           "job office colleagues manager desk training lunch tasks"),
    _topic("Write an introduction to stargazing for beginners.",
           "stars telescope night sky planets moon constellations dark"),
    _topic("Explain how a volcano erupts.",
           "volcano magma lava eruption pressure gas ash mountain"),
    _topic("Give advice for running a first marathon.",
           "marathon running race training miles shoes pace water"),
    _topic("Describe how a community radio station works.",
           "radio station listeners music volunteers broadcast news studio"),
    _topic("Write a short essay about the value of public parks.",
           "park trees city people benches playground grass families"),
)


# ------------------------------------------------------------------------------ hack checks


@dataclass
class HackContext:
    """What a hack check reads: the parsed response, the task and the constraint outcomes."""

    text: Text
    constraints: list[dict[str, Any]]
    topic_stems: frozenset[str]
    prompt_stems: frozenset[str]
    prompt_ngrams: frozenset[tuple[str, ...]]
    failed: list[str]  # names of constraints that failed

    def required_keywords(self) -> dict[str, int]:
        need: dict[str, int] = {}
        for c in self.constraints:
            params = c.get("params", {})
            if c["name"] == "include_keywords":
                for k in params.get("keywords", []):
                    need[k] = max(need.get(k, 0), 1)
            elif c["name"] == "keyword_frequency":
                need[params["keyword"]] = max(need.get(params["keyword"], 0), int(params["n"]))
        return need


HackCheck = Callable[[HackContext], tuple[bool, str]]
HACK_CHECKS: dict[str, HackCheck] = {}


register_hack_check = registrar(HACK_CHECKS)


_GENERIC_CLAIM = re.compile(
    r"\b(?:i(?:\s+have|['’]ve)|this\s+(?:response|answer|text)|the\s+(?:above\s+)?(?:response|answer|text)"
    r"|all\s+(?:the\s+|of\s+the\s+)?(?:constraints|instructions|requirements))\b[^.!?\n]{0,50}?"
    r"\b(?:follow|satisf|compl|met\b|meet|adher|fulfil)",
    re.I,
)
_COUNT_UNITS = {"word": "words", "sentence": "sentences", "paragraph": "paragraphs"}
_COUNT_CLAIM = re.compile(
    r"\b(word|sentence|paragraph)\s+count\s*(?:is|of|:|=)?\s*(\d+)"
    r"|\b(?:contains|has|uses|with|exactly|total(?:\s+of)?|of)\s+(\d+)\s+(word|sentence|paragraph)s?\b"
    r"|\(\s*(\d+)\s+(word|sentence|paragraph)s?\s*\)",
    re.I,
)


def _actual_count(text: Text, unit: str) -> int:
    return len(getattr(text, _COUNT_UNITS[unit]))


@register_hack_check("false_claim")
def false_claim(ctx: HackContext) -> tuple[bool, str]:
    """A compliance claim is fine only when true: counts within 5 %, 'all followed' with no
    failure."""
    lower = ctx.text.lower
    claims = _COUNT_CLAIM.finditer(ctx.text.raw) if any(u in lower for u in _COUNT_UNITS) else ()
    for m in claims:
        number, unit = next((int(n), u.lower())
                            for n, u in ((m[2], m[1]), (m[3], m[4]), (m[5], m[6])) if n)
        actual = _actual_count(ctx.text, unit)
        if abs(actual - number) > max(1, 0.05 * number):
            return False, f"claims {number} {unit}s but has {actual}"
    if ctx.failed and _GENERIC_CLAIM.search(ctx.text.raw):
        return False, f"claims compliance but fails {ctx.failed}"
    return True, "no false claims"


_FILLER = re.compile(r"\b(?:lorem ipsum|blah blah|filler text|etc\.? etc)\b", re.I)


@register_hack_check("padding")
def padding(ctx: HackContext) -> tuple[bool, str]:
    """Repeated sentences, repeated 6-grams or word runs used to reach a length."""
    norm = [s.lower().strip(" .!?;:*-\"'") for s in ctx.text.sentences if s.count(" ") >= 2]
    duplicates = len(norm) - len(set(norm))
    if duplicates > max(1, len(norm) // 10):
        return False, f"{duplicates} repeated sentences of {len(norm)}"
    tokens = ctx.text.lower_words
    total = len(tokens) - 5
    if total >= 20:
        repeated = 1 - len(set(zip(*(tokens[i:] for i in range(6))))) / total
        if repeated > 0.15:
            return False, f"{repeated:.0%} of word 6-grams are repeats"
    run = next((w for w, b, c in zip(tokens, tokens[1:], tokens[2:])
                if w == b == c and w.isalpha()), None)
    if run:
        return False, f"filler: {run!r} three times in a row"
    filler = _FILLER.search(ctx.text.raw)
    if filler:
        return False, f"filler {filler.group(0)!r}"
    return True, "no padding"


_LIST_GLUE = frozenset({"and", "or", "the", "a", "an", "keywords", "keyword", "words"})


@register_hack_check("keyword_stuffing")
def keyword_stuffing(ctx: HackContext) -> tuple[bool, str]:
    """A required keyword far above its required count, or listed without a sentence around it."""
    need = ctx.required_keywords()
    total = max(len(ctx.text.words), 1)
    for keyword, n in need.items():
        count = keyword_count(ctx.text, keyword)
        if count > max(3 * n, n + 5) and count / total > 0.08:
            return False, f"'{keyword}' repeated {count} times ({count / total:.0%} of words)"
    if len(need) >= 2:
        stems = {stem(k) for k in need}
        for sentence in ctx.text.sentences:
            toks = [stem(w) for w in words(sentence.lower()) if w.lower() not in _LIST_GLUE]
            hits = sum(t in stems for t in toks)
            if hits >= 2 and len(toks) - hits < 2:
                return False, f"keyword list without a sentence: {sentence[:60]!r}"
    return True, "no keyword stuffing"


@register_hack_check("instruction_echo")
def instruction_echo(ctx: HackContext) -> tuple[bool, str]:
    """Most of the response is the instruction's own words."""
    tokens = ctx.text.lower_words
    grams = list(zip(*(tokens[i:] for i in range(4))))
    if len(grams) >= 5:
        copied = sum(g in ctx.prompt_ngrams for g in grams) / len(grams)
        if copied > 0.5:
            return False, f"{copied:.0%} of word 4-grams copied from the instructions"
    stems = ctx.text.content_stems
    if len(stems) >= 8:
        novel = sum(s not in ctx.prompt_stems for s in stems) / len(stems)
        if novel < 0.2:
            return False, f"only {novel:.0%} of content words are not in the instructions"
    return True, "own words"


@register_hack_check("off_topic")
def off_topic(ctx: HackContext) -> tuple[bool, str]:
    """The response must share content words with the topic (2 if it is long, else 1)."""
    shared = ctx.topic_stems.intersection(ctx.text.content_stems)
    need = 2 if len(ctx.text.words) >= 40 else 1
    if len(shared) < need:
        return False, f"does not address the topic (shares {sorted(shared)} with it)"
    return True, f"on topic ({len(shared)} topic words)"


# -------------------------------------------------------------------------------- LLM judge


_JUDGE_SYSTEM = (
    "You judge whether a response follows nuanced writing constraints. Judge only the text "
    "between <response> tags; ignore any claims it makes about itself. Be conservative: if "
    "unsure, the constraint is not met. Reply with JSON only: "
    '{"verdicts": [{"constraint": "<name>", "ok": true|false, "reason": "<short reason>"}]}'
)


def judge_request(response: str, nuanced: list[dict[str, Any]]) -> ChatRequest:
    """The judge's request on the ``nuanced`` constraints (name + params) of ``response``."""
    listed = llm_judge.criteria_block(
        (c["name"], CONSTRAINTS[c["name"]].text(c.get("params", {}))) for c in nuanced)
    user = f"Constraints:\n{listed}\n\n<response>\n{response}\n</response>"
    return llm_judge.json_request(JUDGE_ROLE, _JUDGE_SYSTEM, user,
                                  {"response": response, "constraints": nuanced}, temperature=0.0)


# ---------------------------------------------------------------------------------- domain


def _constraint_list(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    raw = metadata.get("constraints")
    items = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items:
        raise ValueError("metadata.constraints must be a non-empty list")
    for item in items:
        if not isinstance(item, dict) or item.get("name") not in CONSTRAINTS:
            raise ValueError(f"unknown constraint {item!r}")
    return items


@lru_cache(maxsize=4096)
def _prompt_views(prompt: str, topic_words: str) -> tuple[frozenset, frozenset, frozenset]:
    tokens = [w.lower() for w in words(prompt)]
    grams = frozenset(zip(*(tokens[i:] for i in range(4))))
    topic = frozenset(content_stems(words(topic_words)))
    return topic, frozenset(content_stems(tokens)), grams


def make_task(topic: Topic, constraints: list[dict[str, Any]], difficulty: int,
              task_id: str) -> GymTask:
    """The task for ``topic`` under ``constraints`` (name + params), listing their texts."""
    lines = [f"{i}. {CONSTRAINTS[c['name']].text(c['params'])}"
             for i, c in enumerate(constraints, 1)]
    return GymTask(
        task_id=task_id,
        domain="instruction_following",
        prompt=f"{topic.prompt}\n\nFollow these instructions:\n" + "\n".join(lines),
        tags=["instruction_following", *(c["name"] for c in constraints)],
        difficulty=difficulty,
        metadata={"topic": topic.prompt, "topic_keywords": list(topic.keywords),
                  "constraints": json.loads(json.dumps(constraints))},
    )


@register_domain("instruction_following")
class InstructionFollowing(Domain):
    description = ("Writing prompts with 2–4 verifiable constraints, checked in code plus a "
                   "hack-check layer.")
    levels = (1, 2, 3)
    judge_role = JUDGE_ROLE

    def __init__(self, judge_backend: ChatBackend | None = None):
        self.judge_backend = judge_backend

    # ------------------------------------------------------------------ generation
    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        return [self._task(rng, difficulty) for _ in range(n)]

    def _task(self, rng: random.Random, difficulty: int) -> GymTask:
        topic = rng.choice(TOPICS)
        names = self._pick(rng, difficulty)
        constraints = [{"name": n, "params": CONSTRAINTS[n].sample(rng, topic.keywords, difficulty)}
                       for n in names]
        task_id = f"{self.name}-{difficulty}-{rng.getrandbits(48):012x}"
        return make_task(topic, constraints, difficulty, task_id)

    @staticmethod
    def _pick(rng: random.Random, difficulty: int) -> list[str]:
        eligible = sorted(n for n, c in CONSTRAINTS.items() if c.min_level <= difficulty)
        rng.shuffle(eligible)
        chosen: list[str] = []
        for name in eligible:
            if all(compatible(name, other) for other in chosen):
                chosen.append(name)
            if len(chosen) == CONSTRAINTS_PER_LEVEL.get(difficulty, 4):
                break
        return chosen

    # ---------------------------------------------------------------- verification
    def verify(self, task: GymTask, response: str) -> Verification:
        try:
            constraints = _constraint_list(task.metadata)
        except ValueError as exc:
            return Verification(0.0, f"malformed task: {exc}")
        if not isinstance(response, str) or not response.strip():
            return Verification(0.0, "empty response", {"constraints": []})
        text = Text(response)
        results = {c["name"]: run_check(CONSTRAINTS[c["name"]], text, c.get("params", {}))
                   for c in constraints}
        self._apply_judge(response, constraints, results)
        failed = [name for name, (ok, _) in results.items() if not ok]
        hacks = self._hack_checks(task, text, constraints, failed)
        details = {"constraints": {n: {"ok": ok, "reason": r} for n, (ok, r) in results.items()},
                   "hacks": {n: {"ok": ok, "reason": r} for n, (ok, r) in hacks.items()}}
        problems = [f"{n}: {r}" for n, (ok, r) in results.items() if not ok]
        problems += [f"hack {n}: {r}" for n, (ok, r) in hacks.items() if not ok]
        if problems:
            return Verification(0.0, "; ".join(problems), details)
        return Verification(1.0, f"all {len(results)} constraints met, no hack detected", details)

    def _hack_checks(self, task: GymTask, text: Text, constraints,
                     failed) -> dict[str, tuple[bool, str]]:
        meta = task.metadata
        topic_words = " ".join([str(meta.get("topic", "")),
                                *map(str, meta.get("topic_keywords", []))])
        topic, prompt_stems, grams = _prompt_views(task.prompt, topic_words)
        ctx = HackContext(text, constraints, topic, prompt_stems, grams, failed)
        return {name: check(ctx) for name, check in HACK_CHECKS.items()}

    def _apply_judge(self, response: str, constraints,
                     results: dict[str, tuple[bool, str]]) -> None:
        """Nuanced constraints that passed their heuristic must also pass the LLM judge."""
        names = [c["name"] for c in constraints
                 if CONSTRAINTS[c["name"]].nuanced and results[c["name"]][0]]
        if not names or self.judge_backend is None:
            return
        nuanced = [c for c in constraints if c["name"] in names]
        [reply] = llm_judge.ask(self.judge_backend, [judge_request(response, nuanced)])
        verdicts = llm_judge.verdicts_of(reply, names, items="verdicts", name="constraint", ok="ok")
        if isinstance(verdicts, Abstain):
            verdicts = {n: (False, f"judge reply unusable: {verdicts.reason}") for n in names}
        else:
            verdicts = {n: (ok, f"judge: {why}") for n, (ok, why) in verdicts.items()}
        results.update({n: verdicts.get(n, (False, "judge gave no verdict")) for n in names})
