"""MinHash settings and batch routines shared by tool dedup and trajectory dedup.

``datasketch`` defines the MinHash: its ``affine32`` scheme pre-mixes each 32-bit shingle hash
with the MurmurHash3 finalizer and applies ``a * h + b mod 2^32`` with permutations drawn from
a seeded RandomState. Hashing one document at a time through ``MinHash.update_batch`` costs a
Python call per document and ``MinHashLSH`` a dict operation per band per document, ~100 µs a
document together — 10 s per pass over 100k trajectories. ``signatures`` computes the same
hash values (tested bit-for-bit against ``MinHash``) for every document at once with numpy,
one permutation at a time over one flat shingle array, and ``candidate_pairs`` does the LSH
banding (band sizes chosen by ``MinHashLSH``'s own optimiser) with sorts instead of dicts.
"""

from __future__ import annotations

import numpy as np
from datasketch import MinHash, MinHashLSH

MINHASH_SEED = 1
# (false-positive, false-negative) weights of the LSH banding; default (0.5, 0.5) finds only
# ~40 % of pairs right at the threshold and ~70 % at threshold + 0.05 (b=9, r=13 at 0.8/128);
# these find ~95 % and ~99 % (b=16, r=8). Every candidate is verified afterwards.
LSH_WEIGHTS = (0.05, 0.95)

_FMIX32 = (np.uint32(16), np.uint32(0x85EBCA6B), np.uint32(13), np.uint32(0xC2B2AE35))
_BAND_MIX = np.uint64(0x9E3779B97F4A7C15)
_PAIR_CHUNK = 65_536


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) that ``MinHashLSH`` picks for this threshold, tuned for recall."""
    try:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
        return lsh.b, lsh.r
    except ValueError:  # thresholds near 1 leave fewer than 2 bands: use the narrowest legal one
        return 2, num_perm // 2


def _fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch's affine32 scheme applies it."""
    s1, m1, s2, m2 = _FMIX32
    values = values ^ (values >> s1)
    values = values * m1
    values = values ^ (values >> s2)
    values = values * m2
    return values ^ (values >> s1)


def signatures(
    shingles: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int = MINHASH_SEED
) -> np.ndarray:
    """MinHash hash values, shape (documents, num_perm), uint32.

    ``shingles`` holds every document's 32-bit shingle hashes back to back; document ``d``
    owns ``shingles[offsets[d]:offsets[d + 1]]`` and must own at least one. Row ``d`` equals
    ``MinHash(num_perm, seed, hashfunc=identity).update_batch(those shingles).hashvalues``.
    """
    starts = np.asarray(offsets[:-1], dtype=np.int64)
    if len(starts) and np.any(np.diff(offsets) <= 0):
        raise ValueError("every document needs at least one shingle")
    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    mixed = _fmix32(np.asarray(shingles, dtype=np.uint32))
    out = np.empty((len(starts), num_perm), dtype=np.uint32)
    scratch = np.empty_like(mixed)
    for k in range(num_perm):  # one permutation over all shingles: contiguous, cache-friendly
        np.multiply(mixed, a[k], out=scratch)
        np.add(scratch, b[k], out=scratch)
        if len(starts):
            out[:, k] = np.minimum.reduceat(scratch, starts)
    return out


def candidate_pairs(
    sigs: np.ndarray, bands: int, rows: int, rank: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """LSH candidates as unique (member, leader) index pairs.

    Documents whose signatures agree on all ``rows`` values of some band share a bucket.
    Each member of a bucket is paired with the bucket's leader (lowest ``rank``) only, so a
    bucket of m documents costs m pairs, not m²; clustering the verified pairs afterwards
    joins what a full clique would have joined, up to pairs the leader does not bridge.
    """
    n = len(sigs)
    found_i, found_j = [], []
    for band in range(bands):
        key = np.zeros(n, dtype=np.uint64)
        for col in sigs[:, band * rows : (band + 1) * rows].T:
            key = key * _BAND_MIX + col.astype(np.uint64)
        order = np.lexsort((rank, key))
        sorted_key = key[order]
        first = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
        leader = order[np.flatnonzero(first)[np.cumsum(first) - 1]]
        member = ~first
        found_i.append(order[member])
        found_j.append(leader[member])
    if not found_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    packed = np.unique(np.concatenate(found_i).astype(np.int64) * n + np.concatenate(found_j))
    return packed // n, packed % n


def jaccard(sigs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of documents i[k] and j[k]: the share of equal hash values."""
    out = np.empty(len(i), dtype=np.float64)
    for start in range(0, len(i), _PAIR_CHUNK):  # bounded temporaries on large pair sets
        part = slice(start, start + _PAIR_CHUNK)
        out[part] = (sigs[i[part]] == sigs[j[part]]).mean(axis=1)
    return out
