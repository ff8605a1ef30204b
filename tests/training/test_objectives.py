"""The RL losses against hand-computed examples, the batch type, and the objective registry."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.training.objectives import (
    RolloutBatch, StepScale, group_baseline, grpo_loss, k15_loss, make_objective,
    objective_names, pad_rows, shared_prefixes, token_logprobs,
)


@pytest.fixture(scope="module")
def tiny_causal_lm() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=16, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=32)
    return LlamaForCausalLM(config).eval()


def _batch(**extra) -> RolloutBatch:
    # two prompts x two samples; prompt tokens (mask 0) then 1-2 response tokens
    ids = torch.tensor([[5, 6, 7, 0], [5, 6, 8, 9], [4, 7, 0, 0], [4, 8, 9, 0]])
    mask = torch.tensor([[0, 0, 1, 0], [0, 0, 1, 1], [0, 1, 0, 0], [0, 1, 1, 0]], dtype=torch.bool)
    return RolloutBatch(input_ids=ids, loss_mask=mask, sampler_logprobs=torch.zeros(4, 4),
                        rewards=torch.tensor([1.0, 0.0, 0.5, 0.5]),
                        group_ids=torch.tensor([0, 0, 1, 1]), **extra)


def test_registry_lists_the_objectives_and_names_an_unknown_one():
    assert {"sft", "k1.5", "grpo"} <= set(objective_names())
    with pytest.raises(ValueError, match="unknown objective 'ppo'.*k1.5"):
        make_objective({"name": "ppo"})


def test_group_baseline_is_the_mean_and_std_of_each_group():
    mean, std = group_baseline(torch.tensor([1.0, 0.0, 0.5, 0.5, 3.0]),
                               torch.tensor([7, 7, 2, 2, 9]))
    assert mean.tolist() == [0.5, 0.5, 0.5, 0.5, 3.0]
    assert std.tolist() == [0.5, 0.5, 0.0, 0.0, 0.0]


def test_k15_loss_matches_a_hand_computed_example():
    # row 0: log-ratio 0.2 - 0.0 = 0.2; row 1: (−1.0 − (−0.5)) + (−2.0 − (−2.2)) = −0.3
    logprobs = torch.tensor([[0, 0, 0.2, 0], [0, 0, -1.0, -2.0]])
    old = torch.tensor([[0, 0, 0.0, 0], [0, 0, -0.5, -2.2]])
    mask = torch.tensor([[0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    adv = torch.tensor([0.5, -0.5])
    tau = 2.0
    loss, ratio = k15_loss(logprobs, old, mask, adv, tau, per_token=False, sequences=2)
    expected = ((0.5 - 2.0 * 0.2) ** 2 + (-0.5 - 2.0 * -0.3) ** 2) / 2  # (0.01 + 0.01) / 2
    assert ratio.tolist() == pytest.approx([0.2, -0.3])
    assert float(loss) == pytest.approx(expected)
    per_token, ratio = k15_loss(logprobs, old, mask, adv, tau, per_token=True, sequences=2)
    assert ratio.tolist() == pytest.approx([0.2, -0.15])
    assert float(per_token) == pytest.approx(((0.5 - 0.4) ** 2 + (-0.5 + 0.3) ** 2) / 2)


def test_k15_gradient_at_the_old_policy_is_the_policy_gradient():
    # at π = π_old the gradient of Σ(A − τ·ratio)²/N w.r.t. log π(y_i) is −2τA_i/N
    logprobs = torch.tensor([[0.0, -1.0], [0.0, -2.0]], requires_grad=True)
    mask = torch.tensor([[0, 1], [0, 1]], dtype=torch.bool)
    loss, _ = k15_loss(logprobs, logprobs.detach(), mask, torch.tensor([0.25, -0.25]), 0.5,
                       False, 2)
    loss.backward()
    assert logprobs.grad[:, 1].tolist() == pytest.approx([-2 * 0.5 * 0.25 / 2, 2 * 0.5 * 0.25 / 2])
    assert logprobs.grad[:, 0].tolist() == [0.0, 0.0]  # untrained tokens get nothing


def test_grpo_loss_matches_a_hand_computed_example():
    logprobs = torch.tensor([[0.0, math.log(1.5)], [0.0, math.log(0.9)]])
    old = torch.zeros(2, 2)
    mask = torch.tensor([[0, 1], [0, 1]], dtype=torch.bool)
    adv = torch.tensor([1.0, -1.0])
    loss, stats = grpo_loss(logprobs, old, mask, adv, clip=0.2, aggregation="token", tokens=2,
                            sequences=2)
    # row 0: ratio 1.5, A=1 → −min(1.5, 1.2) = −1.2; row 1: ratio 0.9, A=−1 → −min(−0.9, −0.9)
    assert float(loss) == pytest.approx((-1.2 + 0.9) / 2)
    assert stats["clip_fraction_sum"] == 1.0
    # the k3 KL to a reference: exp(ref − lp) − (ref − lp) − 1
    ref = torch.zeros(2, 2)
    with_kl, _ = grpo_loss(logprobs, old, mask, adv, 0.2, "token", 2, 2, ref, kl_coef=0.1)
    kl = [math.exp(-math.log(r)) + math.log(r) - 1 for r in (1.5, 0.9)]
    assert float(with_kl) == pytest.approx((-1.2 + 0.9 + 0.1 * sum(kl)) / 2)


def test_grpo_sequence_aggregation_averages_within_each_sequence_first():
    logprobs = torch.zeros(2, 3)
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    adv = torch.tensor([1.0, 2.0])
    token, _ = grpo_loss(logprobs, torch.zeros(2, 3), mask, adv, 0.2, "token", 4, 2)
    sequence, _ = grpo_loss(logprobs, torch.zeros(2, 3), mask, adv, 0.2, "sequence", 4, 2)
    assert float(token) == pytest.approx(-(3 * 1 + 2) / 4)
    assert float(sequence) == pytest.approx(-(1 + 2) / 2)


def test_batch_checks_shapes_splits_and_trims_padding():
    with pytest.raises(ValueError, match="loss_mask"):
        RolloutBatch(input_ids=torch.zeros(2, 3, dtype=torch.long),
                     loss_mask=torch.zeros(2, 2, dtype=torch.bool),
                     sampler_logprobs=torch.zeros(2, 3), rewards=torch.zeros(2),
                     group_ids=torch.zeros(2, dtype=torch.long))
    batch = _batch()
    parts = batch.split(3)
    assert [len(p) for p in parts] == [2, 1, 1]
    assert parts[2].input_ids.shape == (1, 3)  # its last column is padding
    assert batch.response_tokens.tolist() == [1, 2, 1, 2]
    assert pad_rows([[1, 2], [3]], 0, torch.long).tolist() == [[1, 2], [3, 0]]


def test_step_losses_sum_to_the_loss_of_the_whole_step(tiny_causal_lm):
    """Micro-batch losses are divided by the step's totals: any split gives the same sum."""
    model = tiny_causal_lm
    objective = make_objective({"name": "k1.5", "tau": 0.5})
    batch = objective.prepare(_batch(old_logprobs=torch.full((4, 4), -3.0)))
    scale = StepScale(sequences=4, tokens=float(batch.loss_mask.sum()))
    whole, _ = objective(model, batch, scale)
    parts = sum(objective(model, part, scale)[0].detach() for part in batch.split(3))
    assert float(parts) == pytest.approx(float(whole.detach()), rel=1e-5)
    assert batch.advantages.tolist() == [0.5, -0.5, 0.0, 0.0]


