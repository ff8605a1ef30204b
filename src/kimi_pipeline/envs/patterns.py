"""Strings that match a regular expression, sampled from the pattern's parse tree.

A JSON schema may constrain a string with ``pattern`` (``^ORD-[0-9]{5}$``); a generated value
that does not match would make the world model's own results invalid, so the generator samples
one from the pattern instead of guessing. Kept apart from ``envs.values`` because it reads the
regex parser's tree, which has nothing to do with plausible field values.
"""

from __future__ import annotations

import random
import re
import string
from typing import Any, Callable

try:  # the regex parser
    from re import _parser as _sre
except ImportError:  # Python 3.10
    import sre_parse as _sre


def matches_pattern(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` (an invalid pattern constrains nothing)."""
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True


def pattern_value(pattern: str, rng: random.Random, lo: int, hi: int) -> str | None:
    """A string matching ``pattern`` within the length bounds, sampled from its parse tree."""
    for _ in range(4):
        try:
            value = _emit(_sre.parse(pattern), rng)
        except Exception:  # an exotic or invalid pattern: the caller keeps its value
            return None
        if lo <= len(value) <= hi and matches_pattern(pattern, value):
            return value
    return None


_ALNUM = string.ascii_letters + string.digits
_CATEGORIES = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": _ALNUM + "_",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_DIGIT": string.ascii_letters,
    "CATEGORY_NOT_WORD": "-.",
    "CATEGORY_NOT_SPACE": _ALNUM,
}


def _emit(tokens: Any, rng: random.Random) -> str:
    return "".join(_TOKENS.get(str(op), lambda av, r: "")(av, rng) for op, av in tokens)


def _repeat(av: Any, rng: random.Random) -> str:
    low, high, body = av
    return "".join(_emit(body, rng) for _ in range(rng.randint(low, min(high, low + 3))))


def _char_in(items: list, ch: str) -> bool:
    code = ord(ch)
    for op, av in items:
        kind = str(op)
        if (
            kind == "LITERAL"
            and av == code
            or kind == "RANGE"
            and av[0] <= code <= av[1]
            or kind == "CATEGORY"
            and ch in _CATEGORIES.get(str(av), "")
        ):
            return True
    return False


def _pick_in(items: list, rng: random.Random) -> str:
    if items and str(items[0][0]) == "NEGATE":
        return rng.choice([c for c in _ALNUM + "-_. " if not _char_in(items[1:], c)] or ["~"])
    op, av = rng.choice(items)
    kind = str(op)
    if kind == "RANGE":
        return chr(rng.randint(av[0], av[1]))
    if kind == "CATEGORY":
        return rng.choice(_CATEGORIES.get(str(av), "x"))
    return chr(av) if kind == "LITERAL" else "x"


# regex parse-tree node -> emitter (anchors and unknown nodes emit nothing)
_TOKENS: dict[str, Callable[[Any, random.Random], str]] = {
    "LITERAL": lambda av, rng: chr(av),
    "NOT_LITERAL": lambda av, rng: "x" if av != ord("x") else "y",
    "ANY": lambda av, rng: rng.choice(_ALNUM),
    "IN": _pick_in,
    "MAX_REPEAT": _repeat,
    "MIN_REPEAT": _repeat,
    "POSSESSIVE_REPEAT": _repeat,
    "SUBPATTERN": lambda av, rng: _emit(av[-1], rng),
    "ATOMIC_GROUP": lambda av, rng: _emit(av, rng),
    "BRANCH": lambda av, rng: _emit(rng.choice(av[1]), rng),
}
