"""Prescriptive critic rubrics decided in code: rules a response breaks or does not.

Some of K2's rubrics are not matters of taste but of form. "Do not open by praising the user"
and "do not explain why your own answer is good" are checked here, deterministically, so the
critic never has to be trusted on them and bootstrap data can be labelled without a model.

Each rule is a function ``(prompt, response) -> RuleResult`` registered with
``@register_rule(name)``; a rubric names its rule in ``critic_rubrics.yml`` and the rubric
loader refuses a name that is not registered here. ``rule_preference`` turns the mandatory
rules into a verdict on a pair: when exactly one side breaks one, the other side wins.

The detectors are lexicons plus regular expressions, tuned to stay silent on ordinary prose
("Great Barrier Reef facts", "The reason the sky is blue is ...") at the price of missing
unusual phrasings; a miss only means the critic model decides that pair instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kimi_pipeline.registry import registrar

if TYPE_CHECKING:
    from kimi_pipeline.critic.rubrics import RubricSet


@dataclass(frozen=True)
class RuleResult:
    """A rule's verdict on one response: broken or not, and the text that broke it."""

    violated: bool
    evidence: str = ""


Rule = Callable[[str, str], RuleResult]
RULES: dict[str, Rule] = {}
register_rule = registrar(RULES)  # ``@register_rule("name")`` on a (prompt, response) checker


def get_rule(name: str) -> Rule:
    """The registered rule called ``name``; a ``ValueError`` listing the known ones otherwise."""
    if name not in RULES:
        raise ValueError(f"unknown critic rule {name!r}; known rules: {sorted(RULES)}")
    return RULES[name]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]”’])\s+|\s*\n\s*")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences (and lines) of ``text``, blanks skipped."""
    spans, start = [], 0
    for boundary in [*_SENTENCE_END.finditer(text), None]:
        end = boundary.start() if boundary else len(text)
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + len(piece.rstrip())))
        start = boundary.end() if boundary else end
    return spans


def sentences(text: str) -> list[str]:
    """The text cut into sentences (and lines), stripped, empty pieces dropped."""
    return [text[start:end] for start, end in sentence_spans(text)]


# ------------------------------------------------------------------------- no initial praise

_ADVERB = r"(?:(?:really|very|truly|such|so|super|incredibly|absolutely|genuinely|most|quite)\s+)"
_STRONG_PRAISE_WORDS = (
    "great good excellent fascinating wonderful thoughtful insightful brilliant fantastic lovely "
    "terrific superb intriguing delightful amazing awesome astute thought-provoking marvellous "
    "marvelous outstanding stellar"
).split()
_MILD_PRAISE_WORDS = (
    "interesting profound clever smart perceptive beautiful sharp deep compelling cool neat fun "
    "timely perfect nice exciting"
).split()


def _one_of(words: list[str]) -> str:
    """A regex alternation of ``words`` (a hyphen also matches a space)."""
    return "(?:" + "|".join(re.escape(w).replace(r"\-", "[- ]") for w in words) + ")"


_STRONG_PRAISE = _one_of(_STRONG_PRAISE_WORDS)
_PRAISE_ADJ = _one_of(_STRONG_PRAISE_WORDS + _MILD_PRAISE_WORDS)
_PRAISE_NOUN = (
    r"(?:question|questions(?=\s*(?:[!.,:;—–-]|$))|query|topic|subject|problem|puzzle|point|"
    r"idea|"
    r"thought(?!\s+experiment)|observation|request|prompt|ask|inquiry|enquiry|challenge|dilemma|"
    r"choice|pick|one|perspective|angle|premise|concept|theme|curiosity|"
    r"thing to (?:ask|wonder about|think about)|way to (?:put|frame|think about) it)(?![\w-])"
)
# "It's a good idea to ..." is advice, not praise: a praise noun is not followed by these
_NOT_PRAISE_AFTER = r"(?!\s+(?:to|for|if|when|whether|because|that)\b)"
_BARE_ADJ_NOUN = rf"{_ADVERB}?{_PRAISE_ADJ}\s+{_PRAISE_NOUN}"
_ADJ_NOUN = _BARE_ADJ_NOUN + _NOT_PRAISE_AFTER
_ASK_OBJECT = r"(?:this|that|your|the|such an?)\s+(?:[\w-]+\s+){0,2}?" + _PRAISE_NOUN

