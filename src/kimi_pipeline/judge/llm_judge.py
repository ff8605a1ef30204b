"""The one LLM-judge core: what every LLM judge does around its own prompt, written once.

The rubric judge (``judge.rubric``), the gym's safety, faithfulness and instruction judges and
the critic all ask a model for a JSON verdict and must survive what models really reply. Each
of them used to carry its own copy of the same steps, and the copies drifted (one found JSON in
prose, another gave up on a ```json fence). Here, once:

- ``criteria_block``: the criteria to judge as numbered prompt lines, in a given order;
  ``json_request``: the judge's ``ChatRequest`` asking for JSON, with the structured
  ``context`` the role's offline program reads.
- ``parse_json_reply`` / ``parse_reply``: tolerant reading of a reply: a ```json fence is
  stripped, the first JSON object is found inside prose; an unusable reply (empty, not JSON,
  not an object, a failed call) becomes ``Abstain(reason)``, the neutral result. Never raises.
- ``ask``: requests through ``llm.base.complete_many`` (concurrent, bounded by the backend),
  replies read by ``parse_reply``, in request order.
- ``shuffled_orders``: for repeated judgements, the criteria order of each repeat shuffled by a
  seeded ``random.Random(f"{seed}:{item_key}:{repeat}")``, so a position bias of the judge
  model averages out and a rerun asks the very same requests.
- ``verdicts_of`` and ``vote``: boolean verdicts per criterion from a reply, then voted over
  the repeats against a threshold; abstaining repeats are recorded in the reasons, never counted.

What a neutral result scores is the caller's decision: a gym verifier gives reward 0 with the
reason, the rubric judge lets that repeat abstain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse, complete_many


@dataclass(frozen=True)
class Abstain:
    """A judge reply that cannot be used, and why: the neutral result of a judgement."""

    reason: str


Judgement = dict[str, Any] | Abstain  # a parsed reply: its JSON object, or why there is none
Verdicts = dict[str, tuple[bool, str]]  # criterion -> (passed, reason)


@dataclass
class CriterionVerdict:
    """One criterion's outcome and why."""

    name: str
    passed: bool
    reason: str


# ----------------------------------------------------------------------------- the request


def criteria_block(criteria: Iterable[tuple[str, str]]) -> str:
    """``(name, description)`` pairs as numbered prompt lines in the given order:
    ``1. name: description`` (``1. name`` when the description is empty)."""
    return "\n".join(f"{i}. {name}: {text}" if text else f"{i}. {name}"
                     for i, (name, text) in enumerate(criteria, 1))


def json_request(role: str, system: str, user: str, context: dict[str, Any],
                 **options: Any) -> ChatRequest:
    """A judge request for a JSON reply: the ``system`` message (left out when empty), the
    ``user`` message, the ``context`` the role's offline program reads, and further
    ``ChatRequest`` options (``temperature``, ``seed``)."""
    messages = [{"role": "system", "content": system}] if system else []
    return ChatRequest(role=role, messages=[*messages, {"role": "user", "content": user}],
                       response_format="json", context=context, **options)


# ------------------------------------------------------------------------------- the reply

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S | re.I)
_DECODER = json.JSONDecoder()
MAX_OBJECT_STARTS = 64  # '{' positions tried in prose before the reply counts as not JSON
QUOTED = 80  # characters of an unusable reply quoted in its reason


def parse_json_reply(content: str | None) -> Judgement:
    """The JSON object of a judge's reply, or ``Abstain`` with why there is none.

    A ```json fence is stripped; when the text is not JSON as a whole, the first JSON object
    inside it is taken (models put prose around their verdict). The reason of an unusable
    reply quotes its first ``QUOTED`` characters. Never raises.
    """
    text = (content or "").strip()
    if not text:
        return Abstain("empty reply")
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _first_object(text)
    if isinstance(value, dict):
        return value
    return Abstain(f"reply is JSON but not an object ({type(value).__name__}): "
                   f"{text[:QUOTED]!r}")


