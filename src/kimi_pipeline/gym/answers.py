"""Final-answer extraction and fast answer equivalence, shared by the math and logic domains.

``extract_answer`` finds the one final answer a response commits to: the last ``<answer>…</answer>``
block, else a ``\\boxed{…}`` (nested braces allowed), else an ``Answer: X`` / ``final answer is X``
line. Several *distinct* tagged or boxed answers are a hedge, so the response is ambiguous and
gets no answer. A reason comes back with every decision.

``equivalent`` decides whether an answer matches a reference cheaply first: exact match after
normalisation, then exact rational comparison of numbers (integers, decimals, fractions,
``\\frac``, percentages, scientific notation, lists of them), and only when neither decides does it
call math-verify's ``parse`` + ``verify`` (≈ 700 checks/s alone), with parses and verdicts cached.
Answers over ``MAX_ANSWER_CHARS`` are refused before math-verify sees them, and math-verify's
signal-based timeout is used where it can be (the main thread). Nothing here raises on model
output: failures are ``(False, reason)``.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction
from functools import lru_cache

MAX_ANSWER_CHARS = 500  # longer answers are refused before any parsing (adversarial input)
MAX_RESPONSE_CHARS = 200_000  # longer responses are not searched for an answer
MATH_VERIFY_TIMEOUT_S = 2
REL_TOLERANCE = Fraction(1, 10**9)  # numbers this close (relative) are equal: 0.3333333333 ≈ 1/3

# ------------------------------------------------------------------------------ extraction

_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_LINE = re.compile(
    r"^\s*(?:[*_#>\s]*)(?:the\s+)?(?:final\s+answer|answer)\s*(?:[*_]*)\s*(?::|is\b|=)\s*[*_]*\s*(.+?)\s*$",
    re.I | re.M,
)
_FINAL_ANSWER_IS = re.compile(r"\bfinal\s+answer\s+is\s*:?\s*(.+?)\s*$", re.I | re.M)


def _boxed_contents(text: str) -> list[str]:
    """Contents of every well-balanced ``\\boxed{…}``; unbalanced ones are skipped."""
    found = []
    for match in _BOX_START.finditer(text):
        depth, start = 1, match.end()
        for index in range(start, len(text)):
            char = text[index]
            depth += (char == "{") - (char == "}")
            if depth == 0:
                found.append(text[start:index].strip())
                break
    return found


def _single(candidates: list[str], where: str) -> tuple[str | None, str]:
    distinct = list(dict.fromkeys(normalize(c) for c in candidates))
    if len(distinct) > 1:
        shown = ", ".join(repr(c[:40]) for c in distinct[:4])
        return None, f"ambiguous: {len(distinct)} distinct {where} answers ({shown})"
    if not distinct[0]:
        return None, f"empty {where} answer"
    return candidates[-1], f"{where} answer"


def _line_answer(text: str) -> str | None:
    matches = _FINAL_ANSWER_IS.findall(text) or _ANSWER_LINE.findall(text)
    return matches[-1].rstrip(".").strip() if matches else None


def extract_answer(response: object) -> tuple[str | None, str]:
    """``(answer, reason)``: the response's final answer, or ``None`` and why there is none."""
    if not isinstance(response, str) or not response.strip():
        return None, "empty response"
    if len(response) > MAX_RESPONSE_CHARS:
        return None, f"response longer than {MAX_RESPONSE_CHARS} characters"
    for where, finder in (("tagged", _TAG.findall), ("boxed", _boxed_contents)):
        candidates = [c.strip() for c in finder(response)]
        if candidates:
            return _single(candidates, where)
    line = _line_answer(response)
    if line:
        return line, "answer line"
    return None, "no final answer (expected \\boxed{...}, <answer>...</answer> or an 'Answer:' line)"


def extract_final_answer(response: object) -> str | None:
    """The final answer of ``response``, or ``None`` (missing or ambiguous)."""
    return extract_answer(response)[0]


# --------------------------------------------------------------------------- normalisation