# each pattern is matched at the very start of an opening sentence
_PRAISE_OPENERS = [
    rf"(?:what|such)\s+(?:an?\s+)?{_BARE_ADJ_NOUN}",  # What a fascinating question (to ask)
    rf"(?:what|such)\s+an?\s+{_PRAISE_NOUN}\s*(?:[!.,:;—–-]|$)",  # What a question!
    _ADJ_NOUN,  # Great question / Excellent question!
    rf"an?\s+{_ADJ_NOUN}\s*(?:[!.,:;—–-]|$)",  # A great question!
    rf"(?:that|this|it|what)(?:'s|’s|\s+is|\s+was)\s+(?:an?\s+|one\s+)?{_ADJ_NOUN}",
    rf"(?:i|we)\s+(?:really\s+|absolutely\s+|just\s+)?(?:love|adore|like|appreciate|enjoy)\s+"
    rf"(?:{_ASK_OBJECT}|(?:that|how|the\s+way)\s+you\s+(?:asked|framed|put|phrased))",
    r"(?:thanks?|thank\s+you)(?:\s+(?:so|very)\s+much)?\s+for\s+(?:asking|"
    r"(?:this|that|your|the|such\s+an?)\s+(?:[\w-]+\s+){0,2}?(?:questions?|query|prompt|"
    r"request|inquiry|enquiry|topic))",
    r"you(?:'re|’re|\s+are)\s+(?:absolutely\s+|so\s+|completely\s+|totally\s+|quite\s+)?"
    r"right\s+to\s+(?:ask|wonder|question|be\s+curious|think\s+about|bring)",
    rf"you(?:'ve|’ve|\s+have)?\s+(?:asked|raised|posed|hit\s+on|touched\s+on|brought\s+up|"
    rf"picked|chosen)\s+(?:an?\s+|such\s+an?\s+|one\s+of\s+the\s+)?{_ADVERB}?{_PRAISE_ADJ}",
    rf"(?:your|this)\s+{_PRAISE_NOUN}\s+is\s+(?:an?\s+)?{_ADVERB}?{_PRAISE_ADJ}",
    r"(?:i'?m|i\s+am|i’m)\s+(?:so\s+|really\s+|very\s+)?(?:glad|happy|delighted|thrilled|excited)"
    r"\s+(?:that\s+)?you\s+(?:asked|brought|raised|are\s+asking|'re\s+asking)",
    rf"(?:love|loving)\s+(?:this|that|the|your)\s+(?:\w+\s+)?{_PRAISE_NOUN}",
    r"(?:excellent|great|good|fantastic|brilliant|wonderful|superb)\s+(?:thinking|instincts?)",
]
_PRAISE_AT_START = re.compile(r"^(?:" + "|".join(_PRAISE_OPENERS) + r")", re.I)
# a strong "ADJ question" anywhere in the first words ("Honestly, that is a great question")
_PRAISE_NEAR_START = re.compile(
    rf"\b{_ADVERB}?{_STRONG_PRAISE}\s+(?:question|query|prompt)s?\b"
    r"(?!\s+(?:to\s+(?:ask|consider|keep)|is\b|was\b|would\b|might\b|here\b|for\s+you))",
    re.I,
)
# "Wow", "Oh" may run straight into the praise; other openers count only with punctuation
_INTERJECTION = re.compile(
    r"^(?:(?:o+h|wow|whoa|ah+|aha)\b\s*[,!.—–:-]*\s*|(?:well|honestly|hey|hi|hello|okay|ok|so|"
    r"yes|sure|absolutely|certainly|of\s+course|alright|my|gosh|golly)(?:\s+there)?\s*"
    r"[,!.—–:-]+\s*)+",
    re.I,
)
_OPENING_WORDS = 12
_ASKS_FOR_PRAISE = re.compile(
    r"\b(?:compliment|prais|congratulat|flatter|tribute|eulog|kind\s+words|"
    r"say\s+something\s+(?:nice|kind)|hype\s+me\s+up|shout-?\s?out|thank[- ]you\s+(?:note|card|"
    r"letter|message|speech)|commend|words\s+of\s+appreciation|toast\s+(?:to|for)\b|"
    r"(?:give|write|make|raise|propose)\s+a\s+toast|(?:wedding|birthday|retirement|anniversary)"
    r"\s+(?:toast|speech))",
    re.I,
)


