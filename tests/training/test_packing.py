"""Packing: examples share rows without seeing each other, labels stay inside their example."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.training.chat import render_with_mask
from kimi_pipeline.training.loop import all_token_labels, next_token_loss
from kimi_pipeline.training.packing import (
    IGNORE_INDEX,
    PackingConfig,
    best_fit_decreasing,
    block_causal_mask,
    collate_packed,
    forward_packed,
    has_continuations,
    pack,
    pack_examples,
)
from tests.training import TOOLS, conversation, make_tokenizer

VOCAB = 96
IMPLS = ["sdpa", "eager"]


def tiny_llama(impl: str) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        attn_implementation=impl,
    )
    assert config.use_cache  # the default that silently disables packed masks
    return LlamaForCausalLM(config).eval()


def example(rng: random.Random, length: int, all_labels: bool = False) -> dict[str, list[int]]:
    ids = [rng.randrange(3, VOCAB) for _ in range(length)]
    if all_labels:  # pretraining-style: every token is a target, the first one included
        return {"input_ids": ids, "labels": list(ids)}
    labels = [t if rng.random() < 0.6 else IGNORE_INDEX for t in ids]
    labels[0] = IGNORE_INDEX  # BOS, as render_with_mask produces
    return {"input_ids": ids, "labels": labels}


def examples(n: int, seed: int = 0, lo: int = 2, hi: int = 20, **kw) -> list[dict]:
    rng = random.Random(seed)
    return [example(rng, rng.randint(lo, hi), **kw) for _ in range(n)]


def split(row: dict, key: str) -> list[list[int]]:
    out, start = [], 0
    for n in row["lengths"]:
        out.append(row[key][start:start + n])
        start += n
    return out


def alone_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("explicit_mask", [False, True])
@pytest.mark.parametrize("impl", IMPLS)
def test_logits_inside_a_packed_row_equal_the_example_alone(impl, explicit_mask):
    model = tiny_llama(impl)
    rows, _ = pack(examples(12), PackingConfig(seq_len=40, pad_token_id=1))
    assert any(len(r["lengths"]) > 2 for r in rows)  # really packed
    with torch.no_grad():
        packed = forward_packed(model, collate_packed(rows), explicit_mask=explicit_mask).logits
    for b, row in enumerate(rows):
        start = 0
        for ids in split(row, "input_ids"):
            got = packed[b, start:start + len(ids)]
            torch.testing.assert_close(got, alone_logits(model, ids), atol=1e-5, rtol=0)
            start += len(ids)


@pytest.mark.parametrize("impl", IMPLS)
def test_packed_loss_equals_token_weighted_losses_alone(impl):
    model = tiny_llama(impl)
    data = examples(10, seed=1, all_labels=True)  # first labels are targets: the boundary matters
    rows, _ = pack(data, PackingConfig(seq_len=48))
    with torch.no_grad():
        packed_loss = forward_packed(model, collate_packed(rows)).loss
        total, count = 0.0, 0
        for ex in data:
            out = model(torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]]))
            n = sum(label != IGNORE_INDEX for label in ex["labels"][1:])  # HF shifts by one
            total, count = total + out.loss.item() * n, count + n
    assert packed_loss.item() == pytest.approx(total / count, abs=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_changing_one_example_leaves_its_row_neighbours_unchanged(impl):
    model = tiny_llama(impl)
    rows, _ = pack(examples(3, lo=8, hi=10), PackingConfig(seq_len=32))
    (row,) = rows
    edited = {**row, "input_ids": list(row["input_ids"])}
    first, second = row["lengths"][0], row["lengths"][1]
    edited["input_ids"][first:first + second] = [5] * second  # rewrite the middle example
    with torch.no_grad():
        before, after = (
            forward_packed(model, collate_packed([r])).logits[0] for r in (row, edited)
        )
    end = first + second
    torch.testing.assert_close(after[:first], before[:first], atol=1e-6, rtol=0)
    torch.testing.assert_close(after[end:], before[end:], atol=1e-6, rtol=0)
    assert not torch.allclose(after[first:end], before[first:end], atol=1e-3)


def test_block_mask_is_causal_within_examples_and_padding():
    mask = block_causal_mask(torch.tensor([[0, 1, 2, 0, 1, 0, 0, 1]]))
    allowed = (mask[0, 0] == 0).int()
    expected = torch.zeros(8, 8, dtype=torch.int)
    for lo, hi in [(0, 3), (3, 5), (5, 6), (6, 8)]:
        expected[lo:hi, lo:hi] = torch.ones(hi - lo, hi - lo, dtype=torch.int).tril()
    assert torch.equal(allowed, expected)


def realistic_lengths(n: int, seed: int = 0) -> list[int]:
    """Log-normal around ~450 tokens, long tail to the context: SFT agent conversations."""
    rng = random.Random(seed)
    return [max(16, min(4096, int(rng.lognormvariate(6.1, 0.7)))) for _ in range(n)]


def test_padding_efficiency_on_realistic_lengths():
    data = [{"input_ids": [7] * n, "labels": [IGNORE_INDEX] * n} for n in realistic_lengths(3000)]
    _, stats = pack(data, PackingConfig(seq_len=4096, buffer_size=1000))
    assert stats.efficiency > 0.9, stats


def test_stats_add_up_and_every_example_lands_once_unchanged_but_its_first_label():
    data = examples(200, seed=3, lo=1, hi=70, all_labels=True)
    rows, stats = pack(data, PackingConfig(seq_len=64, buffer_size=50, pad_token_id=2))
    assert stats.examples == 200 and stats.rows == len(rows)
    assert stats.truncated_examples == sum(len(e["input_ids"]) > 64 for e in data) > 0
    assert stats.real_tokens == sum(min(len(e["input_ids"]), 64) for e in data)
    assert stats.real_tokens + stats.padding_tokens == 64 * len(rows)
    assert stats.label_tokens == sum(sum(x != IGNORE_INDEX for x in r["labels"]) for r in rows)
    assert stats.as_dict()["efficiency"] == stats.real_tokens / (64 * len(rows))
    expected = Counter()
    for e in data:
        ids, labels = e["input_ids"][:64], e["labels"][:64]
        expected[(tuple(ids), (IGNORE_INDEX, *labels[1:]))] += 1
    got = Counter()
    for r in rows:
        for ids, labels in zip(split(r, "input_ids"), split(r, "labels"), strict=True):
            got[(tuple(ids), tuple(labels))] += 1
        real = sum(r["lengths"])
        assert set(r["input_ids"][real:]) <= {2} and set(r["labels"][real:]) <= {IGNORE_INDEX}
    assert got == expected


def test_labels_never_cross_a_boundary_and_positions_restart():
    rows, _ = pack(examples(100, seed=4, all_labels=True), PackingConfig(seq_len=50))
    for r in rows:
        start = 0
        for n in r["lengths"]:
            assert r["labels"][start] == IGNORE_INDEX  # the target "predicted" by the previous one
            assert r["position_ids"][start:start + n] == list(range(n))
            start += n
        assert r["position_ids"][start:] == list(range(50 - start))


def test_rendered_conversations_already_start_with_an_unlabelled_bos():
    tokenizer = make_tokenizer()
    rendered = render_with_mask(tokenizer, conversation("Ana"), TOOLS)
    assert rendered["input_ids"][0] == tokenizer.bos_token_id
    assert rendered["labels"][0] == IGNORE_INDEX
    (row,), _ = pack([rendered], PackingConfig(seq_len=len(rendered["input_ids"])))
    assert row["labels"] == rendered["labels"]  # nothing to change for real chat data


def test_packing_is_deterministic_given_the_seed():
    data = examples(300, seed=5)
    config = PackingConfig(seq_len=64, buffer_size=100, seed=11)
    assert pack(data, config)[0] == pack(data, config)[0]
    assert pack(data, config)[0] != pack(data, config.model_copy(update={"seed": 12}))[0]


def test_packing_streams_one_buffer_at_a_time():
    consumed = []

    def stream():
        for i, e in enumerate(examples(1000, seed=6)):
            consumed.append(i)
            yield e

    first = next(pack_examples(stream(), PackingConfig(seq_len=64, buffer_size=100)))
    assert len(first["input_ids"]) == 64
    assert len(consumed) <= 101


def test_best_fit_decreasing_fills_bins_without_overflow():
    lengths = realistic_lengths(500, seed=7)
    bins = best_fit_decreasing(lengths, 4096)
    assert sorted(i for b in bins for i in b) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 4096 for b in bins)
    assert len(bins) <= -(-sum(lengths) // 4096) + 2  # within 2 bins of the lower bound
    assert best_fit_decreasing([5, 3, 2, 4], 7) == [[0, 2], [3, 1]]  # longest first: 5+2, 4+3


def test_collate_stacks_rows_into_long_tensors():
    rows, _ = pack(examples(20), PackingConfig(seq_len=32))
    batch = collate_packed(rows)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert all(t.shape == (len(rows), 32) and t.dtype == torch.long for t in batch.values())
    with pytest.raises(ValueError, match="same length"):
        collate_packed([rows[0], {**rows[1], "input_ids": rows[1]["input_ids"][:-1]}])


def _sparse_labels(data: list[dict], seed: int) -> list[dict]:
    """Assistant-SFT-like rows: labels on a few short runs, most positions unlabelled."""
    rng = random.Random(seed)
    out = []
    for ex in data:
        labels = [IGNORE_INDEX] * len(ex["input_ids"])
        start = rng.randrange(1, max(2, len(labels) - 3))
        labels[start:start + 3] = ex["input_ids"][start:start + 3]
        out.append({"input_ids": ex["input_ids"], "labels": labels})
    return out


def test_loss_on_labelled_logits_only_equals_the_full_loss_and_its_gradients():
    model = tiny_llama("sdpa").train()
    rows, _ = pack(_sparse_labels(examples(16, seed=3), seed=3), PackingConfig(seq_len=48))
    batch = {k: v[:2] for k, v in collate_packed(rows).items()  # a micro-batch of two rows
             if k in ("input_ids", "labels", "position_ids")}
    labelled = (batch["labels"][:, 1:] != IGNORE_INDEX).any(dim=0)
    assert 0 < int(labelled.sum()) < labelled.numel() // 2  # most logits really are skipped
    losses, grads = [], []
    for labelled_only in (False, True):
        model.zero_grad()
        loss = next_token_loss(model, batch, labelled_only)
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert losses[1] == pytest.approx(losses[0], rel=1e-6)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-5)


def test_loss_of_a_batch_without_labels_is_zero_and_backpropagates():
    model = tiny_llama("sdpa").train()
    ids = torch.randint(3, VOCAB, (2, 8))
    batch = {"input_ids": ids, "position_ids": torch.arange(8).repeat(2, 1),
             "labels": torch.full_like(ids, IGNORE_INDEX)}
    loss = next_token_loss(model, batch, labelled_only=True)
    loss.backward()
    assert loss.item() == 0.0


def test_all_token_labels_cover_every_token_but_example_starts_and_padding():
    rows, _ = pack(examples(9, seed=4), PackingConfig(seq_len=48, pad_token_id=1))
    batch = collate_packed(rows)
    labels = all_token_labels(batch, pad_id=1)
    for b, row in enumerate(rows):
        start = 0
        for n in row["lengths"]:
            assert labels[b, start] == IGNORE_INDEX  # never predicted from the previous example
            assert labels[b, start + 1:start + n].tolist() == row["input_ids"][start + 1:start + n]
            start += n
        assert (labels[b, start:] == IGNORE_INDEX).all()  # padding


def test_a_model_without_logits_to_keep_gets_the_full_head():
    class OldRemoteCode(torch.nn.Module):  # forward signature of pre-4.45 remote-code models
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, position_ids=None, labels=None, use_cache=None):
            return self.model(input_ids=input_ids, position_ids=position_ids, labels=labels,
                              use_cache=use_cache)

    model = tiny_llama("sdpa")
    rows, _ = pack(_sparse_labels(examples(4, seed=5), seed=5), PackingConfig(seq_len=48))
    batch = {k: v for k, v in collate_packed(rows).items()
             if k in ("input_ids", "labels", "position_ids")}
    with torch.no_grad():
        expected = model(**batch, use_cache=False).loss
        assert next_token_loss(OldRemoteCode(model), batch, labelled_only=True) == expected


# ------------------------------------------------------------------ shared prefixes


def agent_examples(n_agents: int = 3, per_agent: int = 4, prefix: int = 24,
                   seed: int = 0) -> list[dict]:
    """Examples that begin with their agent's label-free prefix (system prompt and tools),
    then a continuation with labels, as rendered tool-use conversations do."""
    rng = random.Random(seed)
    data = []
    for _ in range(n_agents):
        head = [1] + [rng.randrange(3, VOCAB) for _ in range(prefix - 1)]
        for _ in range(per_agent):
            ex = example(rng, rng.randint(4, 14))
            ex["labels"][:2] = [IGNORE_INDEX, IGNORE_INDEX]  # "<|user|> …" before any label
            data.append({"input_ids": head + ex["input_ids"],
                         "labels": [IGNORE_INDEX] * prefix + ex["labels"]})
    rng.shuffle(data)
    return data


SHARED = PackingConfig(seq_len=64, share_prefixes=True, min_shared_prefix=8)


def test_shared_prefix_rows_hold_each_prefix_once_and_every_label():
    data = agent_examples()
    plain_rows, plain = pack(data, SHARED.model_copy(update={"share_prefixes": False}))
    rows, shared = pack(data, SHARED)
    assert has_continuations(collate_packed(rows)["position_ids"])
    assert shared.label_tokens == plain.label_tokens  # nothing dropped, nothing counted twice
    assert shared.shared_prefix_tokens > 0
    assert shared.real_tokens == plain.real_tokens - shared.shared_prefix_tokens
    assert len(rows) < len(plain_rows)


@pytest.mark.parametrize("impl", IMPLS)
def test_shared_prefix_loss_and_gradients_equal_the_examples_alone(impl):
    data = agent_examples(seed=1)
    rows, _ = pack(data, SHARED)
    batch = collate_packed(rows)
    assert has_continuations(batch["position_ids"])
    model = tiny_llama(impl).train()
    alone_sum, count = 0.0, 0
    model.zero_grad()
    for ex in data:  # reference: each example on its own, token-weighted
        logits = model(torch.tensor([ex["input_ids"]])).logits[0, :-1]
        targets = torch.tensor(ex["labels"][1:])
        loss = torch.nn.functional.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX,
                                                 reduction="sum")
        alone_sum, count = alone_sum + loss, count + int((targets != IGNORE_INDEX).sum())
    (alone_sum / count).backward()
    expected = torch.cat([p.grad.flatten() for p in model.parameters()])
    for labelled_only in (False, True):
        model.zero_grad()
        loss = next_token_loss(model, batch, labelled_only)
        loss.backward()
        assert loss.item() == pytest.approx((alone_sum / count).item(), rel=1e-5)
        got = torch.cat([p.grad.flatten() for p in model.parameters()])
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-4)


def test_only_a_long_enough_label_free_prefix_is_shared():
    data = agent_examples(prefix=24)
    _, shared = pack(data, SHARED.model_copy(update={"min_shared_prefix": 30}))
    assert shared.shared_prefix_tokens == 0  # the common prefix (24 + a few) is too short
    labelled_early = [{"input_ids": e["input_ids"], "labels": [IGNORE_INDEX, e["input_ids"][1],
                       *e["labels"][2:]]} for e in data]  # a label at token 1: nothing to share
    rows, stats = pack(labelled_early, SHARED)
    assert stats.shared_prefix_tokens == 0
    assert not has_continuations(collate_packed(rows)["position_ids"])


def test_block_mask_lets_continuations_see_their_prefix_only():
    # prefix (0-2) + first continuation (3-4, contiguous) + second continuation (3-4)
    # + a whole example (0-1) + padding (0-1)
    positions = torch.tensor([[0, 1, 2, 3, 4, 3, 4, 0, 1, 0, 1]])
    allowed = (block_causal_mask(positions)[0, 0] == 0).int()
    expected = torch.zeros(11, 11, dtype=torch.int)
    expected[0:5, 0:5] = torch.ones(5, 5, dtype=torch.int).tril()  # prefix + continuation 1
    expected[5:7, 0:3] = 1  # continuation 2 sees the prefix, not continuation 1
    expected[5:7, 5:7] = torch.ones(2, 2, dtype=torch.int).tril()
    for lo, hi in [(7, 9), (9, 11)]:
        expected[lo:hi, lo:hi] = torch.ones(2, 2, dtype=torch.int).tril()
    assert torch.equal(allowed, expected)
    assert has_continuations(positions)
    assert not has_continuations(torch.tensor([[0, 1, 2, 0, 1, 0]]))


def test_all_token_labels_skip_the_first_token_of_a_continuation():
    batch = {"input_ids": torch.arange(10, 21)[None],
             "position_ids": torch.tensor([[0, 1, 2, 3, 4, 3, 4, 0, 1, 0, 1]])}
    labels = all_token_labels(batch, pad_id=0)[0].tolist()
    skipped = [i for i, label in enumerate(labels) if label == IGNORE_INDEX]
    assert skipped == [0, 5, 7, 9]  # row start, continuation 2, example, padding block


def test_copies_of_one_example_are_not_packed_behind_one_prefix():
    data = agent_examples(n_agents=1, per_agent=1) * 6  # a demonstration repeated to its share
    rows, stats = pack(data, SHARED)
    assert stats.shared_prefix_tokens == 0 and stats.examples == 6
    assert not has_continuations(collate_packed(rows)["position_ids"])  # whole copies, as before
