"""An RL iteration's samples, from the sampler to the rows the update trains on.

``sample_responses`` draws K responses per prompt in one batched decode (each cut at its task
type's token budget); ``play_episodes`` plays K tool episodes per tool task (``rl/episodes.py``).
Both return ``Sampled`` rows: a sample's token segments (only the policy's own tokens trained),
what its reward source scores, and room for its rewards. ``to_batch`` turns them into the
``RolloutBatch`` of ``training/objectives.py`` (one row per segment) and ``by_length`` orders its
rows for micro-batching; ``summarise_samples`` gives the iteration's reward and length metrics.
Every draw is seeded by (seed, iteration), so a resumed run samples what the uninterrupted one
did (``rl/loop.py``).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch

from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.episodes import Segment
from kimi_pipeline.rl.prompts import RLPrompt
from kimi_pipeline.training.objectives import RolloutBatch, pad_rows


@dataclass
class Sampled:
    """One sample of a prompt (a response, or a whole tool episode) with what the update and
    the logs need: its token segments (prompt + response; an episode's turns with tool results
    and user turns masked), the text or trajectory its reward source scores, its rewards."""

    prompt: RLPrompt
    group: int  # index of the prompt in this iteration
    segments: list[Segment]
    text: str  # the response (an episode: its last agent message)
    truncated: bool  # a response (or an agent turn) cut at its token budget
    candidate: Any = None  # what the reward source scores (default: the text)
    score: float = 0.0  # the source's reward in [0, 1] (a verifier: 1 correct)
    reward: float = 0.0  # score × the source's weight (before budget shaping)
    reason: str = ""
    shaped: dict[str, float] | None = None

    @property
    def policy_tokens(self) -> int:
        return sum(sum(seg.loss_mask) for seg in self.segments)


def single_turn(prompt: RLPrompt, group: int, prompt_ids: list[int], generation: Any,
                limit: int) -> Sampled:
    """A sampled response as one segment: the prompt (mask 0), then the response (mask 1)."""
    ids = list(generation.token_ids)
    segment = Segment(prompt_ids + ids, [False] * len(prompt_ids) + [True] * len(ids),
                      [0.0] * len(prompt_ids) + list(generation.logprobs))
    return Sampled(prompt, group, [segment], generation.text,
                   truncated=not generation.stopped and generation.tokens >= limit)


def _iteration_seed(seed: int, iteration: int) -> int:
    digest = hashlib.sha256(f"rl-sample:{seed}:{iteration}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def sample_responses(backend: Any, prompts: list[RLPrompt], config: RLConfig, iteration: int,
                     temperature: float) -> list[Sampled]:
    """K samples of every prompt, each cut at its task type's budget, decoded together.

    One batch (per ``max_batch_size`` rows) whatever the mix of task types: a decode step
    reads every weight once for all its rows, so rows of short and long budgets share steps
    (each row stops at its own budget or stop token)."""
    k = config.train.samples
    encoded = [backend.encode(p.messages) for p in prompts]
    room = [backend.context_length - len(ids) for ids in encoded]
    limits = [max(0, min(config.budget.budget(p.task_type), r)) for p, r in zip(prompts, room)]
    per_batch = max(1, backend.config.max_batch_size // k)
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    out: list[Sampled] = []
    for c, at in enumerate(range(0, len(order), per_batch)):
        chunk = order[at:at + per_batch]
        rows = backend.run_batch([encoded[i] for i in chunk], [limits[i] for i in chunk],
                                 temperature, _iteration_seed(config.train.seed, iteration) + c, k)
        for j, i in enumerate(chunk):
            out += [single_turn(prompts[i], i, encoded[i], g, limits[i])
                    for g in rows[j * k:(j + 1) * k]]
    return sorted(out, key=lambda s: s.group)


def play_episodes(backend: Any, prompts: list[RLPrompt], groups: list[int], config: RLConfig,
                  iteration: int, temperature: float) -> list[Sampled]:
    """K episodes of every tool task (``rl/episodes.py``), the offline user simulator as the
    user; each episode's segments keep only the policy's own tokens trained."""
    from kimi_pipeline.agents.rollout import WorkItem
    from kimi_pipeline.llm.base import make_backend
    from kimi_pipeline.records import Agent, Task, ToolSpec
    from kimi_pipeline.rl.episodes import play_tool_episodes

    if not prompts:
        return []
    items = [WorkItem(agent=Agent.model_validate(p.item["agent"]),
                      task=Task.model_validate(p.item["task"]),
                      tools=[ToolSpec.model_validate(t) for t in p.item["tools"]],
                      persona=p.item["persona"], seed=p.item["seed"]) for p in prompts]
    budget = config.budget.budget("tool")
    rollouts = play_tool_episodes(
        items, backend, make_backend(config.episodes.user_backend), config.train.samples,
        temperature, budget, config.episodes.episode, config.episodes.episodes_in_flight,
        _iteration_seed(config.train.seed, iteration))
    k = config.train.samples
    return [Sampled(prompts[n // k], groups[n // k], r.segments, _last_reply(r.trajectory),
                    truncated=any(len(t.token_ids) >= budget for t in r.turns),
                    candidate=r.trajectory)
            for n, r in enumerate(rollouts)]


def _last_reply(trajectory: Any) -> str:
    replies = [m.content for m in trajectory.messages if m.role == "assistant" and m.content]
    return replies[-1] if replies else ""


def to_batch(samples: list[Sampled], pad_id: int) -> RolloutBatch:
    """One row per segment, with its sample's reward and group; only policy tokens trained."""
    rows = [(seg, s) for s in samples for seg in s.segments]
    return RolloutBatch(
        input_ids=pad_rows([seg.token_ids for seg, _ in rows], pad_id, torch.long),
        loss_mask=pad_rows([seg.loss_mask for seg, _ in rows], False, torch.bool),
        sampler_logprobs=pad_rows([seg.old_logprobs for seg, _ in rows], 0.0, torch.float32),
        rewards=torch.tensor([s.shaped["total"] for _, s in rows], dtype=torch.float32),
        group_ids=torch.tensor([s.group for _, s in rows], dtype=torch.long),
    )



