"""Merge exact and near-duplicate tools, keeping every merged tool's provenance.

The same tool reaches the repository many times: two MCP servers expose it, a file copies
it, evolution re-invents it. Duplicates would skew sampling and leak between agents, so:

* exact duplicates (same ``name`` and same schema key) are merged;
* near duplicates are found with MinHash LSH over word n-gram shingles of the name (split
  on ``_`` and camelCase) and the description, and merged only when the estimated Jaccard
  reaches the threshold *and* their schema keys are equal: same-named tools with different
  argument shapes are different tools and both survive.

Merging is transitive (union-find). Each cluster keeps one tool, preferring the source
order mcp > file > synthetic and then the smallest ``tool_id``; the others' ``source_ref``
(and their own ``merged_from``) are appended to the keeper's ``merged_from``. The output
keeps keepers in input order, and every step is deterministic (seeded permutations, CRC32
shingle hashes, sorted candidate lists), so the same input gives the same repository.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from datasketch import LeanMinHash, MinHash, MinHashLSH

from kimi_pipeline.minhash import LSH_WEIGHTS as _LSH_WEIGHTS
from kimi_pipeline.minhash import MINHASH_SEED as _MINHASH_SEED
from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import DedupConfig

SOURCE_PREFERENCE = {"mcp": 0, "file": 1, "synthetic": 2}
_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


@dataclass
class DedupResult:
    tools: list[ToolSpec]
    exact_merged: int
    near_merged: int
    clusters: list[list[str]]  # tool_ids merged together, keeper first


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]  # path halving
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        self.parent[max(ra, rb)] = min(ra, rb)
        return True

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out


def dedup_tools(
    tools: list[ToolSpec], config: DedupConfig, schema_key: Callable[[dict], str]
) -> DedupResult:
    """Merge exact then near duplicates; see the module docstring for the rules."""
    keys = [schema_key(tool.parameters) for tool in tools]
    sets = _UnionFind(len(tools))
    exact_merged = _merge_exact(tools, keys, sets)
    near_merged = _merge_near(tools, keys, sets, config)
    kept, clusters = _collapse(tools, sets)
    return DedupResult(
        tools=kept, exact_merged=exact_merged, near_merged=near_merged, clusters=clusters
    )


def _preference(tool: ToolSpec) -> tuple[int, str]:
    return SOURCE_PREFERENCE.get(tool.source, len(SOURCE_PREFERENCE)), tool.tool_id


def _merge_exact(tools: list[ToolSpec], keys: list[str], sets: _UnionFind) -> int:
    first: dict[tuple[str, str], int] = {}
    merged = 0
    for i, (tool, key) in enumerate(zip(tools, keys)):
        j = first.setdefault((tool.name, key), i)
        if j != i and sets.union(j, i):
            merged += 1
    return merged


def _merge_near(
    tools: list[ToolSpec], keys: list[str], sets: _UnionFind, config: DedupConfig
) -> int:
    """Union every LSH candidate pair with equal schema keys and estimated Jaccard ≥ threshold."""
    if len(tools) < 2:
        return 0
    signatures = _signatures(
        (_shingles(tool, config.shingle_size) for tool in tools), config.num_perm
    )
    lsh = _index(config)
    with lsh.insertion_session() as session:
        for i, signature in enumerate(signatures):
            session.insert(i, signature, check_duplication=False)
    merged = 0
    for i, signature in enumerate(signatures):
        for j in sorted(lsh.query(signature)):
            if j <= i or keys[i] != keys[j] or sets.find(i) == sets.find(j):
                continue
            estimate = signature.jaccard(signatures[j])
            if estimate >= config.near_duplicate_threshold and sets.union(i, j):
                merged += 1
    return merged


def _index(config: DedupConfig) -> MinHashLSH:
    """An LSH banding tuned for recall: every candidate is verified afterwards."""
    try:
        return MinHashLSH(
            threshold=config.near_duplicate_threshold,
            num_perm=config.num_perm,
            weights=_LSH_WEIGHTS,
        )
    except ValueError:  # thresholds near 1 leave fewer than 2 bands: use the narrowest legal one
        return MinHashLSH(num_perm=config.num_perm, params=(2, config.num_perm // 2))


def _signatures(shingle_sets: Iterable[list[bytes]], num_perm: int) -> list[LeanMinHash]:
    # CRC32: deterministic across runs (unlike hash()) and far faster than the default SHA1.
    minhashes = MinHash.generator(
        shingle_sets, num_perm=num_perm, seed=_MINHASH_SEED, hashfunc=zlib.crc32
    )
    return [LeanMinHash(m) for m in minhashes]


def split_name(name: str) -> list[str]:
    """``getUserID_v2`` → ``['get', 'user', 'id', 'v2']``."""
    return _WORD.findall(_CAMEL.sub(" ", name).replace("_", " ").lower())


def _shingles(tool: ToolSpec, size: int) -> list[bytes]:
    """Word ``size``-grams of name + description (the whole text when shorter)."""
    words = split_name(tool.name) + _WORD.findall(tool.description.lower())
    if len(words) <= size:
        return [" ".join(words).encode()]
    return [" ".join(words[k : k + size]).encode() for k in range(len(words) - size + 1)]


def _collapse(tools: list[ToolSpec], sets: _UnionFind) -> tuple[list[ToolSpec], list[list[str]]]:
    """One keeper per group, carrying the others' provenance; keepers in input order."""
    chosen: list[tuple[int, ToolSpec, list[str]]] = []
    for members in sets.groups().values():
        ranked = sorted(members, key=lambda i: _preference(tools[i]))
        keeper = tools[ranked[0]]
        if len(ranked) > 1:
            keeper = keeper.model_copy(
                update={"merged_from": _provenance(keeper, [tools[i] for i in ranked[1:]])}
            )
        chosen.append((ranked[0], keeper, [tools[i].tool_id for i in ranked]))
    chosen.sort(key=lambda item: item[0])
    return [tool for _, tool, _ in chosen], [ids for _, _, ids in chosen if len(ids) > 1]


def _provenance(keeper: ToolSpec, merged: list[ToolSpec]) -> list[str]:
    refs = list(keeper.merged_from)
    for tool in merged:
        refs += [tool.source_ref, *tool.merged_from]
    return list(dict.fromkeys(refs))
