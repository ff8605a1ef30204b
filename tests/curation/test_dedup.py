"""Trajectory dedup: exact and near duplicates, keep-the-best, reasons, malformed rows."""

from __future__ import annotations

import random
import re

import numpy as np
import polars as pl
import pytest
from datasketch import MinHash

from kimi_pipeline import minhash
from kimi_pipeline.curation.config import TrajectoryDedupConfig
from kimi_pipeline.curation.dedup import dedup
from tests.curation.conftest import frame, trajectory, with_bad_row

CONFIG = TrajectoryDedupConfig()
REQUEST = (
    "Hello, I ordered a pair of blue running shoes from your shop two weeks ago and they still "
    "have not arrived at my flat in Lisbon, could you please look up order ORD-1 and tell me "
    "where the parcel is right now and when it will finally be delivered to me"
)
OTHER = (
    "Please cancel my subscription to the premium cooking magazine starting next month, and "
    "send the confirmation of the cancellation to my work email address instead of my home one"
)


def one_word_changed(text: str) -> str:
    return text.replace("blue", "red")


def ids(df: pl.DataFrame) -> list[str]:
    return df["trajectory_id"].to_list()


def test_signatures_equal_datasketch_minhash():
    rng = np.random.default_rng(0)
    shingles = rng.integers(0, 2**32, size=50, dtype=np.uint32)
    offsets = np.array([0, 1, 20, 50])
    sigs = minhash.signatures(shingles, offsets, num_perm=64)
    for d in range(3):
        reference = MinHash(num_perm=64, seed=minhash.MINHASH_SEED, hashfunc=lambda x: x)
        reference.update_batch([int(x) for x in shingles[offsets[d] : offsets[d + 1]]])
        assert np.array_equal(sigs[d], reference.hashvalues)


def test_near_duplicate_request_caught_and_different_request_kept():
    df = frame(
        [
            trajectory("a", REQUEST),
            trajectory("b", one_word_changed(REQUEST)),
            trajectory("c", OTHER),
        ],
        scores=[0.9, 0.5, 0.5],
    )
    kept, removed = dedup(df, CONFIG)
    assert ids(kept) == ["a", "c"]
    assert ids(removed) == ["b"]
    assert re.fullmatch(r"near_duplicate_request of a \(jaccard 0\.\d\d\)", removed["reason"][0])
    assert removed["step"][0] == "dedup"
    assert set(removed.columns) == set(df.columns) | {"step", "reason"}


def test_exact_duplicate_ignores_case_punctuation_and_spacing():
    df = frame(
        [trajectory("a", "Where is my ORDER, please?"), trajectory("b", "where is my order please")]
    )
    kept, removed = dedup(df, CONFIG)
    assert ids(kept) == ["b"]  # equal scores: the shorter messages win
    assert removed["reason"].to_list() == ["exact_duplicate_request of b"]


@pytest.mark.parametrize(
    ("scores", "keeper"),
    [([0.2, 0.9, 0.5], "y"), ([0.5, 0.5, 0.5], "x"), ([0.5, None, 0.5], "x")],
)
def test_keeps_best_of_cluster_whatever_the_order(scores, keeper):
    trajectories = [
        trajectory("z", REQUEST),
        trajectory("y", REQUEST + " thanks"),
        trajectory("x", one_word_changed(REQUEST)),
    ]
    df = frame(trajectories, scores=scores)
    for seed in range(3):
        shuffled = df.sample(fraction=1.0, shuffle=True, seed=seed)
        kept, removed = dedup(shuffled, CONFIG)
        assert ids(kept) == [keeper]
        assert all(f" of {keeper}" in r for r in removed["reason"])


def test_shortest_then_smallest_id_break_ties():
    long_answer = trajectory("a", REQUEST, answer="Shipped. " * 30)
    df = frame([long_answer, trajectory("c", REQUEST), trajectory("b", REQUEST)])
    kept, _ = dedup(df, CONFIG)
    assert ids(kept) == ["b"]


def test_near_duplicate_dialogue_with_different_requests():
    result = " ".join(f"item{k} is in stock at warehouse{k} with {k} units left" for k in range(40))
    calls = [("lookup_order", {"order_id": "ORD-1"}, result)]
    df = frame(
        [
            trajectory("a", "show my stock", calls=calls),
            trajectory("b", "list inventory now", calls=calls),
            trajectory("c", "show my stock levels", calls=[("lookup_order", {}, "nothing here")]),
        ],
        scores=[0.4, 0.6, 0.5],
    )
    kept, removed = dedup(df, CONFIG)
    assert ids(kept) == ["b", "c"]
    assert removed["reason"][0].startswith("near_duplicate_trajectory of b (jaccard ")


def test_exact_duplicate_trajectory_without_user_message():
    df = frame([trajectory("a", ""), trajectory("b", "")], scores=[0.3, 0.7])
    kept, removed = dedup(df, CONFIG)
    assert ids(kept) == ["b"]
    assert removed["reason"].to_list() == ["exact_duplicate_trajectory of b"]


def test_many_distinct_requests_survive():
    rng = random.Random(0)
    vocab = [f"word{k}" for k in range(3000)]
    df = frame(
        [
            trajectory(f"t{k}", " ".join(rng.sample(vocab, 30)), answer=f"answer {k}")
            for k in range(300)
        ]
    )
    kept, removed = dedup(df, CONFIG)
    assert kept.height == 300 and removed.height == 0


def test_malformed_row_is_removed_with_reason():
    df = with_bad_row(frame([trajectory("a", REQUEST), trajectory("c", OTHER)]))
    kept, removed = dedup(df, CONFIG)
    assert ids(kept) == ["a", "c"]
    assert ids(removed) == ["broken"]
    assert removed["reason"][0].startswith("malformed_messages: messages is not valid JSON")


def test_empty_frame_and_missing_column():
    df = frame([trajectory("a", REQUEST)])
    kept, removed = dedup(df.clear(), CONFIG)
    assert kept.height == 0 and removed.height == 0
    with pytest.raises(ValueError, match="judge_score"):
        dedup(df.drop("judge_score"), CONFIG)
