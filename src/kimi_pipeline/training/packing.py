"""Pack tokenised SFT examples into fixed-length rows, with no attention across examples.

Short conversations padded to ``seq_len`` one per row waste most of the compute on padding, so
several examples share a row. Rows are filled by best-fit decreasing bin packing over a buffer
of ``buffer_size`` examples (streaming: memory is bounded by the buffer, not the dataset), after
a seeded shuffle; the rows of each buffer are shuffled again so long and short rows mix.

Isolation. Each row carries ``position_ids`` that restart at 0 for every example and for the
trailing padding. Transformers (5.x) reads such position ids as packed sequences and builds a
block-diagonal causal mask for ``sdpa`` and ``eager`` attention (``masking_utils.
find_packed_sequence_indices``), but ONLY when ``attention_mask`` is None and no cache is
passed. Llama-style configs default to ``use_cache=True``, which makes the model create an empty
``DynamicCache`` even in training mode, and then the packed mask is silently skipped: every
example attends to the ones before it (measured: logit differences of ~0.4 on a tiny Llama).
``forward_packed`` therefore always passes ``use_cache=False``; with ``explicit_mask=True`` it
also passes the 4-D block-diagonal additive mask built here, which works whatever the cache or
attention implementation (costs ``batch * seq_len**2`` floats).

Labels. Hugging Face shifts labels inside the loss: logits at position i are scored against
labels[i+1]. The last token of example A thus "predicts" the first label of example B. That
label is always set to -100 here, which changes nothing relative to training on B alone (an
example's first label is never a target: nothing precedes it), and in our chat data it is the
BOS token, already -100. Padding is labelled -100 and sits in its own attention block.

Truncation. An example longer than ``seq_len`` keeps its first ``seq_len`` tokens (system prompt,
user request and the earliest assistant turns) and is counted in ``PackingStats.
truncated_examples``; dropping it instead would lose the whole conversation. A stage that sees
many truncations should raise ``seq_len``.

Shared prefixes (``share_prefixes``). Tool-use examples of one agent begin with the same
system prompt and tools block: on the default SFT data 567 of an example's ~870 tokens, with
~6 examples per agent. Such examples are packed as the prefix once, followed by each one's
continuation; a continuation's positions go on from the prefix (``p, p+1, …``) and it attends
to the prefix and to itself only, so every example's logits, loss and gradients are exactly
those of the example alone, while the prefix runs once instead of once per example. Only a
prefix without labels is shared (it ends at least one token before each member's first
label), so each continuation starts with an unlabelled token and no label is counted once
for several examples. In ``position_ids`` a block that restarts at 0 is a root (a prefix or a
whole example); a block that restarts at ``p > 0`` is a continuation of the root before it
and sees that root's positions ``< p`` (``block_causal_mask``). Transformers' own detection of
packed rows reads every restart as a separate sequence, so ``forward_packed`` passes the
explicit mask whenever a row has continuations.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any, TypedDict

import torch
from pydantic import BaseModel, ConfigDict, Field

IGNORE_INDEX = -100


class PackingConfig(BaseModel):
    """How examples are packed into rows."""

    model_config = ConfigDict(extra="forbid")

    seq_len: int = Field(..., ge=2, description="Tokens per packed row (the training context).")
    buffer_size: int = Field(
        2048,
        ge=1,
        description="Examples packed together at a time; larger packs tighter, uses more memory.",
    )
    seed: int = Field(0, description="Seed of the shuffles of examples and of rows.")
    pad_token_id: int = Field(
        0, ge=0, description="Input id of the padding at the end of a row (the tokenizer's pad)."
    )
    share_prefixes: bool = Field(
        False,
        description="Pack examples that begin with the same label-free prefix (one agent's "
        "system prompt and tools) as the prefix once plus each one's continuation (module "
        "docstring): the same loss and gradients for fewer tokens run.",
    )
    min_shared_prefix: int = Field(
        64, ge=1, description="Shortest common prefix, in tokens, worth sharing."
    )


class PackedRow(TypedDict):
    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    lengths: list[int]  # tokens of each unit in the row, in order (padding excluded): an
    # example, or a shared prefix with the continuations that follow it


@dataclass
class PackingStats:
    """Running counts (examples as each buffer is read, tokens as rows are yielded).

    ``efficiency`` (real / all tokens) is what the SFT report prints.
    """

    examples: int = 0
    rows: int = 0
    real_tokens: int = 0
    padding_tokens: int = 0
    truncated_examples: int = 0
    label_tokens: int = 0  # tokens with a label (assistant tokens), i.e. loss targets
    shared_prefix_tokens: int = 0  # tokens not run because a continuation reused a prefix

    @property
    def efficiency(self) -> float:
        total = self.real_tokens + self.padding_tokens
        return self.real_tokens / total if total else 0.0

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "efficiency": self.efficiency}


def pack_examples(
    examples: Iterable[Mapping[str, Sequence[int]]],
    config: PackingConfig,
    stats: PackingStats | None = None,
) -> Iterator[PackedRow]:
    """Yield packed rows from examples with ``input_ids`` and ``labels``; updates ``stats``."""
    stats = stats if stats is not None else PackingStats()
    rng = random.Random(config.seed)
    stream = iter(examples)
    while buffer := list(islice(stream, config.buffer_size)):
        rng.shuffle(buffer)
        items = [_prepare(example, config.seq_len, stats) for example in buffer]
        units = (_shared_units(items, config, stats) if config.share_prefixes
                 else [(ids, labels, list(range(len(ids)))) for ids, labels in items])
        bins = best_fit_decreasing([len(ids) for ids, _, _ in units], config.seq_len)
        rng.shuffle(bins)
        for members in bins:
            row = _row([units[i] for i in members], config)
            _count(row, stats)
            yield row


def pack(
    examples: Iterable[Mapping[str, Sequence[int]]], config: PackingConfig
) -> tuple[list[PackedRow], PackingStats]:
    """All rows at once, with their statistics."""
    stats = PackingStats()
    rows = list(pack_examples(examples, config, stats))
    return rows, stats


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices of ``lengths`` in bins of ``capacity``: longest first, each where it fits best."""
    free: list[int] = []  # remaining room of open bins, ascending
    owner: list[int] = []  # bin index of each entry of ``free``
    bins: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        k = bisect_left(free, lengths[i])
        if k == len(free):
            bins.append([i])
            b, room = len(bins) - 1, capacity - lengths[i]
        else:
            b, room = owner.pop(k), free.pop(k) - lengths[i]
            bins[b].append(i)
        if room > 0:
            k = bisect_left(free, room)
            free.insert(k, room)
            owner.insert(k, b)
    return bins


