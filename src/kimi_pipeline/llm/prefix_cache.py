"""Keys and values of prompts already prefilled, reused by later prompts that start with them.

An agent episode asks the policy for one move at a time, and each move's prompt is the previous
move's prompt plus the model's reply, the tool results and the user's turn, all behind the same
system prompt and tools block: on the default evaluation the agent re-reads ~10x more prompt
tokens than it samples. ``PrefixCache`` keeps each prefilled prompt's per-layer keys and values
(the fast sampler's layout: keys ``[kv heads, head_dim, tokens]``, values ``[kv heads, tokens,
head_dim]``); the sampler then prefills only what a new prompt adds after its longest cached
prefix (vLLM / SGLang call this automatic prefix caching; here it is a flat list, enough for
the tens of prompts an evaluation keeps in flight).

- **Matching** is on token ids: the longest common prefix of the prompt with any entry, so
  prompts that share only the system prompt and tools reuse those too. At least one prompt
  token is always recomputed (its logits start the sampling).
- **An entry that is a prefix of a newer one is dropped** (the newer one serves every prompt the
  older one could): a growing episode holds one entry, not one per move.
- **Eviction**: least recently used first, once the entries hold more than ``max_bytes``.
- **Extensions**: a prefill records what it computed as an ``Extension`` (the prompt, how many
  tokens it reused, the keys/values of the rest). Rebuilding the full entry from the cached
  prefix keeps what a forked sampling process sends back to its parent small: the new tokens'
  keys and values, not the whole prompt's.

Reuse changes nothing but floating-point rounding: the same keys and values are computed, in
chunks instead of at once. The cache belongs to one set of weights: the sampler clears it when
the model changes (RL updates the policy in place).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch


@dataclass
class Extension:
    """What one prefill computed: ``prompt`` of which the first ``reused`` tokens came from the
    cache, and the keys / values of the rest (per layer)."""

    prompt: tuple[int, ...]
    reused: int
    keys: list[torch.Tensor]  # per layer [kv heads, head_dim, len(prompt) - reused], own memory
    values: list[torch.Tensor]  # per layer [kv heads, len(prompt) - reused, head_dim]


@dataclass
class PrefixStats:
    """Lookups, the prompt tokens they covered and how many of those came from the cache."""

    lookups: int = 0
    hits: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    evictions: int = 0


@dataclass
class _Entry:
    ids: torch.Tensor  # the prompt's token ids, int64 [n]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))


class PrefixCache:
    """Prefilled prompts' keys and values, at most ``max_bytes`` of them (LRU)."""

    def __init__(self, max_bytes: int):
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.stats = PrefixStats()
        self._entries: OrderedDict[int, _Entry] = OrderedDict()  # oldest use first
        self._next = 0

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, prompt: list[int] | tuple[int, ...]
               ) -> tuple[int, list[torch.Tensor], list[torch.Tensor]]:
        """How many leading tokens of ``prompt`` to reuse (at most ``len(prompt) - 1``) and the
        per-layer keys / values of the entry that holds them (empty lists when none)."""
        self.stats.lookups += 1
        self.stats.prompt_tokens += len(prompt)
        length, key = self._longest(prompt, limit=len(prompt) - 1)
        if not length:
            return 0, [], []
        self._entries.move_to_end(key)
        self.stats.hits += 1
        self.stats.reused_tokens += length
        entry = self._entries[key]
        return length, entry.keys, entry.values

    def add(self, extension: Extension) -> None:
        """Store the full prompt of ``extension``: its cached first ``reused`` tokens (when the
        cache still holds them) followed by the computed rest."""
        prompt, reused = extension.prompt, extension.reused
        keys, values = extension.keys, extension.values
        if reused:
            length, key = self._longest(prompt, limit=reused)
            if length < reused:  # evicted meanwhile: the prompt cannot be rebuilt
                return
            base = self._entries[key]
            keys = [torch.cat((b[..., :reused], k), dim=-1) for b, k in zip(base.keys, keys)]
            values = [torch.cat((b[:, :reused], v), dim=1) for b, v in zip(base.values, values)]
        ids = torch.tensor(prompt, dtype=torch.long)
        for key in [key for key, e in self._entries.items() if _covers(ids, e.ids)]:
            del self._entries[key]  # a prefix of the new entry: it serves nothing more
        self._entries[self._next] = _Entry(ids, keys, values)
        self._next += 1
        while self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)
            self.stats.evictions += 1

    def _longest(self, prompt, limit: int) -> tuple[int, int]:
        """The longest common prefix (capped at ``limit``) of ``prompt`` with any entry, and
        that entry's key."""
        if limit <= 0 or not self._entries:
            return 0, -1
        ids = torch.tensor(prompt[:limit], dtype=torch.long)
        best, best_key = 0, -1
        for key, entry in self._entries.items():
            n = min(len(ids), len(entry.ids))
            if n <= best:
                continue
            differ = torch.nonzero(ids[:n] != entry.ids[:n])
            common = int(differ[0, 0]) if len(differ) else n
            if common > best:
                best, best_key = common, key
        return best, best_key


def _covers(ids: torch.Tensor, prefix: torch.Tensor) -> bool:
    """``prefix`` is a prefix of ``ids`` (equal counts too)."""
    return len(prefix) <= len(ids) and bool(torch.equal(ids[:len(prefix)], prefix))
