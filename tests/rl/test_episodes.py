"""RL tool-use rollouts: tiny models play an order desk (the world model executes their calls,
the offline user answers), and only the tokens the policy sampled carry loss and log-probs."""

from __future__ import annotations

import asyncio

import pytest
import torch

from kimi_pipeline.agents.policy import to_openai
from kimi_pipeline.agents.synthesis import tool_lookup
from kimi_pipeline.agents.episode import run_episode
from kimi_pipeline.agents.rollout import WorkItem, plan_work
from kimi_pipeline.llm.base import (
    ChatRequest,
    ChatResponse,
    HFBackendConfig,
    make_backend,
    OfflineBackendConfig,
)
from kimi_pipeline.llm.hf_backend import HFBackend, cpu_threads
from kimi_pipeline.records import ToolCall
from kimi_pipeline.rl.episodes import (
    EpisodeRollout,
    Turn,
    build_segments,
    play_tool_episodes,
    rollout_seed,
    rollout_stats,
)
from kimi_pipeline.rl.rollouts import Sampled, to_batch
from kimi_pipeline.training.objectives import token_logprobs
from tests.agents.test_evaluate import desk_config, desk_world
from tests.llm.test_hf_backend import CALL, FORCED, tiny_model
from tests.training import make_tokenizer

K = 2
ORDERS = {"orders": {"o-17": {"customer": "Ana", "status": "open"},
                     "o-18": {"customer": "Omar", "status": "open"}}}
EPISODE = desk_config(steps=3).episode.model_copy(update={"max_user_turns": 3})
REPLY = "Ok."  # the user simulator answers it with a nudge: a user turn mid-episode


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with cpu_threads(1):
        yield


def desk_items() -> list[WorkItem]:
    """The order desk's four tasks over a closed, two-order collection (short tool results),
    each played by a terse user."""
    tools, agents, tasks = desk_world()
    tasks = [t.model_copy(update={"initial_state": ORDERS}) for t in tasks]
    items = plan_work({a.agent_id: a for a in agents}, tasks, tool_lookup(tools), seed=0)
    for item in items:
        item.persona = "terse"
    return items


def hf(model, tokenizer, **kw) -> HFBackend:
    config = HFBackendConfig(device="cpu", max_batch_size=16, **kw)
    return HFBackend(config, model=model, tokenizer=tokenizer)


def user() -> object:
    return make_backend(OfflineBackendConfig())


class Script:
    """An agent seat that plays the desk script — the call after a user turn, ``REPLY`` after a
    tool result — and keeps each move's prompt tokens and target text to train a model on."""

    name = "script"

    def __init__(self, encoder: HFBackend):
        self.encoder, self.pairs = encoder, []

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        prompt = self.encoder.encode(request.messages, request.tools)
        if request.messages[-1]["role"] == "tool":
            self.pairs.append((prompt, REPLY))
            return ChatResponse(content=REPLY)
        self.pairs.append((prompt, FORCED))
        return ChatResponse(content=None, tool_calls=[ToolCall(id="c", name=CALL["name"],
                                                                arguments=CALL["arguments"])])