def _prepare(example: Mapping[str, Sequence[int]], seq_len: int, stats: PackingStats):
    ids, labels = list(example["input_ids"]), list(example["labels"])
    if len(ids) != len(labels) or not ids:
        raise ValueError(
            f"an example needs non-empty input_ids and labels of equal length; "
            f"got {len(ids)} and {len(labels)}"
        )
    stats.examples += 1
    if len(ids) > seq_len:
        stats.truncated_examples += 1
        ids, labels = ids[:seq_len], labels[:seq_len]
    labels[0] = IGNORE_INDEX  # never a target across a boundary (see module docstring)
    return ids, labels


def _label_free(labels: list[int]) -> int:
    """Tokens before the first label, less one: the longest prefix of an example that can be
    shared, leaving its continuation to start with an unlabelled token."""
    first = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), len(labels))
    return max(first - 1, 0)


def _common(a: list[int], b: list[int], limit: int) -> int:
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


Unit = tuple[list[int], list[int], list[int]]  # input ids, labels, position ids


def _shared_units(items: list[tuple[list[int], list[int]]], config: PackingConfig,
                  stats: PackingStats) -> list[Unit]:
    """Examples grouped by a common label-free prefix (neighbours in sorted order), each group
    cut into units of one prefix and as many continuations as fit in ``seq_len``. Identical
    examples are never grouped: a row of one answer's copies would be one example's step."""
    order = sorted(range(len(items)), key=lambda i: items[i][0])
    groups: list[tuple[int, list[int]]] = []  # (shared prefix length, members)
    for i in order:
        ids, labels = items[i]
        if groups and ids == items[groups[-1][1][-1]][0]:
            groups.append((0, [i]))  # a repeat (a demonstration's copies) stays on its own,
            continue  # spread over the run by the row shuffle as without sharing
        if groups:
            shared, members = groups[-1]
            previous = items[members[-1]][0]
            common = _common(previous, ids, min(shared, _label_free(labels), len(previous)))
            if common >= config.min_shared_prefix:
                groups[-1] = (common, members + [i])
                continue
        groups.append((_label_free(labels), [i]))
    units: list[Unit] = []
    for shared, members in groups:
        if len(members) == 1 or shared < config.min_shared_prefix:
            units += [(items[i][0], items[i][1], list(range(len(items[i][0])))) for i in members]
            continue
        prefix = items[members[0]][0][:shared]
        rests = [(items[i][0][shared:], items[i][1][shared:]) for i in members]
        for together in best_fit_decreasing([len(ids) for ids, _ in rests],
                                            config.seq_len - shared):
            ids, labels, positions = list(prefix), [IGNORE_INDEX] * shared, list(range(shared))
            for j in together:
                rest_ids, rest_labels = rests[j]
                ids += rest_ids
                labels += [IGNORE_INDEX] + rest_labels[1:]  # never predicted across a boundary
                positions += range(shared, shared + len(rest_ids))
            stats.shared_prefix_tokens += shared * (len(together) - 1)
            units.append((ids, labels, positions))
    return units


