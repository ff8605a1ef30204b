"""Complex instruction following: AutoIF-style multi-constraint prompts checked in code.

What it does
------------
A task is a base writing prompt (one of :data:`TOPICS`) plus 2–4 compatible verifiable
constraints drawn from a registry of constraint types (``@register_constraint("min_words")``).
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
LLM-judge core ``judge.llm_judge``) must also accept them. Its offline program runs the same
heuristic, so offline judging is deterministic.

Every check is pure Python over precompiled patterns with the response parsed once
(:class:`Text`); verification never raises on model output.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Callable

from kimi_pipeline.gym.registry import Domain, Verification, register_domain
from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.llm_judge import Abstain
from kimi_pipeline.llm.base import ChatBackend, ChatRequest
from kimi_pipeline.llm.offline import offline_role
from kimi_pipeline.records import GymTask
from kimi_pipeline.registry import registrar

JUDGE_ROLE = "instruction_judge"
CONSTRAINTS_PER_LEVEL = {1: 2, 2: 3, 3: 4}

# ------------------------------------------------------------------------------ text helpers

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # unicode letters/digits: language-agnostic
_SENT_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+")
_LINE_BREAK = re.compile(r"\n\s*\n|\n(?=\s*(?:[*\-•]\s|\d+[.)]\s|SECTION\s+\d|<<))", re.I)
_PARAGRAPH = re.compile(r"\n\s*\n")
_ABBREV = ("mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "vs.", "prof.", "no.", "p.s.")
STOPWORDS = frozenset(
    "a an the and or but if then than so of to in on at by for with from into onto over under "
    "about as is are was were be been being am do does did done have has had having it its this "
    "that these those there here their they them he she his her him we our us you your i me my "
    "not no nor can could should would will shall may might must also very just more most such "
    "what which who whom whose when where why how all any each both few other some own same too "
    "only up down out off again further once while because until during before after above "
    "below between through against one two many much".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def split_sentences(text: str) -> list[str]:
    """Sentences (and list items / headings, which are units of their own), stripped."""
    units: list[str] = []
    for block in _LINE_BREAK.split(text):
        pieces = [p.strip() for p in _SENT_END.split(block.replace("\n", " ")) if p.strip()]
        units.extend(_merge_abbreviations(pieces))
    return units


def _merge_abbreviations(pieces: list[str]) -> list[str]:
    merged: list[str] = []
    for piece in pieces:
        if merged and merged[-1].rsplit(None, 1)[-1].lower() in _ABBREV:
            merged[-1] = f"{merged[-1]} {piece}"
        else:
            merged.append(piece)
    return merged


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude, fast suffix stripper: enough to match 'hives'/'hive', 'planting'/'plants'."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix) and not w.endswith("ss"):
            w = w[: -len(suffix)]
            break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


def content_stems(tokens: list[str]) -> list[str]:
    return [stem(t) for t in tokens if t.lower() not in STOPWORDS and not t.isdigit()]


class Text:
    """A response parsed once: every checker reads the same cached views."""

    def __init__(self, raw: str):
        self.raw = raw
        self.stripped = raw.strip()

    @cached_property
    def lower(self) -> str:
        return self.raw.lower()

    @cached_property
    def words(self) -> list[str]:
        return words(self.raw)

    @cached_property
    def lower_words(self) -> list[str]:
        return [w.lower() for w in self.words]

    @cached_property
    def word_forms(self) -> Counter:
        return Counter(self.lower_words)

    @cached_property
    def content_stems(self) -> list[str]:
        return content_stems(self.words)

    @cached_property
    def sentences(self) -> list[str]:
        return [s for s in split_sentences(self.raw) if _WORD.search(s)]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p for p in _PARAGRAPH.split(self.stripped) if p.strip()]


# ------------------------------------------------------------------------ constraint registry

Check = Callable[[Text, dict[str, Any]], tuple[bool, str]]


@dataclass(frozen=True)
class ConstraintType:
    """One verifiable constraint type: sampler, instruction text, checker, conflicts."""

    name: str
    sample: Callable[[random.Random, "Topic", int], dict[str, Any]]
    text: Callable[[dict[str, Any]], str]
    check: Check
    conflicts: frozenset[str]
    min_level: int = 1
    nuanced: bool = False  # judged by an LLM when a judge backend is configured


CONSTRAINTS: dict[str, ConstraintType] = {}


def register_constraint(name: str, *, conflicts: tuple[str, ...] = (), min_level: int = 1,
                        nuanced: bool = False):
    """Class decorator: the class's static ``sample``, ``text`` and ``check`` form the type."""

    def wrap(cls):
        CONSTRAINTS[name] = ConstraintType(
            name, cls.sample, cls.text, cls.check, frozenset(conflicts), min_level, nuanced
        )
        return cls

    return wrap