def train_script(tokenizer, pairs: list[tuple[list[int], str]], steps: int = 60):
    """A tiny model trained to answer each prompt with its target then ``<|end|>``."""
    model = tiny_model(tokenizer)
    rows = [(p, tokenizer(t + "<|end|>", add_special_tokens=False)["input_ids"]) for p, t in pairs]
    width = max(len(p) + len(t) for p, t in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels, mask = torch.full_like(ids, -100), torch.zeros_like(ids)
    for row, (prompt, target) in enumerate(rows):
        seq = prompt + target
        ids[row, : len(seq)], mask[row, : len(seq)] = torch.tensor(seq), 1
        labels[row, len(prompt) : len(seq)] = torch.tensor(target)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(steps):
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return model.eval()


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def random_run(tokenizer):
    """A wide-init random model: varied log-probs, and text that rarely re-renders as sampled."""
    model = tiny_model(tokenizer, init=0.5)
    rollouts = play_tool_episodes(desk_items(), hf(model, tokenizer), user(), k=K,
                                  temperature=1.0, max_new_tokens=12, episode_config=EPISODE,
                                  episodes_in_flight=16, seed=0)
    return model, rollouts


@pytest.fixture(scope="module")
def scripted_run(tokenizer):
    """A model trained on the desk script's moves (two tasks), playing all four tasks at
    temperature 0.7, which keeps the tiny model on its script."""
    items = desk_items()
    script = Script(hf(tiny_model(tokenizer), tokenizer))

    async def record():
        for item in items[:2]:
            await run_episode(item.agent, item.task, item.tools, script, user(), item.persona,
                              rollout_seed(0, item, 0), EPISODE)

    asyncio.run(record())
    model = train_script(tokenizer, script.pairs)
    rollouts = play_tool_episodes(items, hf(model, tokenizer), user(), k=K, temperature=0.7,
                                  max_new_tokens=40, episode_config=EPISODE,
                                  episodes_in_flight=16, seed=0)
    return model, rollouts


def find(sequence: list[int], part: list[int]) -> int:
    """Start of the first occurrence of ``part`` in ``sequence`` (-1: none)."""
    return next((i for i in range(len(sequence) - len(part) + 1)
                 if sequence[i:i + len(part)] == part), -1)


def policy_part(rollout: EpisodeRollout, field: str) -> list:
    """The masked entries of ``field`` (token_ids / old_logprobs) over the segments, in order."""
    return [value for s in rollout.segments
            for value, kept in zip(getattr(s, field), s.loss_mask) if kept]


# ------------------------------------------------------------------------------ segment builder


def test_turns_extend_one_sequence_with_glue_unmasked():
    turns = [Turn([1, 2, 3], [10, 11, 9], [-0.1, -0.2, -0.3]),
             Turn([1, 2, 3, 10, 11, 9, 4, 5], [12, 9], [-0.4, -0.5])]
    [segment] = build_segments(turns)
    assert segment.token_ids == [1, 2, 3, 10, 11, 9, 4, 5, 12, 9]
    assert segment.loss_mask == [False] * 3 + [True] * 3 + [False] * 2 + [True] * 2
    assert segment.old_logprobs == [0.0] * 3 + [-0.1, -0.2, -0.3, 0.0, 0.0, -0.4, -0.5]


def test_prefix_mismatch_starts_a_new_segment():
    """Turn 1's prompt re-renders turn 0's reply differently (11 → 99, say a re-serialised call):
    the sequence so far is not what turn 1 conditioned on, so turn 1 starts from its prompt."""
    turns = [Turn([1, 2], [10, 11], [-0.1, -0.2]),
             Turn([1, 2, 10, 99, 4], [12], [-0.3]),
             Turn([1, 2, 10, 99, 4, 12, 5], [13], [-0.4])]
    first, second = build_segments(turns)
    assert first.token_ids == [1, 2, 10, 11] and first.loss_mask == [False, False, True, True]
    assert second.token_ids == [1, 2, 10, 99, 4, 12, 5, 13]
    assert second.loss_mask == [False] * 5 + [True, False, True]
    assert second.old_logprobs == [0.0] * 5 + [-0.3, 0.0, -0.4]
    assert build_segments([]) == []
    with pytest.raises(ValueError, match="log-probs"):
        build_segments([Turn([1], [2, 3], [])])  # 'hf_generate' reports no log-probs


# ------------------------------------------------------------------------------ real episodes


def test_tool_results_and_user_turns_carry_no_loss(scripted_run, tokenizer):
    """The trained model calls the tool, replies, is nudged and calls again: one sequence per
    episode, in which tool results and user turns are unmasked and the masked tokens are, in
    order, the tokens sampled at each turn (stop tokens included), with their log-probs."""
    _, rollouts = scripted_run
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    whole = [r for r in rollouts if r.splits == 0]
    assert len(whole) >= len(rollouts) // 2
    checked = {"tool": 0, "user": 0}
    for rollout in whole:
        [segment] = rollout.segments
        sampled = [t for turn in rollout.turns for t in turn.token_ids]
        assert policy_part(rollout, "token_ids") == sampled
        assert policy_part(rollout, "old_logprobs") == [p for t in rollout.turns
                                                        for p in t.logprobs]
        assert segment.token_ids[:len(rollout.turns[0].prompt_ids)] == rollout.turns[0].prompt_ids
        for turn in rollout.turns:
            if turn.token_ids[-1] == end:  # the sampled stop token is the policy's
                at = find(segment.token_ids, turn.prompt_ids + turn.token_ids)
                assert at == 0 and segment.loss_mask[len(turn.prompt_ids) + len(turn.token_ids) - 1]
        messages = rollout.trajectory.messages
        for i, message in enumerate(messages[1:], 1):
            if message.role not in checked or not any(m.role == "assistant" for m in messages[:i]):
                continue  # only turns that come after the policy's first move
            ids = tokenizer(message.content, add_special_tokens=False)["input_ids"]
            at = find(segment.token_ids, ids)
            if at < 0:  # after the last move: in no prompt
                continue
            assert not any(segment.loss_mask[at:at + len(ids)])
            assert not any(segment.old_logprobs[at:at + len(ids)])
            checked[message.role] += 1
    assert checked["tool"] >= 2 and checked["user"] >= 1


def test_every_episode_keeps_all_sampled_tokens_in_order(scripted_run, random_run, tokenizer):
    """Split or not, each turn's sampled tokens appear once, in order, with their log-probs, and
    the policy tokens are the episode's completion tokens. Turn 0's recorded prompt is the
    dialogue's opening as the backend encodes it."""
    encoder = hf(scripted_run[0], tokenizer)
    for _, rollouts in (scripted_run, random_run):
        for rollout in rollouts:
            opening = [to_openai(m) for m in rollout.trajectory.messages[:2]]
            assert rollout.turns[0].prompt_ids == encoder.encode(opening, rollout.trajectory.tools)
            assert policy_part(rollout, "token_ids") == [t for turn in rollout.turns
                                                         for t in turn.token_ids]
            assert policy_part(rollout, "old_logprobs") == [p for turn in rollout.turns
                                                            for p in turn.logprobs]
            assert rollout.policy_tokens == rollout.trajectory.completion_tokens > 0
            assert len(rollout.turns) == sum(m.role == "assistant"
                                             for m in rollout.trajectory.messages)


def test_rerendered_text_that_differs_splits_the_episode(random_run):
    """Random tokens decode to text that the template re-renders (stripped, re-encoded)
    differently: the episode splits, and each segment starts with the prompt of its first turn."""
    _, rollouts = random_run
    stats = rollout_stats(rollouts)
    assert stats["prefix_splits"] > 0 and stats["segments"] == len(rollouts) + stats[
        "prefix_splits"]
    for rollout in rollouts:
        starts = [t.prompt_ids for t in rollout.turns]
        for segment in rollout.segments:
            assert any(segment.token_ids[:len(p)] == p for p in starts)
            assert not any(segment.loss_mask[:len(starts[0])])


def test_k_episodes_of_a_task_share_the_group_and_differ(random_run):
    _, rollouts = random_run
    assert len(rollouts) == 4 * K
    for at in range(0, len(rollouts), K):
        group = rollouts[at:at + K]
        assert len({r.group for r in group}) == 1 and group[0].group == group[0].trajectory.task_id
        assert len({r.trajectory.seed for r in group}) == K
        assert len({tuple(policy_part(r, "token_ids")) for r in group}) == K
    assert len({r.group for r in rollouts}) == 4


def batch_of(rollouts, rewards):
    """The rollouts as the RL loop batches them: a sample per episode, a row per segment."""
    samples = [Sampled(prompt=None, group=i // K, segments=r.segments, text="", truncated=False,
                       shaped={"total": reward})
               for i, (r, reward) in enumerate(zip(rollouts, rewards, strict=True))]
    return to_batch(samples, pad_id=0)


@pytest.mark.parametrize("run", ["random_run", "scripted_run"])
def test_old_logprobs_agree_with_a_plain_forward(run, request):
    """The sampler's log-probs are what the trainer recomputes on the segments (fp32)."""
    model, rollouts = request.getfixturevalue(run)
    batch = batch_of(rollouts, [0.0] * len(rollouts))
    with torch.no_grad():
        recomputed, _ = token_logprobs(model, batch.input_ids, batch.loss_mask)
    gap = (recomputed - batch.sampler_logprobs).abs()[batch.loss_mask]
    assert gap.numel() == sum(r.policy_tokens for r in rollouts)
    assert float(gap.mean()) < 1e-4 and float(batch.sampler_logprobs[batch.loss_mask].std()) > 0


def test_rows_carry_episode_reward_and_group(random_run):
    _, rollouts = random_run
    rewards = [float(i) for i in range(len(rollouts))]
    batch = batch_of(rollouts, rewards)
    assert len(batch) == sum(len(r.segments) for r in rollouts)
    expected = [(rewards[i], i // K) for i, r in enumerate(rollouts) for _ in r.segments]
    assert list(zip(batch.rewards.tolist(), batch.group_ids.tolist())) == expected
    assert batch.input_ids.shape == batch.loss_mask.shape == batch.sampler_logprobs.shape
    assert batch.response_tokens.tolist() == [sum(s.loss_mask) for r in rollouts
                                              for s in r.segments]


def test_failed_turn_ends_the_recording(random_run, tokenizer):
    """Turn 1's prompt overflows the context: the episode ends as an agent error and only
    turn 0 is recorded."""
    model, rollouts = random_run
    item = desk_items()[0]
    opening = rollouts[0].turns[0].prompt_ids  # same item and seed: the same first prompt
    backend = hf(model, tokenizer, context_length=len(opening) + 2)
    [rollout] = play_tool_episodes([item], backend, user(), k=1, temperature=1.0,
                                   max_new_tokens=2, episode_config=EPISODE,
                                   episodes_in_flight=1, seed=0)
    assert rollout.trajectory.outcome.end_reason == "agent_error"
    assert len(rollout.turns) == 1 and rollout.turns[0].prompt_ids == opening
    assert len(rollout.segments) == 1 and rollout.policy_tokens == len(rollout.turns[0].token_ids)


def test_rollouts_need_the_log_prob_sampler(tokenizer):
    backend = hf(tiny_model(tokenizer), tokenizer, sampler="hf_generate")
    with pytest.raises(ValueError, match="kimi"):
        play_tool_episodes(desk_items(), backend, user(), k=1, temperature=1.0,
                           max_new_tokens=4, episode_config=EPISODE, episodes_in_flight=1, seed=0)