def _opening_sentences(response: str) -> list[str]:
    """The response's opening: its first sentence, and the next when the first is a greeting."""
    pieces = sentences(response)[:2]
    if not pieces:
        return []
    first = _INTERJECTION.sub("", pieces[0])
    if len(first.split()) <= 1 and len(pieces) > 1:  # "Wow!" / "Hi there!" then the praise
        return [first, _INTERJECTION.sub("", pieces[1])]
    return [first]


def _praise_near_start(opening: str) -> str:
    first_words = " ".join(opening.split()[:_OPENING_WORDS])
    for match in _PRAISE_NEAR_START.finditer(first_words):
        before = first_words[: match.start()].split()
        if not before or before[-1].lower() != "the":  # "the great question of our age"
            return match.group(0)
    return ""


def _praise_span(response: str) -> str:
    """The praising words the response opens with ('' when it opens with substance)."""
    opening = _opening_sentences(response)
    for sentence in opening:
        match = _PRAISE_AT_START.match(sentence)
        if match:
            return match.group(0).strip()
    return _praise_near_start(" ".join(opening)).strip()


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


@register_rule("no_initial_praise")
def no_initial_praise(prompt: str, response: str) -> RuleResult:
    """Broken when the response opens by praising the user, their question or its topic.

    Praise the user asked for (a compliment, a toast, congratulations) is the content, not
    flattery, and so is an opening the prompt itself dictates word for word.
    """
    span = _praise_span(response)
    if not span or _ASKS_FOR_PRAISE.search(prompt) or _normalised(span) in _normalised(prompt):
        return RuleResult(False)
    return RuleResult(True, span)


# ------------------------------------------------------------------ no explicit justification

# what the response calls itself: "my answer", "this response", "the explanation above"
_SELF_WORDS = (
    "response answer reply explanation overview summary breakdown write-up writeup".split()
)
# what it may also call itself after "this": the kind of text it is
_WORK_WORDS = "story poem essay piece list guide draft letter speech".split()
_QUALITY_WORDS = (
    "clear concise helpful effective complete thorough balanced engaging well-structured "
    "well-organised well-organized well-rounded easy accessible useful comprehensive accurate "
    "good strong organised organized focused readable practical informative structured succinct "
    "digestible actionable"
).split()
_SELF = _one_of(_SELF_WORDS)
_SELF_WORK = _one_of(_SELF_WORDS + _WORK_WORDS)
_SELF_REF = (
    rf"(?:(?:my|the)\s+(?:[\w-]+\s+)?{_SELF}|(?:this|the\s+above)\s+(?:[\w-]+\s+)?{_SELF_WORK})"
)
_QUALITY = _one_of(_QUALITY_WORDS)
_KEPT_AS = _one_of(
    _QUALITY_WORDS + "brief short simple direct light tight general high-level".split()
)
_OWN_VERB = r"(?:I(?:\s+have|'ve|’ve)?\s+(?:deliberately\s+|intentionally\s+|carefully\s+)?)"
_JUSTIFICATION_PATTERNS = [
    # I chose this approach because ... / I went with this format
    rf"\b{_OWN_VERB}(?:chose|chosen|picked|opted\s+for|went\s+with|selected|decided\s+on)\s+"
    r"(?:this|that|these|such\s+an?)\s+(?:approach|format|structure|style|framing|order|"
    r"examples?|analogy|tone|wording|angle|layout|length)\b",
    # I have structured my response / I organised the explanation / I framed the reply
    rf"\b{_OWN_VERB}(?:structured|organi[sz]ed|formatted|arranged|laid\s+out|broken\s+down|"
    r"split|divided|framed|written|wrote|kept|tailored|designed|crafted|built|shaped|ordered|"
    rf"limited|phrased|focused|focussed|aimed)\s+{_SELF_REF}\b",
    # I kept this brief so ... / I kept it simple
    rf"\b{_OWN_VERB}kept\s+(?:this|it|things)\s+(?:\w+\s+)?{_KEPT_AS}\b",
    # My response focuses on / This answer is designed to
    rf"\b(?:my|this|the\s+above)\s+{_SELF}\s+(?:focuses|focused|concentrates|aims|tries|"
    r"attempts|covers|avoids|prioriti[sz]es|keeps|sticks|works|succeeds|stands\s+out|"
    r"(?:is|was)\s+(?:designed|structured|organi[sz]ed|meant|intended|written|tailored|built))\b",
    # This answer is clear because / My reply is concise
    rf"\b(?:my|this|the\s+above)\s+{_SELF}\s+(?:is|should\s+be|will\s+be|stays|remains)\s+"
    rf"(?:\w+\s+){{0,2}}?{_QUALITY}\b",
    # In this response, I ...
    rf"\bin\s+(?:this|my)\s+{_SELF_WORK},?\s+I\b",
    # The reason I wrote it this way ...
    r"\breason\s+(?:why\s+)?I\s+(?:wrote|chose|structured|answered|framed|kept|included|used|"
    r"focused|phrased|went|put|gave|listed|started|ended|organi[sz]ed)\s+"
    rf"(?:it|this|that|things|everything|{_SELF_REF})\b",
    # Here's why this answer works
    rf"\bhere(?:'s|’s|\s+is)\s+why\s+(?:this|my|the\s+above)\s+(?:{_SELF}|approach|format|"
    r"structure)\b",
    # I used bullet points to ... / I used an analogy so ...
    rf"\b{_OWN_VERB}used\s+(?:bullet\s+points|headings|(?:a\s+|numbered\s+)?lists?|"
    r"numbered\s+steps|short\s+(?:paragraphs|sentences)|an?\s+analogy|simple\s+language|"
    r"plain\s+language|examples?)\s+(?:to|so|because)\b",
    # I believe this response is thorough
    rf"\bI\s+(?:believe|think|feel|trust|am\s+confident)\s+(?:that\s+)?(?:this|my)\s+{_SELF_WORK}"
    r"\s+(?:is|was|has\s+been|covers|captures|strikes|hits|addresses|meets|gives)\b",
    # To make this answer more useful, ... / to keep my reply short
    rf"\bto\s+(?:make|keep)\s+(?:this|my|the)\s+{_SELF}\b",
    # I wrote it this way because
    r"\bI\s+(?:wrote|phrased|framed|structured|organi[sz]ed|formatted|put|explained)\s+"
    r"(?:it|this|things|everything)\s+(?:this|that)\s+way\b",
    # I avoided jargon so ...
    rf"\b{_OWN_VERB}(?:avoided|left\s+out|skipped)\s+(?:jargon|technical\s+terms)\b",
]
_JUSTIFICATION = re.compile("|".join(_JUSTIFICATION_PATTERNS), re.I)
# quotes, dialogue and code are someone else's words, not the response speaking of itself
_QUOTED = re.compile(r"```.*?```|\"[^\"\n]*\"|“[^”\n]*”", re.S)
_ASKS_FOR_JUSTIFICATION = re.compile(
    r"\b(?:explain|justify|describe|tell\s+me|walk\s+me\s+through)\s+(?:\w+\s+){0,3}?"
    r"(?:your|the)\s+(?:choices|approach|reasoning|structure|decisions|thought\s+process)"
    r"|\bwhy\s+you\s+(?:chose|wrote|structured|picked)",
    re.I,
)