def compatible(a: str, b: str) -> bool:
    return a != b and b not in CONSTRAINTS[a].conflicts and a not in CONSTRAINTS[b].conflicts


def check_constraint(name: str, response: str, params: dict[str, Any]) -> tuple[bool, str]:
    """Check one constraint on a raw response (convenience for callers outside the domain)."""
    return _run_check(CONSTRAINTS[name], Text(response), params)


def _run_check(ctype: ConstraintType, text: Text, params: dict[str, Any]) -> tuple[bool, str]:
    try:
        ok, reason = ctype.check(text, params)
        return bool(ok), str(reason)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # malformed params
        return False, f"cannot check {ctype.name} with params {params!r}: {exc}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}"


def _level(values: tuple, difficulty: int):
    return values[min(max(difficulty, 1), len(values)) - 1]


@register_constraint("min_words", conflicts=("max_words",))
class MinWords:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((60, 100, 150), d) + rng.randrange(0, 50, 10)}

    @staticmethod
    def text(p):
        return f"Answer with at least {p['n']} words."

    @staticmethod
    def check(t, p):
        n = len(t.words)
        return n >= p["n"], f"{_count(n, 'words')}, need at least {p['n']}"


@register_constraint("max_words")
class MaxWords:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((220, 180, 140), d) + rng.randrange(0, 50, 10)}

    @staticmethod
    def text(p):
        return f"Answer with at most {p['n']} words."

    @staticmethod
    def check(t, p):
        n = len(t.words)
        return n <= p["n"], f"{_count(n, 'words')}, allowed at most {p['n']}"


@register_constraint("min_sentences", conflicts=("max_sentences", "json_format"))
class MinSentences:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((3, 5, 7), d) + rng.randrange(0, 2)}

    @staticmethod
    def text(p):
        return f"Write at least {p['n']} sentences."

    @staticmethod
    def check(t, p):
        n = len(t.sentences)
        return n >= p["n"], f"{_count(n, 'sentences')}, need at least {p['n']}"


@register_constraint("max_sentences", conflicts=("json_format", "sections", "bullet_list", "min_words"))
class MaxSentences:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((12, 10, 8), d) + rng.randrange(0, 2)}

    @staticmethod
    def text(p):
        return f"Use at most {p['n']} sentences."

    @staticmethod
    def check(t, p):
        n = len(t.sentences)
        return n <= p["n"], f"{_count(n, 'sentences')}, allowed at most {p['n']}"


@register_constraint("paragraphs", conflicts=("json_format", "bullet_list", "sections", "title", "postscript"))
class Paragraphs:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((2, 3, 4), d) + rng.randrange(0, 2)}

    @staticmethod
    def text(p):
        return f"Write exactly {p['n']} paragraphs, separated from each other by one blank line."

    @staticmethod
    def check(t, p):
        n = len(t.paragraphs)
        return n == p["n"], f"{_count(n, 'paragraphs')}, need exactly {p['n']}"


