"""Small English helpers every layer reads tool names and answers with: splitting identifiers
into words, the singular / plural of a resource noun, and whether an answer says it cannot.

One rule set, so the task writer, the world model, the taxonomy and the tool evolver agree on
what ``addresses``, ``statuses``, ``series`` or ``quiz`` are (three copies had drifted apart),
and the rubric judge and the user simulator agree on when an agent declined a request.
(The safety gym's refusal test is a different question, a refusal to *help with harm*, and
keeps its own pattern in ``gym/safety.py``.)
"""

from __future__ import annotations

import re

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# nouns whose plural is the word itself (a snake_case noun is inflected on its last word)
INVARIANT = ("series", "dues", "news", "sms", "species", "data", "info", "metadata")
# singular nouns that end in -us / -is (a plural such as ``skus`` or ``menus`` loses its s)
SINGULAR_ENDINGS = ("status", "bonus", "campus", "census", "corpus", "focus", "radius", "virus",
                    "nexus", "consensus", "syllabus", "phosphorus", "chorus", "walrus",
                    "thesaurus", "basis", "analysis", "axis", "thesis",
                    "crisis", "diagnosis", "emphasis", "synopsis", "hypothesis")


def split_words(name: str) -> list[str]:
    """``getOrderStatus`` / ``get_order-status`` → ``['get', 'order', 'status']``."""
    return [w for w in re.split(r"[_\-.\s]+", _CAMEL.sub("_", name).lower()) if w]


def singular(word: str) -> str:
    """``orders`` → ``order``, ``categories`` → ``category``, ``addresses`` → ``address``;
    ``status``, ``analysis``, ``series`` stay."""
    if word.endswith(INVARIANT):
        return word
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ses", "s"), ("xes", "x"), ("ches", "ch"),
                         ("shes", "sh"), ("zzes", "z")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            return word[: -len(suffix)] + repl
    if word.endswith("s") and not word.endswith(("ss", *SINGULAR_ENDINGS)) and len(word) > 3:
        return word[:-1]
    return word


def plural(word: str) -> str:
    """``order`` → ``orders``, ``category`` → ``categories``, ``box`` → ``boxes``;
    ``series``, ``news`` stay."""
    if word.endswith(INVARIANT):
        return word
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


_SAYS_CANNOT = re.compile(
    r"\b(?:i|we) (?:can(?:no|['’])t|cannot|am unable|am not able|do not have|don['’]t have)\b"
    r"|\b(?:i|we)['’](?:m|re) (?:unable|not able)\b|\bunable to\b"
    r"|\bnot (?:possible|supported|able to)\b|\bno (?:tools?|way|capability|function)\b"
    r"|\boutside (?:of )?(?:my|the) (?:scope|capabilit)|\bgiv(?:e|ing) up\b",
    re.I,
)


def says_cannot(text: str) -> bool:
    """Does an agent's answer decline or give up ("I can't do that", "no tool for this",
    "outside my scope")? Used to credit a refusal of an unsupported request."""
    return bool(_SAYS_CANNOT.search(text))
