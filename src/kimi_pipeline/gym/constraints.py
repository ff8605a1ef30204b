"""The verifiable writing constraints of instruction following, as one declarative table.

Each row of :data:`CONSTRAINT_TABLE` is one constraint type (AutoIF-style, K2 report §3.2):
its name, the level it appears from, how its parameters are drawn (seeded), the instruction
text the policy reads (a template over those parameters) and its checker. The checkers are a
handful of generic ones parameterised by the row — :class:`Count` (a measured count against a
bound), :class:`Keywords`, :class:`Found`, :class:`Affix`, :class:`OneCase` — plus a few plain
functions for the odd ones (JSON, sections, quotation marks, tone). Adding a constraint is one
row; the domain (``gym.instructions``) reads only the table.

A checker takes the response parsed once (:class:`~kimi_pipeline.gym.prose.Text`) and the
row's parameters and returns ``(ok, reason)``; :func:`run_check` turns malformed parameters (a
task read from disk) into a failed check with its reason instead of an exception.
"""

from __future__ import annotations

import json
import operator
import random
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kimi_pipeline.gym.prose import WORD, Text, words

Check = Callable[[Text, dict[str, Any]], tuple[bool, str]]
Sampler = Callable[[random.Random, Sequence[str], int], Any]


# ------------------------------------------------------------------------ parameter samplers


def _level(values: tuple, difficulty: int):
    return values[min(max(difficulty, 1), len(values)) - 1]


@dataclass(frozen=True)
class Level:
    """A number set by the level (``values`` at levels 1, 2, 3), plus ``randrange(*jitter)``."""

    values: tuple[int, ...]
    jitter: tuple[int, ...] = ()

    def __call__(self, rng: random.Random, keywords: Sequence[str], difficulty: int) -> int:
        base = _level(self.values, difficulty)
        return base + rng.randrange(*self.jitter) if self.jitter else base


@dataclass(frozen=True)
class OneOf:
    """One item of ``pool`` (None: of the topic's keywords)."""

    pool: Sequence[str] | None = None

    def __call__(self, rng: random.Random, keywords: Sequence[str], difficulty: int) -> str:
        return rng.choice(keywords if self.pool is None else self.pool)


@dataclass(frozen=True)
class SomeOf:
    """``counts[level]`` distinct items of ``pool`` (None: of the topic's keywords)."""

    counts: tuple[int, ...]
    pool: Sequence[str] | None = None
    sort: bool = False

    def __call__(self, rng: random.Random, keywords: Sequence[str], difficulty: int) -> list:
        picked = rng.sample(keywords if self.pool is None else self.pool,
                            _level(self.counts, difficulty))
        return sorted(picked) if self.sort else picked


# ----------------------------------------------------------------------------- the row type


@dataclass(frozen=True)
class ConstraintType:
    """One verifiable constraint type: parameters, instruction text, checker, conflicts."""

    name: str
    template: str  # the instruction, formatting the parameters ({keywords:quoted}: 'a', 'b')
    check: Check
    params: Mapping[str, Sampler] = field(default_factory=dict)  # drawn in this order
    conflicts: frozenset[str] = frozenset()  # types never combined with this one
    min_level: int = 1  # the first difficulty level using it
    nuanced: bool = False  # judged by an LLM when a judge backend is configured

    def sample(self, rng: random.Random, keywords: Sequence[str],
               difficulty: int) -> dict[str, Any]:
        """Seeded parameters for a task on a topic with ``keywords``."""
        return {name: spec(rng, keywords, difficulty) for name, spec in self.params.items()}

    def text(self, params: dict[str, Any]) -> str:
        """The instruction the policy reads for ``params``."""
        return _TEMPLATE.vformat(self.template, (), params)