def _keyword_pattern(keyword: str) -> re.Pattern:
    return _compiled(rf"(?<![^\W_]){re.escape(keyword)}(?:s|es)?(?![^\W_])")


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


def keyword_count(text: Text, keyword: str) -> int:
    """Occurrences of ``keyword`` (plural forms included), by tokens when it is one word."""
    k = keyword.lower()
    if _WORD.fullmatch(k):
        forms = text.word_forms
        return forms.get(k, 0) + forms.get(k + "s", 0) + forms.get(k + "es", 0)
    return len(_keyword_pattern(keyword).findall(text.raw))


@register_constraint("include_keywords")
class IncludeKeywords:
    @staticmethod
    def sample(rng, topic, d):
        return {"keywords": rng.sample(topic.keywords, _level((1, 2, 3), d))}

    @staticmethod
    def text(p):
        return "Include the keywords " + ", ".join(f"'{k}'" for k in p["keywords"]) + "."

    @staticmethod
    def check(t, p):
        missing = [k for k in p["keywords"] if not keyword_count(t, k)]
        return not missing, f"missing keywords {missing}" if missing else "all keywords present"


FILLER_WORDS = ("very", "really", "basically", "thing", "stuff", "amazing", "literally",
                "actually", "just", "important", "interesting", "nice")


@register_constraint("exclude_keywords")
class ExcludeKeywords:
    @staticmethod
    def sample(rng, topic, d):
        return {"keywords": sorted(rng.sample(FILLER_WORDS, _level((1, 2, 3), d)))}

    @staticmethod
    def text(p):
        return "Do not use the words " + ", ".join(f"'{k}'" for k in p["keywords"]) + "."

    @staticmethod
    def check(t, p):
        used = [k for k in p["keywords"] if keyword_count(t, k)]
        return not used, f"used forbidden words {used}" if used else "no forbidden words"


@register_constraint("keyword_frequency")
class KeywordFrequency:
    @staticmethod
    def sample(rng, topic, d):
        return {"keyword": rng.choice(topic.keywords), "n": _level((2, 3, 4), d)}

    @staticmethod
    def text(p):
        return f"Use the word '{p['keyword']}' at least {p['n']} times."

    @staticmethod
    def check(t, p):
        n = keyword_count(t, p["keyword"])
        return n >= p["n"], f"'{p['keyword']}' appears {n} times, need at least {p['n']}"


@register_constraint("letter_frequency", min_level=2)
class LetterFrequency:
    @staticmethod
    def sample(rng, topic, d):
        return {"letter": rng.choice("bcdfgkmpwy"), "n": _level((5, 8, 12), d)}

    @staticmethod
    def text(p):
        return f"The letter '{p['letter']}' must appear at least {p['n']} times in your response."

    @staticmethod
    def check(t, p):
        n = t.lower.count(p["letter"].lower())
        return n >= p["n"], f"letter '{p['letter']}' appears {n} times, need at least {p['n']}"


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


def parse_json_response(raw: str) -> Any:
    body = raw.strip()
    fenced = _FENCE.match(body)
    return json.loads(fenced.group(1) if fenced else body)