def _first_object(text: str) -> Judgement:
    start = text.find("{")
    for _ in range(MAX_OBJECT_STARTS):
        if start < 0:
            break
        try:
            return _DECODER.raw_decode(text, start)[0]  # at a '{' only an object decodes
        except (ValueError, RecursionError):
            start = text.find("{", start + 1)
    return Abstain(f"reply is not JSON: {text[:QUOTED]!r}")


def parse_reply(reply: ChatResponse) -> Judgement:
    """``parse_json_reply`` of a backend reply; a failed call abstains with the backend error."""
    if reply.error:
        return Abstain(f"backend error: {reply.error}")
    return parse_json_reply(reply.content)


def ask(backend: ChatBackend, requests: list[ChatRequest],
        progress: Callable[[int], None] | None = None) -> list[Judgement]:
    """Send ``requests`` through ``complete_many`` (concurrently) and read every reply: its
    JSON object or an ``Abstain`` with the reason, in request order. Never raises on a reply."""
    return [parse_reply(reply) for reply in complete_many(backend, requests, progress)]


# ------------------------------------------------------------------- repeats and the vote


def shuffled_orders(names: Sequence[str], item_key: str, repeats: int,
                    seed: int = 0) -> list[list[str]]:
    """One order of ``names`` per repeat, shuffled by
    ``random.Random(f"{seed}:{item_key}:{repeat}")``: deterministic per item and repeat."""
    return [random.Random(f"{seed}:{item_key}:{repeat}").sample(list(names), len(names))
            for repeat in range(repeats)]


def verdicts_of(judgement: Judgement, names: Iterable[Any], *, items: str = "criteria",
                name: str = "name", ok: str = "passed") -> Verdicts | Abstain:
    """Criterion -> (passed, reason) from a reply shaped
    ``{items: [{name: <criterion>, ok: true|false, "reason": "..."}]}``.

    Criteria are compared as text (a sentence index 1 matches "1"). Entries naming no wanted
    criterion or without a boolean verdict are skipped; a reply without the list, or judging
    none of ``names``, abstains, as does an ``Abstain`` given in.
    """
    if isinstance(judgement, Abstain):
        return judgement
    entries = judgement.get(items)
    if not isinstance(entries, list):
        return Abstain(f"reply has no {items!r} list")
    wanted = {str(n) for n in names}
    out: Verdicts = {}
    for entry in entries:
        if (isinstance(entry, dict) and str(entry.get(name)) in wanted
                and isinstance(entry.get(ok), bool)):
            out[str(entry[name])] = (entry[ok], str(entry.get("reason") or ""))
    return out or Abstain("reply judges none of the criteria")


def vote(names: Sequence[str], judgements: Sequence[Verdicts | Abstain],
         threshold: float) -> list[CriterionVerdict] | Abstain:
    """Per-criterion vote over the repeats: a criterion passes when more than ``threshold`` of
    the repeats that judged it passed it (0.5: strict majority, ties fail). Abstaining repeats
    are named in every reason, never counted; when all abstain, so does the vote."""
    abstained = [f"repeat {i}: {j.reason}" for i, j in enumerate(judgements)
                 if isinstance(j, Abstain)]
    valid = [j for j in judgements if not isinstance(j, Abstain)]
    if not valid:
        return Abstain("judge replies unparseable: " + "; ".join(abstained))
    note = f" (abstained: {'; '.join(abstained)})" if abstained else ""
    out = []
    for criterion in names:
        votes = [j[criterion] for j in valid if criterion in j]
        if not votes:
            out.append(CriterionVerdict(criterion, False,
                                        "no repeat judged this criterion" + note))
            continue
        yes = sum(passed for passed, _ in votes)
        passed = yes / len(votes) > threshold
        why = next(reason for verdict, reason in votes if verdict == passed)
        out.append(CriterionVerdict(criterion, passed,
                                    f"{yes}/{len(votes)} repeats passed: {why}{note}"))
    return out
