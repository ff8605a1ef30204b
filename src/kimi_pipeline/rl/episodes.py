"""Multi-turn tool-use rollouts for RL: the policy plays tasks as the agent, and only the tokens
it sampled itself carry loss.

The RL stage trains the agent on whole episodes of the synthesis world: ``play_tool_episodes`` plays
K episodes of each work item (``agents.rollout.plan_work``) through ``agents.episode.run_episode``
with the policy served by ``HFBackend`` in the agent's seat, the user simulator as the user and the
task's environment executing the calls. All episodes run concurrently under asyncio, so the backend
micro-batches their moves. The K episodes of a task form a group (the objective's baseline is the
group's mean reward); each gets its own seed, derived from the rollout seed, the task and the sample
index, so the user's wording, the tool faults and the samples differ.

**Recording.** Each episode's agent seat is a ``TurnRecorder``: it sends every request with the
rollout's temperature and token budget and keeps, per agent turn, what the backend reports in
``ChatResponse.meta``: the prompt it encoded (``prompt_ids``), the sampled ``token_ids`` (stop
token included) and their ``logprobs`` (temperature-1 distribution, the 'kimi' sampler). A failed
turn (backend error, context overflow) ends the recording, as it ends the episode.

**Segments.** An episode is one token sequence when the chat template allows it. Turn 0 is
prompt_0 + gen_0. Turn t extends the sequence when its prompt, re-rendered by the template from
the dialogue, starts with every token so far: the tokens in between (tool results, user turns,
template glue such as role markers) get mask 0, then gen_t mask 1 with its log-probs. When the
template renders an earlier turn differently (sampled tokens that decode to text which encodes
otherwise, content whitespace stripped by the tool-call parser, tool-call JSON re-serialised, a
stop token rendered another way), the tokens so far are no longer what the policy conditioned
on: the segment closes and a new one starts from prompt_t (a *split*, counted per episode).
Every segment is thus exactly the context the sampler saw, so the trainer's teacher-forced
log-probs of its masked tokens equal the recorded ones up to floating point.

Mask 1 means sampled by the policy: every generated token, the sampled stop token included (a
turn cut by its budget has none; the template's closing token is then glue, mask 0). Response
length, for token budgets, counts masked tokens only (``EpisodeRollout.policy_tokens``).

**Rows**: the RL loop (``rl/rollouts.py:to_batch``) makes every segment one row of a
``RolloutBatch`` with its episode's reward and group; the recorded log-probs are its
``sampler_logprobs``. An episode with splits gives several rows with the same reward, each
counted as a sample by the group baseline; an episode whose first move failed gives none.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, field
from typing import NamedTuple

from kimi_pipeline.agents.evaluate import SamplingOverride
from kimi_pipeline.agents.episode import EpisodeConfig, run_episode
from kimi_pipeline.agents.rollout import WorkItem
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, ChatResponse
from kimi_pipeline.llm.hf_backend import HFBackend
from kimi_pipeline.records import Trajectory

log = logging.getLogger(__name__)


class Segment(NamedTuple):
    """One token sequence of an episode; ``loss_mask`` and ``old_logprobs`` align with it."""

    token_ids: list[int]
    loss_mask: list[bool]  # True: a token the policy sampled
    old_logprobs: list[float]  # the sampler's log π_old(token | tokens before) if loss_mask, else 0


@dataclass
class Turn:
    """One agent move as the backend saw and sampled it."""

    prompt_ids: list[int]
    token_ids: list[int]  # sampled, stop token included
    logprobs: list[float]  # one per sampled token


@dataclass
class EpisodeRollout:
    """One played episode: its group (the task id), trajectory, recorded turns and segments."""

    group: str
    trajectory: Trajectory
    segments: list[Segment]
    turns: list[Turn] = field(default_factory=list)

    @property
    def splits(self) -> int:
        """Prefix mismatches: segments beyond the first."""
        return max(0, len(self.segments) - 1)

    @property
    def policy_tokens(self) -> int:
        """Response length: the tokens the policy sampled."""
        return sum(sum(s.loss_mask) for s in self.segments)


class TurnRecorder:
    """The agent seat of one episode: ``backend`` with the rollout's temperature and budget,
    recording each successful move's tokens until the first failed one."""

    def __init__(self, backend: ChatBackend, temperature: float, max_tokens: int):
        self.inner = SamplingOverride(backend, temperature, max_tokens)
        self.name = self.inner.name
        self.turns: list[Turn] = []
        self.failed = False

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        reply = await self.inner.acomplete(request)
        if reply.error:
            self.failed = True
        if not self.failed:
            meta = reply.meta
            self.turns.append(Turn(list(meta["prompt_ids"]), list(meta["token_ids"]),
                                   list(meta["logprobs"])))
        return reply