def by_length(batch: RolloutBatch) -> RolloutBatch:
    """Rows ordered so that each micro-batch pads its rows to similar lengths and keeps the K
    samples of a prompt together (their shared prompt runs once, ``token_logprobs``): groups by
    their longest row, rows by length within a group. The loss sums over sequences: row order
    does not change it."""
    mask = batch.loss_mask
    end = (mask.shape[1] - mask.flip(1).int().argmax(1)).tolist()  # one past the last trained
    groups = batch.group_ids.tolist()
    longest: dict[int, int] = {}
    for group, row_end in zip(groups, end):
        longest[group] = max(longest.get(group, 0), row_end)
    order = sorted(range(len(end)), key=lambda i: (longest[groups[i]], groups[i], end[i]))
    return batch.select(order)


def summarise_samples(samples: list[Sampled]) -> dict[str, float]:
    """Reward by source and task type, lengths and truncation of one iteration's samples."""
    out: dict[str, float] = {}
    if not samples:
        return out

    def mean(values) -> float:
        values = list(values)
        return sum(values) / len(values) if values else math.nan

    out["reward/task"] = mean(s.reward for s in samples)
    out["reward/total"] = mean(s.shaped["total"] for s in samples)
    out["reward/length"] = mean(s.shaped["length"] for s in samples)
    out["response_tokens"] = mean(s.policy_tokens for s in samples)
    out["truncation_rate"] = mean(float(s.truncated) for s in samples)
    for key in {s.prompt.source for s in samples}:
        out[f"reward/source/{key}"] = mean(s.reward for s in samples if s.prompt.source == key)
    for key in {s.prompt.task_type for s in samples}:
        out[f"reward/type/{key}"] = mean(s.reward for s in samples if s.prompt.task_type == key)
    groups: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        groups[s.group].append(s.shaped["total"])
    out["groups_without_signal"] = float(sum(max(g) == min(g) for g in groups.values()))
    return out
