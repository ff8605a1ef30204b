"""Drop trajectories that share a long word n-gram with gym tasks or held-out eval prompts.

Training on text that also appears in an evaluation inflates its score. The common test
(GPT-3, Llama, most since) is exact word n-gram overlap with n = 13: long enough that shared
boilerplate does not match, short enough to catch a copied question inside a longer message.
References shorter than 13 words can never match that way, so they are matched on a smaller
n (``short_ngram_size``, 8 by default); references shorter still are reported and skipped.

Texts are lower-cased ``\\w+`` word runs on both sides. The reference n-grams are hashed into
one sorted array per n once; every user and assistant message of every trajectory is then
checked with one vectorised binary search. A removed row names the reference and quotes the
n-gram, e.g. ``contaminated: 13-gram overlap with gym:math-0042: "what is the ..."``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from kimi_pipeline.curation.config import DecontaminationConfig
from kimi_pipeline.curation.messages import (
    USER_ASSISTANT,
    ensure_parsed,
    malformed,
    removed,
    require_columns,
)
from kimi_pipeline.curation.ngrams import Words, ngrams, words

STEP = "decontaminate"
REQUIRED = ("trajectory_id", "messages")
PROMPT_FIELDS = ("prompt", "question", "text")
log = logging.getLogger(__name__)

Reference = tuple[str, str]  # (reference id, text)


# ------------------------------------------------------------------------------ references


def _jsonl(path: Path) -> list[Reference]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON line ({exc})") from None
        text = _prompt(row)
        if text is None:
            raise ValueError(f"{path}:{number}: no string field among {list(PROMPT_FIELDS)}")
        name = row.get("id", row.get("task_id"))
        out.append((f"{path}#{name}" if name is not None else f"{path}:{number}", text))
    return out


def _prompt(row: object) -> str | None:
    if not isinstance(row, dict):
        return None
    return next((row[f] for f in PROMPT_FIELDS if isinstance(row.get(f), str)), None)


def _lines(path: Path) -> list[Reference]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(f"{path}:{n}", line) for n, line in enumerate(lines, start=1) if line.strip()]


READERS: dict[str, Callable[[Path], list[Reference]]] = {".jsonl": _jsonl, ".ndjson": _jsonl}


def load_references(paths: Sequence[str], gym_tasks: pl.DataFrame | None = None) -> list[Reference]:
    """Gym task prompts (``gym:<task_id>``) and held-out eval prompts (``<path>:<line>``).

    JSONL files (``.jsonl``/``.ndjson``) give one prompt per line from its ``prompt``,
    ``question`` or ``text`` field (``<path>#<id>`` when the line has an ``id``); any other
    file gives one prompt per non-empty line. A missing or unreadable file is an error.
    """
    references: list[Reference] = []
    if gym_tasks is not None and gym_tasks.height:
        require_columns(gym_tasks, ["task_id", "prompt"], "load_references(gym_tasks)")
        references += [
            (f"gym:{t}", p) for t, p in gym_tasks.select("task_id", "prompt").iter_rows()
        ]
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise FileNotFoundError(f"held-out evaluation file not found: {path}")
        references += READERS.get(path.suffix.lower(), _lines)(path)
    return references


@dataclass(frozen=True)
class _Table:
    """Sorted unique n-gram hashes of the references of one n, and the reference of each."""

    hashes: np.ndarray
    refs: np.ndarray


@dataclass(frozen=True)
class ReferenceIndex:
    """The reference n-gram tables, built once and reusable across ``decontaminate`` calls."""

    ids: list[str]
    tables: dict[int, _Table]  # n -> table
    skipped: int  # references too short for any n

    @classmethod
    def build(
        cls, references: Sequence[Reference], config: DecontaminationConfig
    ) -> ReferenceIndex:
        ref_words = words(pl.Series([text for _, text in references], dtype=pl.String))
        size = ref_words.lengths
        sizes = {config.ngram_size: size >= config.ngram_size}
        if config.short_ngram_size is not None and config.short_ngram_size < config.ngram_size:
            sizes[config.short_ngram_size] = (size >= config.short_ngram_size) & (
                size < config.ngram_size
            )
        tables = {n: _table(ref_words, n, mask) for n, mask in sizes.items() if mask.any()}
        skipped = int(len(references) - sum(int(mask.sum()) for mask in sizes.values()))
        if skipped:
            log.warning(
                "%d reference(s) are too short to match any n-gram and are ignored", skipped
            )
        return cls(ids=[ref_id for ref_id, _ in references], tables=tables, skipped=skipped)


def _table(ref_words: Words, n: int, mask: np.ndarray) -> _Table:
    grams = ngrams(ref_words, n)
    take = mask[grams.docs]
    hashes, first = np.unique(grams.hashes[take], return_index=True)
    return _Table(hashes=hashes, refs=grams.docs[take][first])


# ---------------------------------------------------------------------------------- matching


def decontaminate(
    frame: pl.DataFrame,
    references: Sequence[Reference] | ReferenceIndex,
    config: DecontaminationConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(clean rows in input order, contaminated rows with ``step`` and ``reason``)."""
    require_columns(frame, REQUIRED, STEP)
    parsed, bad = ensure_parsed(frame)
    index = (
        references
        if isinstance(references, ReferenceIndex)
        else ReferenceIndex.build(references, config)
    )
    reason: list[str | None] = [None] * parsed.height
    if index.tables and parsed.height:
        text = words(parsed[USER_ASSISTANT])
        for n, table in sorted(index.tables.items(), reverse=True):
            _match(text, n, table, index.ids, reason)
    reasons = pl.Series("reason", reason, dtype=pl.String)
    hit = reasons.is_not_null()
    out = removed(parsed.filter(hit), STEP, reasons.filter(hit))
    return parsed.filter(~hit), pl.concat([out, malformed(bad, STEP)])


def _match(text: Words, n: int, table: _Table, ids: list[str], reason: list[str | None]) -> None:
    """Fill ``reason`` for documents not yet matched that share an n-gram with ``table``."""
    grams = ngrams(text, n)
    slot = np.minimum(np.searchsorted(table.hashes, grams.hashes), len(table.hashes) - 1)
    open_docs = np.array([r is None for r in reason], dtype=bool)
    hit = (table.hashes[slot] == grams.hashes) & open_docs[grams.docs]
    docs, first = np.unique(grams.docs[hit], return_index=True)  # first matching n-gram per doc
    starts, refs = grams.starts[hit][first], table.refs[slot[hit][first]]
    quotes = _quotes(text, starts, n)
    for doc, ref, quote in zip(docs, refs, quotes):
        reason[doc] = f'contaminated: {n}-gram overlap with {ids[ref]}: "{quote}"'


def _quotes(text: Words, starts: np.ndarray, n: int) -> list[str]:
    if len(starts) == 0:
        return []
    flat = text.text.gather((starts[:, None] + np.arange(n)).ravel()).to_list()
    return [" ".join(flat[k : k + n]) for k in range(0, len(flat), n)]