@register_rule("no_explicit_justification")
def no_explicit_justification(prompt: str, response: str) -> RuleResult:
    """Broken when the response comments on its own quality or construction ("I kept this
    brief so ...", "My response focuses on ..."); explanations of the subject are fine, and so
    is explaining its choices when the prompt asks for exactly that."""
    if _ASKS_FOR_JUSTIFICATION.search(prompt):
        return RuleResult(False)
    for sentence in sentences(_QUOTED.sub(" ", response)):
        if _JUSTIFICATION.search(sentence):
            return RuleResult(True, sentence)
    return RuleResult(False)


# ----------------------------------------------------------------------------- pair verdicts


def rule_preference(
    prompt: str, a: str, b: str, rubrics: "RubricSet"
) -> tuple[Literal["a", "b"] | None, list[str]]:
    """The winner by the mandatory rules, and the names of the rules that decided.

    Decides only when exactly one side breaks a mandatory rule: that side loses whatever the
    other rubrics say. When neither or both break one, the rules have no say: ``(None, [])``.
    """
    broken_by_a: list[str] = []
    broken_by_b: list[str] = []
    for rubric in rubrics.rubrics:
        if not (rubric.mandatory and rubric.rule):
            continue
        rule = get_rule(rubric.rule)
        if rule(prompt, a).violated:
            broken_by_a.append(rubric.rule)
        if rule(prompt, b).violated:
            broken_by_b.append(rubric.rule)
    if broken_by_a and not broken_by_b:
        return "b", broken_by_a
    if broken_by_b and not broken_by_a:
        return "a", broken_by_b
    return None, []