@register_constraint(
    "json_format", min_level=2,
    conflicts=("bullet_list", "sections", "paragraphs", "title", "start_with", "end_with",
               "postscript", "quotation", "no_commas", "all_uppercase", "highlights",
               "simple_language", "max_sentence_words"),
)
class JsonFormat:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Wrap your entire response in a JSON object (you may use a ```json fence)."

    @staticmethod
    def check(t, p):
        try:
            value = parse_json_response(t.raw)
        except ValueError as exc:
            return False, f"not valid JSON: {exc}"
        return isinstance(value, dict), "a JSON object" if isinstance(value, dict) else "JSON but not an object"


_BULLET = re.compile(r"^\s*[*\-•]\s+\S", re.M)


@register_constraint("bullet_list", conflicts=("sections", "paragraphs"))
class BulletList:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((3, 4, 5), d) + rng.randrange(0, 2)}

    @staticmethod
    def text(p):
        return f"Your answer must contain exactly {p['n']} bullet points, each on its own line starting with '* '."

    @staticmethod
    def check(t, p):
        n = len(_BULLET.findall(t.raw))
        return n == p["n"], f"{_count(n, 'bullet points')}, need exactly {p['n']}"


_SECTION = re.compile(r"^\s*(?:#+\s*)?SECTION\s+(\d+)", re.M | re.I)


@register_constraint("sections", conflicts=("paragraphs", "max_capital_words", "no_digits"))
class Sections:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((2, 3, 4), d)}

    @staticmethod
    def text(p):
        return (f"Your response must have {p['n']} sections; start section X with a line "
                f"'SECTION X' (SECTION 1, SECTION 2, …).")

    @staticmethod
    def check(t, p):
        found = [int(x) for x in _SECTION.findall(t.raw)]
        want = list(range(1, p["n"] + 1))
        return found == want, f"section markers {found}, need {want}"


def _letters(t: Text) -> bool:
    return any(c.isalpha() for c in t.raw)


@register_constraint("all_lowercase", conflicts=("all_uppercase",))
class AllLowercase:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Your entire response must be in lowercase letters; no capital letters are allowed."

    @staticmethod
    def check(t, p):
        if t.raw == t.raw.lower():
            return _letters(t), "lowercase" if _letters(t) else "no letters"
        return False, f"{sum(c.isupper() for c in t.raw)} uppercase letters"


@register_constraint("all_uppercase", conflicts=("max_capital_words",))
class AllUppercase:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Your entire response must be in English, in capital letters only."

    @staticmethod
    def check(t, p):
        if t.raw == t.raw.upper():
            return _letters(t), "uppercase" if _letters(t) else "no letters"
        return False, f"{sum(c.islower() for c in t.raw)} lowercase letters"


@register_constraint("max_capital_words", min_level=2)
class MaxCapitalWords:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((4, 3, 2), d)}

    @staticmethod
    def text(p):
        return f"Use fewer than {p['n']} words written entirely in capital letters."

    @staticmethod
    def check(t, p):
        caps = [w for w in t.words if len(w) > 1 and w.isupper()]
        return len(caps) < p["n"], f"{len(caps)} all-capital words {caps[:5]}, allowed fewer than {p['n']}"


_TITLE = re.compile(r"<<[^<>\n]*[^\W_][^<>\n]*>>")


@register_constraint("title", conflicts=("start_with",))
class Title:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Give your answer a title wrapped in double angular brackets, such as <<my title>>."

    @staticmethod
    def check(t, p):
        found = bool(_TITLE.search(t.raw))
        return found, "has a <<title>>" if found else "no <<title>> found"


START_PHRASES = ("Here is my answer", "Let me explain", "In short", "To begin with", "Picture this")
END_PHRASES = ("Is there anything else I can help with?", "That is all for today.",
               "Thank you for reading.", "Let me know if you have additional questions.")


@register_constraint("start_with", conflicts=("quotation",))
class StartWith:
    @staticmethod
    def sample(rng, topic, d):
        return {"phrase": rng.choice(START_PHRASES)}

    @staticmethod
    def text(p):
        return f"Begin your response with the exact phrase '{p['phrase']}'."

    @staticmethod
    def check(t, p):
        ok = t.stripped.lower().startswith(p["phrase"].lower())
        return ok, f"starts with {t.stripped[:40]!r}, need {p['phrase']!r}"


@register_constraint("end_with", conflicts=("quotation", "postscript"))
class EndWith:
    @staticmethod
    def sample(rng, topic, d):
        return {"phrase": rng.choice(END_PHRASES)}

    @staticmethod
    def text(p):
        return f"Finish your response with the exact phrase '{p['phrase']}'. No other words should follow it."

    @staticmethod
    def check(t, p):
        ok = t.stripped.lower().endswith(p["phrase"].lower())
        return ok, f"ends with {t.stripped[-40:]!r}, need {p['phrase']!r}"


_PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,40}\]")


@register_constraint("placeholders")
class Placeholders:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((1, 2, 3), d)}

    @staticmethod
    def text(p):
        return f"Include at least {p['n']} placeholders in square brackets, such as [name]."

    @staticmethod
    def check(t, p):
        n = len(_PLACEHOLDER.findall(t.raw))
        return n >= p["n"], f"{_count(n, 'placeholders')}, need at least {p['n']}"


_QUOTES = (('"', '"'), ("“", "”"), ("«", "»"), ("„", "“"))


@register_constraint("quotation", conflicts=("sections", "bullet_list"))
class Quotation:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Wrap your entire response in double quotation marks."

    @staticmethod
    def check(t, p):
        s = t.stripped
        ok = len(s) > 2 and any(s.startswith(a) and s.endswith(b) for a, b in _QUOTES)
        return ok, "wrapped in quotes" if ok else "not wrapped in double quotation marks"


@register_constraint("no_commas")
class NoCommas:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Do not use any commas in your response."

    @staticmethod
    def check(t, p):
        n = sum(t.raw.count(c) for c in ",，、")
        return n == 0, f"{_count(n, 'commas')}"


_POSTSCRIPT = re.compile(r"^\s*p\.\s?(?:p\.\s?)?s\.", re.M | re.I)


@register_constraint("postscript")
class Postscript:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "At the end of your response, add a postscript on its own line starting with 'P.S.'."

    @staticmethod
    def check(t, p):
        found = bool(_POSTSCRIPT.search(t.raw))
        return found, "has a P.S." if found else "no line starting with P.S."


_HIGHLIGHT = re.compile(r"(?<![\w*])\*(?=[^\s*])[^\n*]+?(?<=[^\s*])\*(?![\w*])")


@register_constraint("highlights")
class Highlights:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((1, 2, 3), d)}

    @staticmethod
    def text(p):
        return f"Highlight at least {p['n']} parts of your answer with markdown, i.e. *highlighted part*."

    @staticmethod
    def check(t, p):
        n = len(_HIGHLIGHT.findall(t.raw))
        return n >= p["n"], f"{_count(n, 'highlighted parts')}, need at least {p['n']}"


@register_constraint("max_sentence_words", min_level=2, conflicts=("max_sentences",))
class MaxSentenceWords:
    @staticmethod
    def sample(rng, topic, d):
        return {"n": _level((30, 25, 20), d)}

    @staticmethod
    def text(p):
        return f"No sentence may be longer than {p['n']} words."

    @staticmethod
    def check(t, p):
        longest = max((len(words(s)) for s in t.sentences), default=0)
        return longest <= p["n"], f"longest sentence has {longest} words, allowed {p['n']}"


_DIGIT = re.compile(r"\d")


@register_constraint("no_digits", min_level=2)
class NoDigits:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Do not use any digits; write every number out in words."

    @staticmethod
    def check(t, p):
        n = len(_DIGIT.findall(t.raw))
        return n == 0, f"{_count(n, 'digits')}"


_CONTRACTION = re.compile(
    r"\b(?:\w+n['’]t|(?:it|that|there|here|what|he|she|let|who)['’]s|\w+['’](?:re|ve|ll|d|m))\b", re.I
)
SLANG = frozenset("gonna wanna kinda sorta awesome cool guys stuff lol okay ok yeah yep nope super".split())


def formal_tone_heuristic(t: Text) -> tuple[bool, str]:
    """Conservative: any contraction, slang word or exclamation mark fails."""
    found = _CONTRACTION.findall(t.raw)[:3] if ("'" in t.raw or "’" in t.raw) else []
    found += sorted(SLANG.intersection(t.word_forms))[:3]
    found += ["!"] if "!" in t.raw else []
    return not found, f"informal markers {found}" if found else "formal"


@register_constraint("formal_tone", min_level=2, nuanced=True, conflicts=("simple_language",))
class FormalTone:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Use a formal, professional tone throughout: no contractions, slang or exclamation marks."

    @staticmethod
    def check(t, p):
        return formal_tone_heuristic(t)


def simple_language_heuristic(t: Text) -> tuple[bool, str]:
    """Conservative: average sentence ≤ 16 words and ≤ 5 % of words with 13+ letters."""
    if not t.sentences:
        return False, "no sentences"
    avg = len(t.words) / len(t.sentences)
    long_share = sum(len(w) >= 13 for w in t.words) / max(len(t.words), 1)
    ok = avg <= 16 and long_share <= 0.05
    return ok, f"{avg:.1f} words per sentence, {long_share:.0%} very long words"


@register_constraint("simple_language", min_level=2, nuanced=True)
class SimpleLanguage:
    @staticmethod
    def sample(rng, topic, d):
        return {}

    @staticmethod
    def text(p):
        return "Write so that a ten-year-old can follow: short sentences and everyday words."

    @staticmethod
    def check(t, p):
        return simple_language_heuristic(t)


# --------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class Topic:
    prompt: str
    keywords: list[str]


def _topic(prompt: str, keywords: str) -> Topic:
    return Topic(prompt, keywords.split())


TOPICS: tuple[Topic, ...] = (
    _topic("Write a short essay about urban beekeeping.", "bees honey hive city pollination rooftop colony flowers"),
    _topic("Explain how a bicycle gear system works.", "gear chain pedal wheel bicycle cog ratio rider"),
    _topic("Describe a day in the life of a lighthouse keeper.", "lighthouse lamp sea keeper storm ships coast night"),
    _topic("Write a product description for a reusable water bottle.", "bottle water steel plastic drink reusable lid travel"),
    _topic("Give advice to someone starting to learn the piano.", "piano practice keys scales music teacher fingers songs"),
    _topic("Explain why the sky looks blue.", "sky light blue sunlight scattering air atmosphere colour"),
    _topic("Write a letter to a neighbour about a shared garden.", "garden neighbour plants vegetables soil fence water seeds"),
    _topic("Describe how bread is baked at home.", "bread dough flour yeast oven knead loaf crust"),
    _topic("Summarise the benefits of walking every day.", "walking health heart steps exercise legs mood daily"),
    _topic("Write a short story about a lost cat finding its way home.", "cat home street night neighbours whiskers journey owner"),
    _topic("Explain how vaccines train the immune system.", "vaccine immune body virus antibodies cells disease protection"),
    _topic("Describe the water cycle for a school newsletter.", "water rain clouds evaporation rivers ocean cycle vapour"),
    _topic("Write a review of a small neighbourhood library.", "library books reading shelves librarian quiet children community"),
    _topic("Explain how to plan a budget for a student.", "budget money rent food savings student expenses income"),
    _topic("Describe the life of a honeybee queen.", "queen bees hive eggs workers colony larvae royal"),
    _topic("Give tips for taking better photographs with a phone.", "photo light camera phone focus angle composition lens"),
    _topic("Write a speech welcoming new members to a chess club.", "chess club members game board pieces tournament strategy"),
    _topic("Explain how a refrigerator keeps food cold.", "refrigerator cold heat food compressor coolant temperature kitchen"),
    _topic("Describe a visit to a mountain village market.", "market village mountain cheese stalls farmers bread prices"),
    _topic("Explain why sleep matters for memory.", "sleep memory brain night rest dreams learning hours"),
    _topic("Write a guide to caring for a houseplant.", "plant water light soil leaves pot roots sunlight"),
    _topic("Describe how a train timetable is planned.", "train timetable station passengers schedule routes platform minutes"),
    _topic("Write a short history of the paper map.", "map paper roads travellers compass cartographer scale routes"),
    _topic("Explain how recycling plastic works.", "plastic recycling bottles factory sorting waste material bins"),
    _topic("Describe the first day at a new job.", "job office colleagues manager desk training lunch tasks"),
    _topic("Write an introduction to stargazing for beginners.", "stars telescope night sky planets moon constellations dark"),
    _topic("Explain how a volcano erupts.", "volcano magma lava eruption pressure gas ash mountain"),
    _topic("Give advice for running a first marathon.", "marathon running race training miles shoes pace water"),
    _topic("Describe how a community radio station works.", "radio station listeners music volunteers broadcast news studio"),
    _topic("Write a short essay about the value of public parks.", "park trees city people benches playground grass families"),
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
    """A compliance claim is fine only when true: counts within 5 %, 'all followed' with no failure."""
    lower = ctx.text.lower
    claims = _COUNT_CLAIM.finditer(ctx.text.raw) if any(u in lower for u in _COUNT_UNITS) else ()
    for m in claims:
        number, unit = next((int(n), u.lower()) for n, u in ((m[2], m[1]), (m[3], m[4]), (m[5], m[6])) if n)
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
        repeated = 1 - len(set(zip(tokens, tokens[1:], tokens[2:], tokens[3:], tokens[4:], tokens[5:]))) / total
        if repeated > 0.15:
            return False, f"{repeated:.0%} of word 6-grams are repeats"
    run = next((w for w, b, c in zip(tokens, tokens[1:], tokens[2:]) if w == b == c and w.isalpha()), None)
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


@offline_role(JUDGE_ROLE)
def offline_instruction_judge(request: ChatRequest) -> dict[str, Any]:
    """Offline judge: the conservative code heuristics of the nuanced constraints."""
    text = Text(str(request.context.get("response", "")))
    verdicts = []
    for c in request.context.get("constraints", []):
        ctype = CONSTRAINTS.get(c.get("name", ""))
        ok, reason = _run_check(ctype, text, c.get("params", {})) if ctype else (False, "unknown constraint")
        verdicts.append({"constraint": c.get("name", ""), "ok": ok, "reason": reason})
    return {"verdicts": verdicts}


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


def make_task(topic: Topic, constraints: list[dict[str, Any]], difficulty: int, task_id: str) -> GymTask:
    """The task for ``topic`` under ``constraints`` (name + params); prompt lists the instructions."""
    lines = [f"{i}. {CONSTRAINTS[c['name']].text(c['params'])}" for i, c in enumerate(constraints, 1)]
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
    description = "Writing prompts with 2–4 verifiable constraints, checked in code plus a hack-check layer."
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
        constraints = [{"name": n, "params": CONSTRAINTS[n].sample(rng, topic, difficulty)} for n in names]
        return make_task(topic, constraints, difficulty, f"{self.name}-{difficulty}-{rng.getrandbits(48):012x}")

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
        results = {c["name"]: _run_check(CONSTRAINTS[c["name"]], text, c.get("params", {})) for c in constraints}
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

    def _hack_checks(self, task: GymTask, text: Text, constraints, failed) -> dict[str, tuple[bool, str]]:
        topic_words = " ".join([str(task.metadata.get("topic", "")), *map(str, task.metadata.get("topic_keywords", []))])
        topic, prompt_stems, grams = _prompt_views(task.prompt, topic_words)
        ctx = HackContext(text, constraints, topic, prompt_stems, grams, failed)
        return {name: check(ctx) for name, check in HACK_CHECKS.items()}

    def _apply_judge(self, response: str, constraints, results: dict[str, tuple[bool, str]]) -> None:
        """Nuanced constraints that passed their heuristic must also pass the LLM judge."""
        names = [c["name"] for c in constraints if CONSTRAINTS[c["name"]].nuanced and results[c["name"]][0]]
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
