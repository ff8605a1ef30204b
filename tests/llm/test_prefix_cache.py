"""llm.prefix_cache and the sampler's reuse of it: a prompt that extends a cached one prefills
only its new tokens and samples what a cold prefill samples; entries, eviction, weight changes
and forked parts."""

from __future__ import annotations

import pytest
import torch

from kimi_pipeline.llm.decode import Sampler
from kimi_pipeline.llm.prefix_cache import Extension, PrefixCache
from tests.llm.test_decode import gen, hf_greedy, llama, teacher_forced

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/llm/conftest.py

SYSTEM = list(range(10, 40))  # a shared "system prompt and tools"
MOVE_1 = [SYSTEM + [50, 51, 52], SYSTEM + [60, 61]]
MOVE_2 = [MOVE_1[0] + [70, 71, 72, 73], MOVE_1[1] + [80, 81, 82]]  # each extends its move 1


def extension(prompt: list[int], layers: int = 2, reused: int = 0) -> Extension:
    n = len(prompt) - reused
    keys = [torch.full((2, 4, n), float(i)) for i in range(layers)]
    values = [torch.full((2, n, 4), float(i)) for i in range(layers)]
    return Extension(tuple(prompt), reused, keys, values)


def test_lookup_finds_the_longest_common_prefix_and_leaves_one_token_to_run():
    cache = PrefixCache(1 << 20)
    cache.add(extension([1, 2, 3, 4, 5]))
    cache.add(extension([1, 2, 9]))
    assert cache.lookup([1, 2, 3, 4, 5, 6, 7])[0] == 5
    assert cache.lookup([1, 2, 3, 8])[0] == 3
    assert cache.lookup([1, 2, 3, 4, 5])[0] == 4  # the last token's logits start the sampling
    assert cache.lookup([7, 1, 2])[0] == 0
    assert cache.stats.hits == 3 and cache.stats.reused_tokens == 12


def test_an_entry_extended_replaces_its_prefix_and_is_rebuilt_from_it():
    cache = PrefixCache(1 << 20)
    cache.add(extension([1, 2, 3]))
    cache.add(extension([1, 2, 3, 4, 5], reused=3))
    assert len(cache) == 1
    length, keys, values = cache.lookup([1, 2, 3, 4, 5, 6])
    assert length == 5 and keys[0].shape == (2, 4, 5) and values[1].shape == (2, 5, 4)


def test_least_recently_used_entries_leave_first_when_the_budget_is_full():
    one = extension([1, 2, 3, 4])
    size = sum(t.numel() * t.element_size() for t in (*one.keys, *one.values))
    cache = PrefixCache(2 * size)
    cache.add(one)
    cache.add(extension([5, 6, 7, 8]))
    cache.lookup([1, 2, 3, 4, 9])  # [1, 2, 3, 4] used last
    cache.add(extension([9, 9, 9, 9]))
    assert len(cache) == 2 and cache.stats.evictions == 1
    assert cache.lookup([5, 6, 7, 8, 0])[0] == 0
    assert cache.lookup([1, 2, 3, 4, 0])[0] == 4


def test_a_cached_prompt_samples_what_a_cold_prefill_samples():
    """Two moves of two episodes: move 2 prefills only its new tokens; greedy tokens equal
    ``generate``'s and the log-probs agree with a teacher-forced forward."""
    model = llama()
    sampler = Sampler(model, prefix_cache_bytes=1 << 24)
    sampler.sample(MOVE_1, 6, temperature=0)
    assert sampler.stats.prefill_tokens == len(SYSTEM) + 3 + 2  # the system prompt ran once
    before = sampler.stats.prefill_tokens
    rows = sampler.sample(MOVE_2, 8, temperature=0)
    assert sampler.stats.prefill_tokens - before == 4 + 3
    assert sampler.stats.prefix_reused_tokens == len(SYSTEM) + len(MOVE_1[0]) + len(MOVE_1[1])
    assert [r.token_ids for r in rows] == hf_greedy(model, MOVE_2, 8)
    for prompt, row in zip(MOVE_2, rows):
        torch.testing.assert_close(torch.tensor(row.logprobs),
                                   teacher_forced(model, prompt, row.token_ids),
                                   atol=1e-4, rtol=1e-4)
    sampled = Sampler(model, prefix_cache_bytes=1 << 24)
    sampled.sample(MOVE_1, 4, temperature=1.0, k=3, generator=gen(1))
    cold = Sampler(model).sample(MOVE_2, 8, temperature=1.0, k=3, generator=gen(2))
    warm = sampled.sample(MOVE_2, 8, temperature=1.0, k=3, generator=gen(2))
    assert [r.token_ids for r in warm] == [r.token_ids for r in cold]


def test_new_weights_empty_the_cache():
    """RL updates the policy in place: keys computed by the old weights must not be reused."""
    model = llama()
    sampler = Sampler(model, prefix_cache_bytes=1 << 24)
    sampler.sample(MOVE_1, 4, temperature=0)
    with torch.no_grad():
        for p in model.parameters():
            p.data.mul_(-1.3)
    rows = sampler.sample(MOVE_2, 6, temperature=0)
    # the system prompt, once in each call (the second prompt of a call reuses the first's)
    assert sampler.stats.prefix_reused_tokens == 2 * len(SYSTEM)
    assert [r.token_ids for r in rows] == hf_greedy(model, MOVE_2, 6)


def test_forked_parts_send_back_what_they_prefilled():
    """Two processes: the child's prompts are cached in the parent afterwards, so the next
    move of both episodes reuses its whole previous prompt whichever process runs it."""
    model = llama()
    sampler = Sampler(model, processes=2, prefix_cache_bytes=1 << 24)
    sampler.sample(MOVE_1, 4, temperature=0)
    assert len(sampler.prefixes) == 2
    assert sampler.prefixes.lookup(MOVE_2[1])[0] == len(MOVE_1[1])
    before = sampler.stats.prefill_tokens
    rows = sampler.sample(MOVE_2, 6, temperature=0)
    assert sampler.stats.prefill_tokens - before == 4 + 3
    assert [r.token_ids for r in rows] == hf_greedy(model, MOVE_2, 6)
