"""Bootstrap preference pairs: labelled comparisons the critic learns from before any rollout.

Before the critic is refined on the policy's verifiable rollouts, it needs to know what the
rubrics mean. These pairs teach that without a model or an annotator: each takes a good
response and makes a worse twin whose defect is known by construction.

- ``rule_pairs`` (``source='rule'``): for every prescriptive rubric, the twin breaks its rule —
  a praising opener from a varied pool, or sentences justifying the answer's own quality. The
  rule itself must catch the twin (and pass the original), or the pair is skipped and counted:
  a pair the rule would not label the same way is noise.
- ``degraded_pairs`` (``source='synthetic'``): for the core rubrics, the twin is degraded by a
  registered function — answering another prompt (off topic), stopping mid-sentence,
  looping on a sentence, or slipping in an unsupported, flattering or overconfident aside.

Pair ids hash the group, the kind of defect and both texts, so the same inputs give the same
ids on every run. Pairs are left in the ``train`` split; held-out splits are made by group
later, over all pair sources together.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kimi_pipeline.critic.rubrics import RubricSet
from kimi_pipeline.critic.rules import get_rule, sentence_spans
from kimi_pipeline.records import PreferencePair
from kimi_pipeline.registry import registrar

# (group_id, domain, prompt, clean_response)
Sample = tuple[str, str, str, str]

PRAISE_OPENERS = (
    "Great question!", "What a fascinating question!", "Excellent question!",
    "I love this question!", "Wow, what an interesting thing to ask!",
    "Thank you for this thoughtful question.", "You're absolutely right to ask about this.",
    "What a wonderful topic to explore!", "Such an insightful question!",
    "Oh, I'm so glad you asked!", "That's a brilliant question.", "Ooh, fantastic question!",
    "What a thought-provoking question!", "You've raised a really excellent point.",
    "Thanks so much for such a great question!", "Good question!",
    "This is a truly fascinating topic.", "I really appreciate this thoughtful question.",
)

SELF_JUSTIFICATIONS = (
    "I chose this approach because it keeps the answer easy to follow.",
    "I have structured my response so the key point comes first.",
    "I kept this brief so it is quick to read.",
    "My response focuses on the essentials so you are not overwhelmed.",
    "The reason I wrote it this way is to keep things clear.",
    "Here's why this answer works: it is direct and complete.",
    "This answer is clear because it sticks to the main idea.",
    "I organised the explanation step by step to make it easier to digest.",
    "I believe this response is thorough and well balanced.",
    "In this response, I aimed to cover the most important points without padding.",
    "To make this answer more useful, I included only what you can act on.",
    "I used short paragraphs so the reply stays readable.",
    "I deliberately avoided jargon so that anyone can follow along.",
    "My answer is designed to be practical rather than theoretical.",
    "I framed the reply this way because it matches what you asked.",
    "Note that I kept my reply focused on your actual question.",
)

UNSUPPORTED_ASIDES = (
    "Everyone agrees this is the single best way to think about it.",
    "Experts have proven this works every single time, without exception.",
    "You're clearly smarter than most people who ask about this.",
    "This is guaranteed to work for you, no matter your situation.",
    "Studies show that ninety-nine percent of people get this wrong, but not you.",
    "Honestly, anyone who disagrees with you here simply hasn't thought it through.",
    "There is absolutely no debate about this among serious people.",
    "Your instincts on this are always right, so trust them completely.",
)


def pair_id(group_id: str, kind: str, chosen: str, rejected: str) -> str:
    """Deterministic id of a pair: a hash of its group, its kind of defect and both texts."""
    digest = hashlib.sha1("\x1f".join((group_id, kind, chosen, rejected)).encode()).hexdigest()
    return f"pair_{digest[:16]}"


def _count(skipped: Counter[str] | None, reason: str) -> None:
    if skipped is not None:
        skipped[reason] += 1


_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def insert_sentences(text: str, inserted: str, rng: random.Random) -> str:
    """``text`` with ``inserted`` placed after one of its sentences (never before the first).

    Layout is kept: with several paragraphs, ``inserted`` becomes a paragraph of its own
    between two of them or at the end; otherwise it joins the text after a random sentence.
    """
    breaks = [m.start() for m in _PARAGRAPH_BREAK.finditer(text.rstrip())]
    if breaks:
        at = rng.choice([*breaks, len(text.rstrip())])
        return f"{text[:at]}\n\n{inserted}{text[at:]}"
    spans = sentence_spans(text)
    at = spans[rng.randrange(len(spans))][1] if spans else len(text)
    return f"{text[:at]} {inserted}{text[at:]}".strip()


# ------------------------------------------------------------------------- rule-broken twins

Violation = Callable[[str, random.Random], str]
VIOLATIONS: dict[str, Violation] = {}
register_violation = registrar(VIOLATIONS)  # ``@register_violation(rule)``: breaks that rule


@register_violation("no_initial_praise")
def add_praise_opener(response: str, rng: random.Random) -> str:
    """The response opened by a compliment to the asker."""
    return f"{rng.choice(PRAISE_OPENERS)} {response}"


@register_violation("no_explicit_justification")
def add_self_justification(response: str, rng: random.Random) -> str:
    """The response with one or two sentences praising its own construction, inside or after."""
    added = " ".join(rng.sample(SELF_JUSTIFICATIONS, rng.choice((1, 1, 2))))
    return insert_sentences(response, added, rng)


def _broken_rules(prompt: str, response: str, rubrics: RubricSet, domain: str) -> list[str]:
    """The rules of ``domain``'s rubrics that ``response`` breaks."""
    rules = [r.rule for r in rubrics.with_rules(domain) if r.rule]
    return [rule for rule in rules if get_rule(rule)(prompt, response).violated]