def build_segments(turns: list[Turn]) -> list[Segment]:
    """The turns of one episode as segments (module doc): a turn extends the current segment
    when its prompt starts with it, else it starts a new one."""
    segments: list[Segment] = []
    ids: list[int] = []
    mask: list[bool] = []
    logprobs: list[float] = []
    for turn in turns:
        if len(turn.logprobs) != len(turn.token_ids):
            raise ValueError(f"a turn has {len(turn.token_ids)} sampled tokens but "
                             f"{len(turn.logprobs)} log-probs (RL needs the 'kimi' sampler)")
        if ids and turn.prompt_ids[:len(ids)] == ids:
            between = turn.prompt_ids[len(ids):]
        else:
            if ids:
                segments.append(Segment(ids, mask, logprobs))
            ids, mask, logprobs = [], [], []
            between = turn.prompt_ids
        ids = ids + between + turn.token_ids
        mask = mask + [False] * len(between) + [True] * len(turn.token_ids)
        logprobs = logprobs + [0.0] * len(between) + list(turn.logprobs)
    if ids:
        segments.append(Segment(ids, mask, logprobs))
    return segments


def rollout_seed(seed: int, item: WorkItem, sample: int) -> int:
    """A 31-bit episode seed from the rollout seed, the work item and the sample index."""
    key = f"{seed}:{item.task.task_id}:{item.seed}:{sample}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=4).digest(), "big") & 0x7FFFFFFF


async def aplay_tool_episodes(
    items: list[WorkItem], backend: HFBackend, user_backend: ChatBackend, k: int,
    temperature: float, max_new_tokens: int, episode_config: EpisodeConfig,
    episodes_in_flight: int, seed: int,
) -> list[EpisodeRollout]:
    """``play_tool_episodes`` inside a running event loop."""
    gate = asyncio.Semaphore(episodes_in_flight)

    async def play(item: WorkItem, sample: int) -> EpisodeRollout:
        agent = TurnRecorder(backend, temperature, max_new_tokens)
        async with gate:
            trajectory = await run_episode(item.agent, item.task, item.tools, agent, user_backend,
                                           item.persona, rollout_seed(seed, item, sample),
                                           episode_config)
        return EpisodeRollout(item.task.task_id, trajectory, build_segments(agent.turns),
                              agent.turns)

    return list(await asyncio.gather(*(play(item, j) for item in items for j in range(k))))


def play_tool_episodes(
    items: list[WorkItem], backend: HFBackend, user_backend: ChatBackend, k: int,
    temperature: float, max_new_tokens: int, episode_config: EpisodeConfig,
    episodes_in_flight: int, seed: int,
) -> list[EpisodeRollout]:
    """K episodes of each work item, item by item (its K samples consecutive), with ``backend``
    as the agent sampling at ``temperature`` with ``max_new_tokens`` per move."""
    if backend.config.sampler != "kimi":
        raise ValueError(f"RL rollouts need log-probs: the hf backend's sampler must be 'kimi', "
                         f"not {backend.config.sampler!r}")
    rollouts = asyncio.run(aplay_tool_episodes(
        items, backend, user_backend, k, temperature, max_new_tokens, episode_config,
        episodes_in_flight, seed))
    log.info("rl rollouts: %s", rollout_stats(rollouts))
    return rollouts


def rollout_stats(rollouts: list[EpisodeRollout]) -> dict[str, int]:
    """Counts to log: episodes, segments, prefix splits, failed episodes, token totals."""
    return {
        "episodes": len(rollouts),
        "segments": sum(len(r.segments) for r in rollouts),
        "prefix_splits": sum(r.splits for r in rollouts),
        "episodes_split": sum(r.splits > 0 for r in rollouts),
        "episodes_failed": sum(r.trajectory.outcome.end_reason == "agent_error"
                               for r in rollouts),
        "policy_tokens": sum(r.policy_tokens for r in rollouts),
        "tokens": sum(len(s.token_ids) for r in rollouts for s in r.segments),
    }
