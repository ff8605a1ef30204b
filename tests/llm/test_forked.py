"""llm.forked: one sampling call split over forked processes — the same samples as sampling
each part alone with its seed, the weights as they are at the call, failures reported."""

from __future__ import annotations

import os
import sys

import pytest
import torch

from kimi_pipeline.llm.base import backend_config
from kimi_pipeline.llm.decode import Sampler
from kimi_pipeline.llm.forked import ForkedSamplingError, run_forked, split_by_cost
from kimi_pipeline.llm.hf_backend import HFBackend
from tests.llm.test_decode import PROMPTS, chat_setup, gen, hf_greedy, llama
from tests.training import TOOLS

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork on Linux"),
              pytest.mark.usefixtures("one_thread")]


def test_split_by_cost_is_contiguous_balanced_and_never_empty():
    assert split_by_cost([1, 1, 1, 1], 2) == [range(0, 2), range(2, 4)]
    assert split_by_cost([10, 1, 1, 1, 1, 1], 2) == [range(0, 1), range(1, 6)]
    assert split_by_cost([5], 3) == [range(0, 1)]
    parts = split_by_cost([3, 1, 4, 1, 5, 9, 2, 6], 3)
    assert [i for r in parts for i in r] == list(range(8)) and len(parts) == 3


def test_parts_run_in_other_processes_and_come_back_in_order():
    parent = os.getpid()
    pids = run_forked([os.getpid, os.getpid, os.getpid])
    assert pids[0] == parent and len({*pids}) == 3
    assert run_forked([lambda: torch.get_num_threads()] * 2, threads_per_process=1) == [1, 1]


def test_a_failing_or_dying_child_is_reported():
    def boom():
        raise ValueError("bad prompt 7")

    with pytest.raises(ForkedSamplingError, match="ValueError: bad prompt 7"):
        run_forked([lambda: 1, boom])
    with pytest.raises(ForkedSamplingError, match="died without a result .exit status 3"):
        run_forked([lambda: 1, lambda: os._exit(3)])


def test_forked_samples_are_each_part_sampled_alone_with_its_seed():
    """Two processes: prompt order kept, every row what sampling its part in this process with
    the part's seed gives (token ids and log-probs), reproducible from the caller's seed."""
    model = llama()
    forked = Sampler(model, processes=2)
    rows = forked.sample(PROMPTS, 12, temperature=1.0, k=3, generator=gen(5))
    assert forked.stats.sampled_tokens == sum(len(r.token_ids) for r in rows)
    assert forked.stats.prefill_calls == len(PROMPTS)

    costs = [len(p) + 3 * 12 for p in PROMPTS]
    parts = split_by_cost(costs, 2)
    seeds = torch.randint(2 ** 62, (len(parts),), generator=gen(5)).tolist()
    alone = Sampler(model)
    expected = [row for part, seed in zip(parts, seeds) for row in alone.sample(
        [PROMPTS[i] for i in part], 12, temperature=1.0, k=3, generator=gen(seed))]
    assert [r.token_ids for r in rows] == [r.token_ids for r in expected]
    assert [r.logprobs for r in rows] == [r.logprobs for r in expected]
    again = forked.sample(PROMPTS, 12, temperature=1.0, k=3, generator=gen(5))
    assert [r.token_ids for r in again] == [r.token_ids for r in rows]


def test_children_sample_the_weights_as_they_are_at_the_call():
    """RL updates the policy in place between calls: forked parts see the update."""
    model = llama()
    forked = Sampler(model, processes=2)
    forked.sample(PROMPTS, 6, temperature=0)
    with torch.no_grad():
        for p in model.parameters():
            p.data.mul_(-1.3)
    after = forked.sample(PROMPTS, 6, temperature=0)
    assert [r.token_ids for r in after] == hf_greedy(model, PROMPTS, 6)


def test_the_hf_backend_splits_its_batches_when_configured():
    """``cpu_processes: 2``: greedy texts equal one process's (greedy does not depend on how the
    batch is split)."""
    model, tokenizer, dialogues, settings = chat_setup()
    one = HFBackend(backend_config(settings), model=model, tokenizer=tokenizer)
    two = HFBackend(backend_config({**settings, "cpu_processes": 2}), model=model,
                    tokenizer=tokenizer)
    assert two.sampler.processes == 2
    assert two.generate(dialogues, TOOLS) == one.generate(dialogues, TOOLS)
    assert two.sampler.stats.prefill_calls == len(dialogues)