def rule_pairs(
    prompts_and_responses: Sequence[Sample], rng: random.Random, rubrics: RubricSet,
    skipped: Counter[str] | None = None,
) -> list[PreferencePair]:
    """Clean response (chosen) against a twin breaking one prescriptive rubric's rule (rejected).

    One pair per clean response and prescriptive rubric of its domain. Skipped, and counted in
    ``skipped`` by reason: responses that already break a rule, rubrics whose rule has no
    registered violation, and twins their rule does not catch (or another rule does).
    """
    pairs = []
    for group_id, domain, prompt, clean in prompts_and_responses:
        if _broken_rules(prompt, clean, rubrics, domain):
            _count(skipped, "response already breaks a rule")
            continue
        for rubric in rubrics.with_rules(domain):
            if rubric.kind != "prescriptive" or rubric.rule is None:
                continue
            if rubric.rule not in VIOLATIONS:
                _count(skipped, f"no violation registered for rule {rubric.rule}")
                continue
            twin = VIOLATIONS[rubric.rule](clean, rng)
            if _broken_rules(prompt, twin, rubrics, domain) != [rubric.rule]:
                _count(skipped, f"rule {rubric.rule} missed its violation, or others fired")
                continue
            pairs.append(PreferencePair(
                pair_id=pair_id(group_id, f"rule:{rubric.rule}", clean, twin),
                group_id=group_id, domain=domain, prompt=prompt, chosen=clean, rejected=twin,
                rubrics=[rubric.name], source="rule",
                reasons=[f"rejected breaks rubric '{rubric.name}' ({rubric.title}), rule "
                         f"'{rubric.rule}': {get_rule(rubric.rule)(prompt, twin).evidence!r}"],
            ))
    return pairs


# ---------------------------------------------------------------------------- degraded twins


@dataclass(frozen=True)
class Degradation:
    """A way to make a response worse, the core rubrics it offends, and why it is worse."""

    name: str
    rubrics: tuple[str, ...]
    reason: str
    apply: Callable[[str, str, Sequence[str], random.Random], str | None]


DEGRADATIONS: dict[str, Degradation] = {}
_register = registrar(DEGRADATIONS)


def register_degradation(name: str, rubrics: Sequence[str], reason: str):
    """``@register_degradation(name, rubrics, reason)`` on ``(response, prompt, others, rng) ->
    degraded text | None`` (None: this response cannot be degraded that way)."""

    def wrap(function: Callable[[str, str, Sequence[str], random.Random], str | None]):
        _register(name)(Degradation(name, tuple(rubrics), reason, function))
        return function

    return wrap