def test_token_logprobs_match_a_full_forward(tiny_causal_lm):
    model = tiny_causal_lm
    batch = _batch()
    got, entropy = token_logprobs(model, batch.input_ids, batch.loss_mask, entropy=True)
    full = torch.log_softmax(model(input_ids=batch.input_ids).logits.float(), -1)
    want = full[:, :-1].gather(-1, batch.input_ids[:, 1:, None]).squeeze(-1)
    mask = batch.loss_mask[:, 1:]
    assert torch.allclose(got[:, 1:][mask], want[mask], atol=1e-5)
    assert (got[~batch.loss_mask] == 0).all()
    assert (entropy[batch.loss_mask] > 0).all()


def test_sft_objective_is_the_mean_negative_log_likelihood_of_the_trained_tokens(tiny_causal_lm):
    batch = _batch()
    loss, _ = make_objective({"name": "sft"})(tiny_causal_lm, batch,
                                              StepScale(4, float(batch.loss_mask.sum())))
    logprobs, _ = token_logprobs(tiny_causal_lm, batch.input_ids, batch.loss_mask)
    assert float(loss.detach()) == pytest.approx(-float(logprobs.detach().sum()) / 6)


def test_a_shared_prompt_runs_once_with_the_same_logprobs_and_gradients(tiny_causal_lm):
    """Groups whose rows share a long prompt take the KV-cache path; the values and the
    gradients equal the plain forward's (a one-row group and a group that diverges early take
    the plain path inside the same call)."""
    model = tiny_causal_lm.train()
    prompt = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    rows = [prompt + [7, 8, 9], prompt + [8, 0, 0], prompt + [7, 7, 0],  # group 0: shared
            [2] * 10 + [4, 4, 0],                                       # group 1: alone
            [1, 2] + [3] * 8 + [5, 0, 0], [1, 3] + [3] * 8 + [6, 6, 0]]  # group 2: diverges
    ids = torch.tensor(rows)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for r, row in enumerate(rows):
        mask[r, 10:] = torch.tensor(row[10:]) != 0
    groups = torch.tensor([0, 0, 0, 1, 2, 2])

    def run(**kwargs):
        model.zero_grad()
        lp, ent = token_logprobs(model, ids, mask, entropy=True, **kwargs)
        (lp * torch.arange(1.0, 7.0)[:, None]).sum().backward()
        return lp.detach(), ent, [p.grad.clone() for p in model.parameters()]

    calls = []
    hook = model.register_forward_pre_hook(lambda _m, _a, kw: calls.append(kw["input_ids"].shape),
                                           with_kwargs=True)
    try:
        plain, plain_ent, plain_grads = run()
        shared, shared_ent, shared_grads = run(groups=groups)
    finally:
        hook.remove()
        model.eval()
    # plain: one forward of all rows; shared: group 0's prompt once, then its 3 responses,
    # then group 1 and group 2 plain
    assert calls == [(6, 13), (1, 9), (3, 4), (1, 12), (2, 12)]
    # what RL counts as computed tokens (tokens/s, MFU): group 0's 9 prompt tokens once
    assert [prefix for _, prefix in shared_prefixes(ids, mask, groups)] == [9, 0, 0]
    assert (plain[mask] != 0).all()
    assert torch.allclose(shared, plain, atol=1e-5)
    assert torch.allclose(shared_ent, plain_ent, atol=1e-5)
    for got, want in zip(shared_grads, plain_grads):
        assert torch.allclose(got, want, atol=1e-5)