class _Quoting(string.Formatter):
    """``str.format`` plus the ``quoted`` spec: a list as ``'a', 'b'``."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if format_spec == "quoted":
            return ", ".join(f"'{x}'" for x in value)
        return super().format_field(value, format_spec)


_TEMPLATE = _Quoting()


def _row(name: str, template: str, check: Check, params: Mapping[str, Sampler] | None = None,
         conflicts: tuple[str, ...] = (), min_level: int = 1,
         nuanced: bool = False) -> ConstraintType:
    return ConstraintType(name, template, check, params or {}, frozenset(conflicts), min_level,
                          nuanced)


# --------------------------------------------------------------------------- generic checkers


class _Fields(dict):
    """Format fields: the checker's own, then the row's parameters (looked up when used)."""

    def __init__(self, params: Any, **own: Any):
        super().__init__(own)
        self.params = params

    def __missing__(self, key: str) -> Any:
        return self.params[key]


_BOUNDS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "at_least": (operator.ge, ", need at least {n}"),
    "at_most": (operator.le, ", allowed at most {n}"),
    "exactly": (operator.eq, ", need exactly {n}"),
    "fewer_than": (operator.lt, ", allowed fewer than {n}"),
    "up_to": (operator.le, ", allowed {n}"),
}


@dataclass(frozen=True)
class Count:
    """A measured count against the ``n`` parameter (bound ``none``: must be 0).

    ``measure`` is a :class:`Text` view's name (its length counts), a pattern (its matches in
    the response count) or a function of the text and parameters returning a count or a list
    of what it found. ``says`` words the count: ``{got}``, ``{examples}`` (the first 5 found)
    and the parameters are its fields.
    """

    measure: str | re.Pattern | Callable[[Text, dict[str, Any]], Any]
    bound: str
    says: str

    def _measured(self, t: Text, p: dict[str, Any]) -> Any:
        if isinstance(self.measure, str):
            return getattr(t, self.measure)
        if isinstance(self.measure, re.Pattern):
            return self.measure.findall(t.raw)
        return self.measure(t, p)

    def __call__(self, t: Text, p: dict[str, Any]) -> tuple[bool, str]:
        found = self._measured(t, p)
        got = len(found) if isinstance(found, list) else found
        if self.bound == "none":
            ok, phrase = got == 0, ""
        else:
            compare, phrase = _BOUNDS[self.bound]
            ok = compare(got, p["n"])
        examples = found[:5] if isinstance(found, list) else []
        return ok, (self.says + phrase).format_map(_Fields(p, got=got, examples=examples))


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.I)


def _keyword_pattern(keyword: str) -> re.Pattern:
    return _compiled(rf"(?<![^\W_]){re.escape(keyword)}(?:s|es)?(?![^\W_])")


def keyword_count(text: Text, keyword: str) -> int:
    """Occurrences of ``keyword`` (plural forms included), by tokens when it is one word."""
    k = keyword.lower()
    if WORD.fullmatch(k):
        forms = text.word_forms
        return forms.get(k, 0) + forms.get(k + "s", 0) + forms.get(k + "es", 0)
    return len(_keyword_pattern(keyword).findall(text.raw))


@dataclass(frozen=True)
class Keywords:
    """Every keyword of the ``keywords`` parameter present (``wanted``) or absent."""

    wanted: bool
    bad: str  # formats the offending keywords
    good: str

    def __call__(self, t: Text, p: dict[str, Any]) -> tuple[bool, str]:
        offending = [k for k in p["keywords"] if bool(keyword_count(t, k)) != self.wanted]
        return not offending, self.bad.format(offending) if offending else self.good


@dataclass(frozen=True)
class Found:
    """A pattern occurs in the response."""

    pattern: re.Pattern
    yes: str
    no: str

    def __call__(self, t: Text, p: dict[str, Any]) -> tuple[bool, str]:
        found = bool(self.pattern.search(t.raw))
        return found, self.yes if found else self.no


@dataclass(frozen=True)
class Affix:
    """The response starts (``start``) or ends with the ``phrase`` parameter, any case."""

    start: bool

    def __call__(self, t: Text, p: dict[str, Any]) -> tuple[bool, str]:
        s, phrase = t.stripped.lower(), p["phrase"].lower()
        if self.start:
            return s.startswith(phrase), f"starts with {t.stripped[:40]!r}, need {p['phrase']!r}"
        return s.endswith(phrase), f"ends with {t.stripped[-40:]!r}, need {p['phrase']!r}"


@dataclass(frozen=True)
class OneCase:
    """Every letter in one case (``lower`` or ``upper``), and at least one letter."""

    case: str

    def __call__(self, t: Text, p: dict[str, Any]) -> tuple[bool, str]:
        other = "upper" if self.case == "lower" else "lower"
        if t.raw == getattr(t.raw, self.case)():
            letters = any(c.isalpha() for c in t.raw)
            return letters, f"{self.case}case" if letters else "no letters"
        wrong = sum(getattr(c, f"is{other}")() for c in t.raw)
        return False, f"{wrong} {other}case letters"


# ---------------------------------------------------------------------------- odd checkers

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S | re.I)


def parse_json_response(raw: str) -> Any:
    body = raw.strip()
    fenced = _FENCE.match(body)
    return json.loads(fenced.group(1) if fenced else body)


def _json_object(t: Text, p: dict[str, Any]) -> tuple[bool, str]:
    try:
        value = parse_json_response(t.raw)
    except ValueError as exc:
        return False, f"not valid JSON: {exc}"
    is_object = isinstance(value, dict)
    return is_object, "a JSON object" if is_object else "JSON but not an object"


_SECTION = re.compile(r"^\s*(?:#+\s*)?SECTION\s+(\d+)", re.M | re.I)


def _sections(t: Text, p: dict[str, Any]) -> tuple[bool, str]:
    found = [int(x) for x in _SECTION.findall(t.raw)]
    want = list(range(1, p["n"] + 1))
    return found == want, f"section markers {found}, need {want}"


_QUOTES = (('"', '"'), ("“", "”"), ("«", "»"), ("„", "“"))


def _quoted(t: Text, p: dict[str, Any]) -> tuple[bool, str]:
    s = t.stripped
    ok = len(s) > 2 and any(s.startswith(a) and s.endswith(b) for a, b in _QUOTES)
    return ok, "wrapped in quotes" if ok else "not wrapped in double quotation marks"


_CONTRACTION = re.compile(
    r"\b(?:\w+n['’]t|(?:it|that|there|here|what|he|she|let|who)['’]s|\w+['’](?:re|ve|ll|d|m))\b",
    re.I,
)
SLANG = frozenset("gonna wanna kinda sorta awesome cool guys stuff lol okay ok yeah yep nope super"
                  .split())


def formal_tone_heuristic(t: Text, p: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Conservative: any contraction, slang word or exclamation mark fails."""
    found = _CONTRACTION.findall(t.raw)[:3] if ("'" in t.raw or "’" in t.raw) else []
    found += sorted(SLANG.intersection(t.word_forms))[:3]
    found += ["!"] if "!" in t.raw else []
    return not found, f"informal markers {found}" if found else "formal"