_DELETE = re.compile(r"\\left|\\right|\\[,;:! ]|\\displaystyle|~|\^\{?\\circ\}?|°|\\\$|\$")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_VAR_PREFIX = re.compile(r"^[A-Za-z]\s*=(?!=)")
_SPACE = re.compile(r"\s+")
_SPACE_AROUND_SYMBOL = re.compile(r"\s*([^\w\s])\s*")


def normalize(answer: str) -> str:
    """Canonical text of an answer: LaTeX spacing, delimiters, ``\\text{}`` and ``x =`` removed."""
    text = answer.strip()
    for opener, closer in (("\\(", "\\)"), ("\\[", "\\]")):
        if text.startswith(opener) and text.endswith(closer):
            text = text[2:-2]
    text = _TEXT_WRAP.sub(r"\1", text)
    text = _DELETE.sub("", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.replace("\\%", "%").replace("\\cdot", "*").replace("\\times", "*")
    text = _SPACE_AROUND_SYMBOL.sub(r"\1", _SPACE.sub(" ", text)).strip().rstrip(".")
    if _VAR_PREFIX.match(text) and text.count("=") == 1:
        text = text.split("=", 1)[1]
    return text


# --------------------------------------------------------------------------------- numbers

_DECIMAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN = re.compile(rf"{_DECIMAL}(?:[eE][+-]?\d+)?")
_SLASH = re.compile(rf"({_DECIMAL})/({_DECIMAL})")
_FRAC = re.compile(r"([+-]?)\\frac(?:\{([^{}]+)\}\{([^{}]+)\}|\s?(\d)(\d))")
_POWER10 = re.compile(rf"({_DECIMAL})\*10\^\{{?([+-]?\d+)\}}?")
_UNIT = re.compile(r"^(.*?\d\.?)\s?([A-Za-z]{1,12})$")
_NOT_UNITS = {"or", "and", "e", "i", "pi", "x", "y", "z", "n"}


def _scalar(text: str) -> Fraction | None:
    """The exact value of one number in any of the accepted notations, else ``None``."""
    if _PLAIN.fullmatch(text):
        return Fraction(text)
    if _THOUSANDS.fullmatch(text):
        return Fraction(text.replace(",", ""))
    if match := _SLASH.fullmatch(text):
        numerator, denominator = Fraction(match[1]), Fraction(match[2])
        return numerator / denominator if denominator else None
    if match := _FRAC.fullmatch(text):
        top, bottom = (match[2], match[3]) if match[2] is not None else (match[4], match[5])
        numerator, denominator = _scalar(top), _scalar(bottom)
        if numerator is None or not denominator:
            return None
        return -numerator / denominator if match[1] == "-" else numerator / denominator
    if match := _POWER10.fullmatch(text):
        return Fraction(match[1]) * Fraction(10) ** int(match[2])
    return None


def _number(text: str) -> tuple[Fraction, bool] | None:
    """``(value, is_percent)`` of a normalised single number (a trailing unit word is dropped)."""
    percent = text.endswith("%")
    text = text.rstrip("%")
    unit = _UNIT.match(text)
    if unit and unit[2].lower() not in _NOT_UNITS:
        text = unit[1]
    if len(text) > 60:
        return None
    value = _scalar(text)
    return None if value is None else (value, percent)


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _strip_brackets(text: str) -> str:
    for opener, closer in (("\\{", "\\}"), ("(", ")"), ("[", "]"), ("{", "}")):
        if text.startswith(opener) and text.endswith(closer):
            return text[len(opener) : -len(closer)]
    return text


def numbers(text: str) -> list[tuple[Fraction, bool]] | None:
    """The numbers of a normalised answer (one, or a comma-separated list), else ``None``."""
    single = _number(text)
    if single is not None:
        return [single]
    parts = _split_top_level(_strip_brackets(text))
    if len(parts) < 2:
        return None
    values = [_number(normalize(part)) for part in parts]
    return None if any(v is None for v in values) else values


def _same_number(gold: tuple[Fraction, bool], answer: tuple[Fraction, bool]) -> bool:
    candidates = [answer[0]]
    if gold[1] != answer[1]:  # one side is a percentage: 50% matches 0.5 as well as 50
        candidates.append(answer[0] / 100 if answer[1] else answer[0] * 100)
    scale = max(abs(gold[0]), Fraction(1))
    return any(abs(c - gold[0]) <= REL_TOLERANCE * scale for c in candidates)


def _compare_numbers(gold, answer, unordered: bool) -> tuple[bool, str]:
    if len(gold) != len(answer):
        return False, f"answer has {len(answer)} value(s), the reference {len(gold)}"
    if unordered:
        gold, answer = sorted(gold), sorted(answer)
    for index, (g, a) in enumerate(zip(gold, answer)):
        if not _same_number(g, a):
            where = f" (value {index + 1})" if len(gold) > 1 else ""
            return False, f"numeric mismatch{where}: got {float(a[0]):g}, expected {float(g[0]):g}"
    return True, "numeric match"


# ----------------------------------------------------------------------------- math-verify

_COMMAND = re.compile(r"\\[A-Za-z]+")
_FREE_LETTER = re.compile(r"[A-DF-Za-df-z]")  # a variable; e (Euler) is a number
_HEDGE = re.compile(r"\bor\b|\\lor|\\vee|\\pm|±|\\\\|\\quad|\\qquad")
# sympy would grind on these (power towers, huge exponents or factorials): refused up front,
# which also protects worker threads, where math-verify's alarm-based timeout cannot run
_COSTLY = re.compile(r"\^\{?[^{}]*\^|\^\{?\s*\d{4,}|\d{4,}\s*!")


def _timeout() -> int | None:
    """math-verify's alarm-based timeout works only in the main thread."""
    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=65536)