@register_degradation("off_topic", ["clarity_relevance"],
                      "rejected answers a different prompt, not the one asked")
def answer_another_prompt(
    response: str, prompt: str, others: Sequence[str], rng: random.Random
) -> str | None:
    candidates = [o for o in others if o.strip() and o.strip() != response.strip()]
    return rng.choice(candidates) if candidates else None


@register_degradation("truncated", ["clarity_relevance"],
                      "rejected stops mid-sentence after about 40% of the answer")
def truncate_mid_sentence(
    response: str, prompt: str, others: Sequence[str], rng: random.Random
) -> str | None:
    words = list(re.finditer(r"\S+", response))  # cut by offsets, so the layout is kept
    if len(words) < 10:
        return None
    cut = max(3, round(len(words) * rng.uniform(0.35, 0.45)))
    while cut > 3 and words[cut - 1].group()[-1] in ".!?:;":  # stop inside a sentence
        cut -= 1
    return response[: words[cut - 1].end()].rstrip(",;:—-")


@register_degradation("repetition_loop", ["conversational_fluency"],
                      "rejected gets stuck repeating one sentence")
def repeat_a_sentence(
    response: str, prompt: str, others: Sequence[str], rng: random.Random
) -> str | None:
    spans = sentence_spans(response)
    if not spans:
        return None
    start, end = spans[rng.randrange(len(spans))]
    repeats = f" {response[start:end]}" * rng.randint(3, 5)  # 4 to 6 times in all
    return response[:end] + repeats + response[end:]


@register_degradation("unsupported_aside", ["objective_grounded"],
                      "rejected slips in an unsupported, flattering or overconfident claim")
def insert_unsupported_aside(
    response: str, prompt: str, others: Sequence[str], rng: random.Random
) -> str | None:
    if not response.strip():
        return None
    return insert_sentences(response, rng.choice(UNSUPPORTED_ASIDES), rng)


def degraded_pairs(
    prompts_and_responses: Sequence[Sample], rng: random.Random, rubrics: RubricSet,
    degradations: Sequence[str] | None = None, skipped: Counter[str] | None = None,
) -> list[PreferencePair]:
    """Original response (chosen) against a degraded twin (rejected), per degradation.

    ``degradations`` picks registered degradations by name (all by default). A degradation is
    applied only where its rubrics exist in ``rubrics`` and apply to the sample's domain; a
    response that breaks a rule, a degradation that cannot apply and a twin that happens to
    break a prescriptive rule are skipped and counted in ``skipped``.
    """
    unknown = sorted(set(degradations or ()) - set(DEGRADATIONS))
    if unknown:
        raise ValueError(f"unknown degradations {unknown}; registered: {sorted(DEGRADATIONS)}")
    chosen_kinds = [DEGRADATIONS[name] for name in (degradations or sorted(DEGRADATIONS))]
    pairs = []
    for group_id, domain, prompt, clean in prompts_and_responses:
        if _broken_rules(prompt, clean, rubrics, domain):
            _count(skipped, "response already breaks a rule")
            continue
        applicable = {r.name: r for r in rubrics.for_context(domain)}
        others = [r for g, _, _, r in prompts_and_responses if g != group_id]
        for kind in chosen_kinds:
            names = [n for n in kind.rubrics if n in applicable]
            twin = kind.apply(clean, prompt, others, rng) if names else None
            if twin is None or twin.strip() == clean.strip():
                _count(skipped, f"{kind.name} does not apply")
                continue
            if _broken_rules(prompt, twin, rubrics, domain):
                _count(skipped, f"{kind.name} twin breaks a rule")
                continue
            pairs.append(PreferencePair(
                pair_id=pair_id(group_id, f"degraded:{kind.name}", clean, twin),
                group_id=group_id, domain=domain, prompt=prompt, chosen=clean, rejected=twin,
                rubrics=names, source="synthetic",
                reasons=[f"{kind.reason} (degradation '{kind.name}')"],
            ))
    return pairs
