"""Words and word n-gram hashes of a text column, for all rows at once.

Dedup (MinHash shingles) and decontamination (n-gram overlap) compare texts by their word
n-grams. Hashing each n-gram string in Python costs ~0.5 µs, 10 s for the ~20M n-grams of
100k trajectories, so instead polars splits and hashes the words (lower-cased ``\\w+`` runs,
so punctuation, case and spacing never matter) in Rust, and numpy combines ``n`` consecutive
word hashes into one 64-bit n-gram hash (Horner's rule, wrapping) over the flat word array.
Hash values are stable within a process, which is all the steps need: they are compared,
never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

WORD_PATTERN = r"\w+"
_WORD_SEED = 0x6B696D69
_MULT = np.uint64(0x100000001B3)  # FNV-64 prime: odd, so each step is a bijection


@dataclass(frozen=True)
class Words:
    """Every document's words back to back: document d owns ``[offsets[d], offsets[d+1])``."""

    lists: pl.Series  # list[str] per document: the normalised text, groupable for exact dups
    text: pl.Series  # the words back to back (for quoting a matched n-gram)
    hashes: np.ndarray  # uint64, one per word
    offsets: np.ndarray  # int64, documents + 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def quote(self, start: int, n: int) -> str:
        return " ".join(self.text.slice(start, n).to_list())


@dataclass(frozen=True)
class Ngrams:
    hashes: np.ndarray  # uint64
    docs: np.ndarray  # int64: the document each n-gram belongs to
    starts: np.ndarray  # int64: index of its first word in ``Words``


def words(texts: pl.Series) -> Words:
    """Lower-cased word runs of each text (a null text has none)."""
    lists = pl.DataFrame({"t": texts}).select(
        pl.col("t").str.to_lowercase().str.extract_all(WORD_PATTERN)
    )["t"]
    lengths = lists.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = lists.explode(empty_as_null=False, keep_nulls=False)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    hashes = flat.hash(seed=_WORD_SEED).to_numpy()
    return Words(lists=lists, text=flat, hashes=hashes, offsets=offsets)


def ngrams(w: Words, n: int, whole_if_shorter: bool = False) -> Ngrams:
    """Hashes of every word n-gram inside one document, in document order.

    With ``whole_if_shorter`` a document of 1..n-1 words yields one n-gram of all its words
    (a short request still gets a shingle); otherwise it yields none.
    """
    total = len(w.hashes)
    doc_of = np.repeat(np.arange(len(w.lengths), dtype=np.int64), w.lengths)
    count = max(total - n + 1, 0)
    rolled = np.zeros(count, dtype=np.uint64)
    for k in range(n):
        rolled = rolled * _MULT + w.hashes[k : k + count]
    starts = np.flatnonzero(doc_of[:count] == doc_of[n - 1 : n - 1 + count])
    full = Ngrams(hashes=rolled[starts], docs=doc_of[starts], starts=starts)
    if not whole_if_shorter:
        return full
    return _merge(full, _whole(w, n), w)


def _whole(w: Words, n: int) -> Ngrams:
    """One n-gram per document of 1..n-1 words: all its words (same Horner hash)."""
    short = np.flatnonzero((w.lengths > 0) & (w.lengths < n))
    hashes = np.zeros(len(short), dtype=np.uint64)
    for k in range(n - 1):
        has_word = w.lengths[short] > k
        index = np.where(has_word, w.offsets[short] + k, 0)
        hashes = np.where(has_word, hashes * _MULT + w.hashes[index], hashes)
    return Ngrams(hashes=hashes, docs=short, starts=w.offsets[short])


def _merge(full: Ngrams, short: Ngrams, w: Words) -> Ngrams:
    """Both sets in document order, by scattering (the two never share a document)."""
    if len(short.docs) == 0:
        return full
    counts = np.bincount(full.docs, minlength=len(w.lengths))
    counts[short.docs] += 1
    offsets = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    slots = np.concatenate(
        [offsets[full.docs] + (full.starts - w.offsets[full.docs]), offsets[short.docs]]
    )
    out = [np.empty(len(slots), dtype=a.dtype) for a in (full.hashes, full.docs, full.starts)]
    for target, a, b in zip(
        out, (full.hashes, full.docs, full.starts), (short.hashes, short.docs, short.starts)
    ):
        target[slots] = np.concatenate([a, b])
    return Ngrams(hashes=out[0], docs=out[1], starts=out[2])


def fold32(hashes: np.ndarray) -> np.ndarray:
    """64-bit hashes folded to the 32 bits datasketch's affine32 MinHash takes."""
    return (hashes ^ (hashes >> np.uint64(32))).astype(np.uint32)