def _parse(expression: str):
    from math_verify import parse

    return parse(f"${expression}$", parsing_timeout=_timeout())


@lru_cache(maxsize=65536)
def _math_verify(gold: str, answer: str) -> tuple[bool, str]:
    from math_verify import verify

    gold_parsed, answer_parsed = _parse(gold), _parse(answer)
    if not gold_parsed:
        return False, f"reference {gold[:60]!r} did not parse"
    if not answer_parsed:
        return False, f"answer {answer[:60]!r} did not parse"
    if verify(gold_parsed, answer_parsed, timeout_seconds=_timeout()):
        return True, "math-verify: equivalent"
    return False, f"math-verify: {answer_parsed[-1]!s:.60} is not {gold_parsed[-1]!s:.60}"


def equivalent(gold: str, answer: str | None, *, unordered: bool = False) -> tuple[bool, str]:
    """Whether ``answer`` means the same as ``gold``, with the reason; never raises.

    ``unordered``: the reference is a list whose order does not matter (e.g. the roots of a
    quadratic).
    """
    if not isinstance(answer, str) or not answer.strip():
        return False, "empty answer"
    if len(answer) > MAX_ANSWER_CHARS:
        return False, f"answer longer than {MAX_ANSWER_CHARS} characters"
    gold_n, answer_n = normalize(str(gold)), normalize(answer)
    if gold_n == answer_n:
        return True, "exact match"
    if _HEDGE.search(answer) and not _HEDGE.search(str(gold)):
        return False, f"hedged answer {answer[:60]!r}: several candidates"
    gold_values, answer_values = numbers(gold_n), numbers(answer_n)
    if gold_values is not None and answer_values is not None:
        return _compare_numbers(gold_values, answer_values, unordered)
    if gold_values is not None and len(_split_top_level(_strip_brackets(answer_n))) > len(gold_values):
        return False, f"answer lists more values than the reference's {len(gold_values)}"
    if gold_values is not None and _FREE_LETTER.search(_COMMAND.sub("", answer_n)):
        return False, f"answer {answer[:60]!r} has a variable; the reference is a number"
    if _COSTLY.search(answer_n):
        return False, f"answer {answer[:60]!r} is too costly to evaluate (huge power or factorial)"
    try:
        return _math_verify(gold_n, answer_n)
    except Exception as exc:  # math-verify/sympy on hostile input: a 0, never a crash
        return False, f"math-verify failed: {type(exc).__name__}: {str(exc)[:80]}"