def simple_language_heuristic(t: Text, p: dict[str, Any] | None = None) -> tuple[bool, str]:
    """Conservative: average sentence ≤ 16 words and ≤ 5 % of words with 13+ letters."""
    if not t.sentences:
        return False, "no sentences"
    avg = len(t.words) / len(t.sentences)
    long_share = sum(len(w) >= 13 for w in t.words) / max(len(t.words), 1)
    ok = avg <= 16 and long_share <= 0.05
    return ok, f"{avg:.1f} words per sentence, {long_share:.0%} very long words"


def _keyword_uses(t: Text, p: dict[str, Any]) -> int:
    return keyword_count(t, p["keyword"])


def _letter_uses(t: Text, p: dict[str, Any]) -> int:
    return t.lower.count(p["letter"].lower())


def _capital_words(t: Text, p: dict[str, Any]) -> list[str]:
    return [w for w in t.words if len(w) > 1 and w.isupper()]


def _longest_sentence(t: Text, p: dict[str, Any]) -> int:
    return max((len(words(s)) for s in t.sentences), default=0)


# ----------------------------------------------------------------------------------- the table

FILLER_WORDS = ("very", "really", "basically", "thing", "stuff", "amazing", "literally",
                "actually", "just", "important", "interesting", "nice")
START_PHRASES = ("Here is my answer", "Let me explain", "In short", "To begin with", "Picture this")
END_PHRASES = ("Is there anything else I can help with?", "That is all for today.",
               "Thank you for reading.", "Let me know if you have additional questions.")