def _row(units: list[Unit], config: PackingConfig) -> PackedRow:
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for ids, labs, positions in units:
        input_ids += ids
        labels += labs
        position_ids += positions
    pad = config.seq_len - len(input_ids)
    return {
        "input_ids": input_ids + [config.pad_token_id] * pad,
        "labels": labels + [IGNORE_INDEX] * pad,
        "position_ids": position_ids + list(range(pad)),  # padding is a block of its own
        "lengths": [len(ids) for ids, _, _ in units],
    }


def _count(row: PackedRow, stats: PackingStats) -> None:
    real = sum(row["lengths"])
    stats.rows += 1
    stats.real_tokens += real
    stats.padding_tokens += len(row["input_ids"]) - real
    stats.label_tokens += sum(label != IGNORE_INDEX for label in row["labels"])


def collate_packed(rows: Sequence[Mapping[str, Sequence[int]]]) -> dict[str, torch.Tensor]:
    """Stack rows into ``input_ids``, ``labels``, ``position_ids`` tensors of [batch, seq_len]."""
    if len({len(row["input_ids"]) for row in rows}) != 1:
        raise ValueError("packed rows of one batch must all have the same length")
    keys = ("input_ids", "labels", "position_ids")
    return {key: torch.tensor([list(row[key]) for row in rows], dtype=torch.long) for key in keys}


def block_starts(position_ids: torch.Tensor) -> torch.Tensor:
    """Where a block of consecutive positions begins (an example, a continuation after a
    shared prefix, the padding); every row's first token is one."""
    starts = torch.diff(position_ids, dim=-1, prepend=position_ids[:, :1] - 1) != 1
    starts[:, 0] = True
    return starts


def _blocks(position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per token: its block (a run of consecutive positions), the root block it belongs to
    (the last block that restarted at position 0) and its own block's first position."""
    column = torch.arange(position_ids.shape[-1], device=position_ids.device)
    starts = block_starts(position_ids)
    block = starts.cumsum(-1)
    root = torch.where(starts & (position_ids == 0), block, 0)
    root[:, 0] = block[:, 0]
    first = torch.where(starts, column, 0).cummax(-1).values
    return block, root.cummax(-1).values, position_ids.gather(-1, first)


def has_continuations(position_ids: torch.Tensor) -> bool:
    """Whether some block restarts at a position > 0 (a continuation of a shared prefix)."""
    restarts = block_starts(position_ids)[:, 1:]
    return bool((restarts & (position_ids[:, 1:] != 0)).any())


def block_causal_mask(position_ids: torch.Tensor, dtype: torch.dtype = torch.float32):
    """Additive [batch, 1, seq, seq] mask: causal within each block of restarting positions;
    a continuation (a block restarting at ``p > 0``) also sees its root's positions ``< p``."""
    block, root, first = _blocks(position_ids)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool, device=position_ids.device).tril()
    own = block[:, :, None] == block[:, None, :]
    prefix = (block[:, None, :] == root[:, :, None]) & (
        position_ids[:, None, :] < first[:, :, None])
    allowed = (own | prefix) & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=position_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def forward_packed(model: Any, batch: Mapping[str, torch.Tensor], explicit_mask: bool = False,
                   **model_kwargs: Any):
    """Run a causal LM on a packed batch with examples isolated (see module docstring; rows
    with shared prefixes always get the explicit mask); ``model_kwargs`` go to the model's
    forward as they are (e.g. ``logits_to_keep``)."""
    kwargs: dict[str, Any] = {**model_kwargs, "use_cache": False}
    if explicit_mask or has_continuations(batch["position_ids"]):
        kwargs["attention_mask"] = block_causal_mask(batch["position_ids"], model.dtype)
    return model(
        input_ids=batch["input_ids"],
        position_ids=batch["position_ids"],
        labels=batch.get("labels"),
        **kwargs,
    )
