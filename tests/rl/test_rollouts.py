"""``rl.rollouts``: a sampled response as one trained segment, rows ordered for micro-batching
without splitting a prompt's samples, and the iteration's reward metrics."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from kimi_pipeline.rl.episodes import Segment
from kimi_pipeline.rl.prompts import RLPrompt
from kimi_pipeline.rl.rollouts import (
    Sampled,
    by_length,
    single_turn,
    summarise_samples,
    to_batch,
)


def prompt(source: str = "verifier", task_type: str = "math", pid: str = "p") -> RLPrompt:
    return RLPrompt(prompt_id=pid, source=source, task_type=task_type,
                    messages=[{"role": "user", "content": "2+2?"}], item={})


def sample(group: int, response: int, reward: float, total: float, **prompt_args) -> Sampled:
    ids = [1, 2] + [5] * response
    segment = Segment(ids, [False, False] + [True] * response, [0.0] * len(ids))
    return Sampled(prompt(**prompt_args), group, [segment], "x", truncated=response > 3,
                   reward=reward, score=reward,
                   shaped={"total": total, "length": 0.0, "truncation": 0.0})


def test_a_response_is_one_segment_training_only_its_own_tokens():
    generation = SimpleNamespace(token_ids=[7, 8, 9], logprobs=[-0.1, -0.2, -0.3], text="789",
                                 stopped=False, tokens=3)
    s = single_turn(prompt(), 4, [1, 2], generation, limit=3)
    (segment,) = s.segments
    assert segment.token_ids == [1, 2, 7, 8, 9]
    assert segment.loss_mask == [False, False, True, True, True]
    assert segment.old_logprobs == [0.0, 0.0, -0.1, -0.2, -0.3]
    assert s.group == 4 and s.text == "789" and s.policy_tokens == 3
    assert s.truncated  # cut at its budget, no stop token
    stopped = SimpleNamespace(**{**vars(generation), "stopped": True})
    assert not single_turn(prompt(), 4, [1, 2], stopped, limit=3).truncated


def test_rows_are_ordered_by_length_with_each_prompts_samples_together():
    samples = [sample(0, 6, 1.0, 1.0), sample(1, 1, 0.0, 0.0), sample(0, 2, 0.0, 0.0),
               sample(1, 2, 1.0, 1.0), sample(2, 4, 0.0, 0.0)]
    batch = to_batch(samples, pad_id=0)
    ordered = by_length(batch)
    assert ordered.group_ids.tolist() == [1, 1, 2, 0, 0]  # groups by their longest row
    assert ordered.loss_mask.sum(1).tolist() == [1, 2, 4, 2, 6]  # short first within a group
    assert sorted(ordered.rewards.tolist()) == sorted(batch.rewards.tolist())
    assert torch.equal(ordered.input_ids.sum(), batch.input_ids.sum())


def test_the_iteration_metrics_split_rewards_by_source_and_type():
    samples = [sample(0, 2, 1.0, 0.9, source="verifier", task_type="math"),
               sample(0, 4, 0.0, -0.1, source="verifier", task_type="math"),
               sample(1, 2, 0.5, 0.5, source="critic", task_type="open"),
               sample(1, 2, 0.5, 0.5, source="critic", task_type="open")]
    metrics = summarise_samples(samples)
    assert metrics["reward/task"] == pytest.approx(0.5)
    assert metrics["reward/total"] == pytest.approx(0.45)
    assert metrics["reward/source/verifier"] == pytest.approx(0.5)
    assert metrics["reward/type/open"] == pytest.approx(0.5)
    assert metrics["response_tokens"] == pytest.approx(2.5)
    assert metrics["truncation_rate"] == pytest.approx(0.25)
    assert metrics["groups_without_signal"] == 1.0  # group 1: both samples scored alike
    assert summarise_samples([]) == {}