_BULLET = re.compile(r"^\s*[*\-•]\s+\S", re.M)
_TITLE = re.compile(r"<<[^<>\n]*[^\W_][^<>\n]*>>")
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]{1,40}\]")
_COMMA = re.compile("[,，、]")
_POSTSCRIPT = re.compile(r"^\s*p\.\s?(?:p\.\s?)?s\.", re.M | re.I)
_HIGHLIGHT = re.compile(r"(?<![\w*])\*(?=[^\s*])[^\n*]+?(?<=[^\s*])\*(?![\w*])")
_DIGIT = re.compile(r"\d")
_NOT_JSON = ("bullet_list", "sections", "paragraphs", "title", "start_with", "end_with",
             "postscript", "quotation", "no_commas", "all_uppercase", "highlights",
             "simple_language", "max_sentence_words")

CONSTRAINT_TABLE: tuple[ConstraintType, ...] = (
    _row("min_words", "Answer with at least {n} words.",
         Count("words", "at_least", "{got} words"),
         {"n": Level((60, 100, 150), (0, 50, 10))}, ("max_words",)),
    _row("max_words", "Answer with at most {n} words.",
         Count("words", "at_most", "{got} words"), {"n": Level((220, 180, 140), (0, 50, 10))}),
    _row("min_sentences", "Write at least {n} sentences.",
         Count("sentences", "at_least", "{got} sentences"), {"n": Level((3, 5, 7), (0, 2))},
         ("max_sentences", "json_format")),
    _row("max_sentences", "Use at most {n} sentences.",
         Count("sentences", "at_most", "{got} sentences"), {"n": Level((12, 10, 8), (0, 2))},
         ("json_format", "sections", "bullet_list", "min_words")),
    _row("paragraphs", "Write exactly {n} paragraphs, separated from each other by one blank line.",
         Count("paragraphs", "exactly", "{got} paragraphs"), {"n": Level((2, 3, 4), (0, 2))},
         ("json_format", "bullet_list", "sections", "title", "postscript")),
    _row("include_keywords", "Include the keywords {keywords:quoted}.",
         Keywords(True, "missing keywords {}", "all keywords present"),
         {"keywords": SomeOf((1, 2, 3))}),
    _row("exclude_keywords", "Do not use the words {keywords:quoted}.",
         Keywords(False, "used forbidden words {}", "no forbidden words"),
         {"keywords": SomeOf((1, 2, 3), FILLER_WORDS, sort=True)}),
    _row("keyword_frequency", "Use the word '{keyword}' at least {n} times.",
         Count(_keyword_uses, "at_least", "'{keyword}' appears {got} times"),
         {"keyword": OneOf(), "n": Level((2, 3, 4))}),
    _row("letter_frequency",
         "The letter '{letter}' must appear at least {n} times in your response.",
         Count(_letter_uses, "at_least", "letter '{letter}' appears {got} times"),
         {"letter": OneOf("bcdfgkmpwy"), "n": Level((5, 8, 12))}, min_level=2),
    _row("json_format", "Wrap your entire response in a JSON object (you may use a ```json fence).",
         _json_object, conflicts=_NOT_JSON, min_level=2),
    _row("bullet_list", "Your answer must contain exactly {n} bullet points, each on its own line "
         "starting with '* '.", Count(_BULLET, "exactly", "{got} bullet points"),
         {"n": Level((3, 4, 5), (0, 2))}, ("sections", "paragraphs")),
    _row("sections", "Your response must have {n} sections; start section X with a line "
         "'SECTION X' (SECTION 1, SECTION 2, …).", _sections, {"n": Level((2, 3, 4))},
         ("paragraphs", "max_capital_words", "no_digits")),
    _row("all_lowercase",
         "Your entire response must be in lowercase letters; no capital letters are allowed.",
         OneCase("lower"), conflicts=("all_uppercase",)),
    _row("all_uppercase", "Your entire response must be in English, in capital letters only.",
         OneCase("upper"), conflicts=("max_capital_words",)),
    _row("max_capital_words", "Use fewer than {n} words written entirely in capital letters.",
         Count(_capital_words, "fewer_than", "{got} all-capital words {examples}"),
         {"n": Level((4, 3, 2))}, min_level=2),
    _row("title",
         "Give your answer a title wrapped in double angular brackets, such as <<my title>>.",
         Found(_TITLE, "has a <<title>>", "no <<title>> found"), conflicts=("start_with",)),
    _row("start_with", "Begin your response with the exact phrase '{phrase}'.", Affix(start=True),
         {"phrase": OneOf(START_PHRASES)}, ("quotation",)),
    _row("end_with", "Finish your response with the exact phrase '{phrase}'. No other words should "
         "follow it.", Affix(start=False), {"phrase": OneOf(END_PHRASES)},
         ("quotation", "postscript")),
    _row("placeholders", "Include at least {n} placeholders in square brackets, such as [name].",
         Count(_PLACEHOLDER, "at_least", "{got} placeholders"), {"n": Level((1, 2, 3))}),
    _row("quotation", "Wrap your entire response in double quotation marks.", _quoted,
         conflicts=("sections", "bullet_list")),
    _row("no_commas", "Do not use any commas in your response.",
         Count(_COMMA, "none", "{got} commas")),
    _row("postscript",
         "At the end of your response, add a postscript on its own line starting with 'P.S.'.",
         Found(_POSTSCRIPT, "has a P.S.", "no line starting with P.S.")),
    _row("highlights",
         "Highlight at least {n} parts of your answer with markdown, i.e. *highlighted part*.",
         Count(_HIGHLIGHT, "at_least", "{got} highlighted parts"), {"n": Level((1, 2, 3))}),
    _row("max_sentence_words", "No sentence may be longer than {n} words.",
         Count(_longest_sentence, "up_to", "longest sentence has {got} words"),
         {"n": Level((30, 25, 20))}, ("max_sentences",), min_level=2),
    _row("no_digits", "Do not use any digits; write every number out in words.",
         Count(_DIGIT, "none", "{got} digits"), min_level=2),
    _row("formal_tone", "Use a formal, professional tone throughout: no contractions, slang or "
         "exclamation marks.", formal_tone_heuristic, conflicts=("simple_language",), min_level=2,
         nuanced=True),
    _row("simple_language",
         "Write so that a ten-year-old can follow: short sentences and everyday words.",
         simple_language_heuristic, min_level=2, nuanced=True),
)
CONSTRAINTS: dict[str, ConstraintType] = {c.name: c for c in CONSTRAINT_TABLE}


def compatible(a: str, b: str) -> bool:
    return a != b and b not in CONSTRAINTS[a].conflicts and a not in CONSTRAINTS[b].conflicts


def run_check(ctype: ConstraintType, text: Text, params: dict[str, Any]) -> tuple[bool, str]:
    """``ctype``'s verdict on ``text``; malformed parameters fail the check with a reason."""
    try:
        ok, reason = ctype.check(text, params)
        return bool(ok), str(reason)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # malformed params
        return False, f"cannot check {ctype.name} with params {params!r}: {exc}"


def check_constraint(name: str, response: str, params: dict[str, Any]) -> tuple[bool, str]:
    """Check one constraint on a raw response (convenience for callers outside the domain)."""
    return run_check(CONSTRAINTS[name], Text(response), params)
