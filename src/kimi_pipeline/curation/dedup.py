"""Remove exact and near-duplicate trajectories, keeping the best of each cluster.

Two passes, each exact then near: over user requests (the first user message) and over whole
dialogues (every turn but the system prompt, tool calls and results included). Repeated
requests teach the model one thing many times; repeated dialogues do so even when requests
differ. A pass only looks at what the previous ones kept.

* Exact: texts equal after normalisation (lower-cased ``\\w+`` word runs, so case,
  punctuation and spacing are ignored), grouped by polars.
* Near: MinHash (datasketch's affine32 scheme, word ``shingle_size``-gram shingles) with LSH
  banding; every LSH candidate pair is verified against the threshold on the signatures, and
  a cluster is a connected component of verified pairs.

"Best" is the highest ``judge_score``, then the shortest ``messages``, then the smallest
``trajectory_id``, so the result does not depend on row order. Each removed row names its
cluster's keeper, e.g. ``near_duplicate_request of t-17 (jaccard 0.91)`` (a chained member
may quote a Jaccard with the keeper below the threshold: it was linked through another one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from kimi_pipeline import minhash
from kimi_pipeline.curation.config import TrajectoryDedupConfig
from kimi_pipeline.curation.messages import (
    DIALOGUE,
    REQUEST,
    ensure_parsed,
    malformed,
    removed,
    require_columns,
)
from kimi_pipeline.curation.ngrams import Words, fold32, ngrams, words

STEP = "dedup"
REQUIRED = ("trajectory_id", "messages", "judge_score")


@dataclass(frozen=True)
class _Pass:
    name: str
    column: str
    threshold: Callable[[TrajectoryDedupConfig], float]


PASSES = (
    _Pass("request", REQUEST, lambda c: c.request_threshold),
    _Pass("trajectory", DIALOGUE, lambda c: c.trajectory_threshold),
)


@dataclass
class _Found:
    """Rows (global indices) removed by one finder, their keepers and Jaccard (exact: None)."""

    victims: np.ndarray
    keepers: np.ndarray
    jaccard: np.ndarray | None


def quality_rank(frame: pl.DataFrame) -> np.ndarray:
    """Rank of each row, 0 = best: highest judge_score, shortest messages, smallest id."""
    order = (
        frame.select(
            pl.arg_sort_by(
                [
                    pl.col("judge_score").cast(pl.Float64).fill_nan(None),
                    pl.col("messages").str.len_bytes(),
                    pl.col("trajectory_id"),
                ],
                descending=[True, False, False],
                nulls_last=True,
            )
        )
        .to_series()
        .to_numpy()
    )
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def dedup(frame: pl.DataFrame, config: TrajectoryDedupConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(kept rows in input order, removed rows with ``step`` and ``reason``)."""
    require_columns(frame, REQUIRED, STEP)
    parsed, bad = ensure_parsed(frame)
    rank = quality_rank(parsed)
    ids = parsed["trajectory_id"]
    alive = np.ones(parsed.height, dtype=bool)
    reasons: list[pl.DataFrame] = []
    for dedup_pass in PASSES:
        rows = np.flatnonzero(alive)
        text = words(parsed[dedup_pass.column].gather(rows))
        for kind, found in _run_pass(text, rows, rank, dedup_pass, config):
            alive[found.victims] = False
            reasons.append(_reasons(kind, dedup_pass.name, found, ids))
    gone = pl.concat(reasons).sort("row")  # every pass reports, if only an empty frame
    out = removed(parsed[gone["row"].to_numpy()], STEP, gone["reason"])
    return parsed.filter(pl.Series(alive)), pl.concat([out, malformed(bad, STEP)])


def _run_pass(
    text: Words,
    rows: np.ndarray,
    rank: np.ndarray,
    dedup_pass: _Pass,
    config: TrajectoryDedupConfig,
) -> Iterator[tuple[str, _Found]]:
    """Exact then near duplicates among ``rows`` (documents with no words take no part)."""
    has_words = text.lengths > 0
    exact = _exact(text.lists, rows, rank, has_words)
    yield "exact", exact
    survivors = has_words.copy()
    survivors[np.searchsorted(rows, exact.victims)] = False
    yield "near", _near(text, rows, rank, survivors, dedup_pass.threshold(config), config)


def _exact(lists: pl.Series, rows: np.ndarray, rank: np.ndarray, has_words: np.ndarray) -> _Found:
    groups = (
        pl.DataFrame({"row": rows, "rank": rank[rows], "words": lists})
        .filter(pl.Series(has_words))
        .with_columns(keeper=pl.col("row").sort_by("rank").first().over("words"))
    )
    dups = groups.filter(pl.col("row") != pl.col("keeper"))
    return _Found(dups["row"].to_numpy(), dups["keeper"].to_numpy(), None)


def _near(
    text: Words,
    rows: np.ndarray,
    rank: np.ndarray,
    survivors: np.ndarray,
    threshold: float,
    config: TrajectoryDedupConfig,
) -> _Found:
    local = np.flatnonzero(survivors)  # documents of this pass taking part, sorted
    if len(local) < 2:
        return _Found(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    shingles = ngrams(text, config.shingle_size, whole_if_shorter=True)
    take = survivors[shingles.docs]
    position = np.searchsorted(local, shingles.docs[take])
    offsets = np.searchsorted(position, np.arange(len(local) + 1))
    sigs = minhash.signatures(fold32(shingles.hashes[take]), offsets, config.num_perm)
    doc_rank = rank[rows[local]]
    i, j = minhash.candidate_pairs(sigs, *minhash.lsh_bands(threshold, config.num_perm), doc_rank)
    similar = minhash.jaccard(sigs, i, j) >= threshold
    keeper = _cluster_keepers(i[similar], j[similar], doc_rank)
    victims = np.flatnonzero(keeper != np.arange(len(local)))
    return _Found(
        rows[local[victims]],
        rows[local[keeper[victims]]],
        minhash.jaccard(sigs, victims, keeper[victims]),
    )


def _cluster_keepers(i: np.ndarray, j: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """For each document, the best-ranked member of its connected component."""
    n = len(rank)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.lexsort((rank, labels))
    first = np.r_[True, labels[order][1:] != labels[order][:-1]]
    best = order[np.flatnonzero(first)]  # one per label, labels ascending
    return best[labels]


def _reasons(kind: str, pass_name: str, found: _Found, ids: pl.Series) -> pl.DataFrame:
    prefix = f"{kind}_duplicate_{pass_name} of "
    keeper_ids = ids.gather(found.keepers).to_list()
    if found.jaccard is None:
        reasons = [prefix + keeper for keeper in keeper_ids]
    else:
        reasons = [f"{prefix}{k} (jaccard {j:.2f})" for k, j in zip(keeper_ids, found.jaccard)]
    return pl.DataFrame(
        {"row": found.victims.astype(np.int64), "reason": pl.Series(reasons, dtype=pl.String)}
    )
