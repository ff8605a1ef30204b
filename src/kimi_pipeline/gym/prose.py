"""A written response as words, sentences, paragraphs and crude stems, parsed once.

The instruction-following checkers and hack checks and the faithfulness scorer all read a
response this way. The rules are language-agnostic where they can be (a word is a run of
Unicode letters or digits) and cheap (precompiled patterns, a cached suffix stripper), so a
verifier reads tens of thousands of responses per second in pure Python; :class:`Text` keeps
every view it computed, so checks on one response share the parsing.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cached_property, lru_cache

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # unicode letters/digits: language-agnostic
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
    return WORD.findall(text)


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
        return [s for s in split_sentences(self.raw) if WORD.search(s)]

    @cached_property
    def paragraphs(self) -> list[str]:
        return [p for p in _PARAGRAPH.split(self.stripped) if p.strip()]
