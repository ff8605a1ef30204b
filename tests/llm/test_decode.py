"""llm.decode on tiny models built from config: greedy equals ``generate``, budgets, stops,
seeds, log-probs against a teacher-forced forward, shared prefill, the fallback path."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from kimi_pipeline.llm.base import backend_config
from kimi_pipeline.llm.decode import Sampler, fast_path_refusal, pick
from kimi_pipeline.llm.hf_backend import HFBackend
from tests.training import TOOLS, conversation, make_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/llm/conftest.py

PROMPTS = [[5, 6, 7, 8, 9, 10, 11, 12, 13], [3, 4], [20, 21, 22, 23, 24], [40]]
SIZES = {"vocab_size": 128, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 128, "initializer_range": 0.5}


def llama(tie: bool = True, seed: int = 0, **kw) -> LlamaForCausalLM:
    """A wide init, so that greedy continuations differ from prompt to prompt."""
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**SIZES, **kw}, tie_word_embeddings=tie)).eval()


def qwen2(seed: int = 0) -> Qwen2ForCausalLM:
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(Qwen2Config(**SIZES)).eval()
    with torch.no_grad():  # biases are initialised to zero: make them matter
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


def gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=128, n_embd=64, n_layer=2, n_head=4, n_positions=256,
                        initializer_range=0.5)
    return GPT2LMHeadModel(config).eval()


def hf_greedy(model, prompts: list[list[int]], steps: int) -> list[list[int]]:
    """``model.generate`` greedy on the left-padded batch, no stop token."""
    width = max(map(len, prompts))
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps,
                         min_new_tokens=steps, do_sample=False, pad_token_id=0,
                         eos_token_id=None)
    return out[:, width:].tolist()


def teacher_forced(model, prompt: list[int], tokens: list[int]) -> torch.Tensor:
    """log p(token) of each generated token by one forward over prompt + tokens."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + tokens])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)[len(prompt) - 1:-1]
    return logp.gather(1, torch.tensor(tokens)[:, None]).squeeze(1)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------ greedy


@pytest.mark.parametrize("tie", [True, False])
def test_greedy_equals_generate_with_left_padding(tie):
    """Mixed prompt lengths in one batch: token for token what ``generate`` decodes."""
    model = llama(tie)
    sampler = Sampler(model)
    assert sampler.path == "fast"
    rows = sampler.sample(PROMPTS, 12, temperature=0)
    expected = hf_greedy(model, PROMPTS, 12)
    assert [r.token_ids for r in rows] == expected
    assert len({tuple(r.token_ids) for r in rows}) == len(PROMPTS)  # not a constant model
    assert not any(r.stopped for r in rows)


def test_qwen2_biases_take_the_fast_path():
    model = qwen2()
    sampler = Sampler(model)
    assert sampler.path == "fast"
    assert [r.token_ids for r in sampler.sample(PROMPTS, 10, temperature=0)] == \
        hf_greedy(model, PROMPTS, 10)


@pytest.mark.parametrize("make", [llama, gpt2])
def test_fallback_path_gives_the_same_greedy_tokens(make):
    model = make()
    fallback = Sampler(model, fast=False)
    assert fallback.path == "hf"
    rows = fallback.sample(PROMPTS, 10, temperature=0, k=2)
    expected = hf_greedy(model, PROMPTS, 10)
    assert [r.token_ids for r in rows] == [e for e in expected for _ in range(2)]


def test_unsupported_architectures_fall_back_with_a_reason(caplog):
    assert fast_path_refusal(llama()) is None
    assert "model_type 'gpt2'" in fast_path_refusal(gpt2())
    dynamic = llama(rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1e4})
    assert "depends on the sequence length" in fast_path_refusal(dynamic)
    with caplog.at_level("INFO", logger="kimi_pipeline.llm.decode"):
        model = gpt2()
        assert Sampler(model).path == "hf"
        Sampler(model)  # logged once per model
    assert sum("generic HF-forward path" in r.message for r in caplog.records) == 1


# ------------------------------------------------------------------------------ budgets, stops


def test_per_row_budgets_and_stop_tokens():
    """Rows of one prompt may end at different steps (the batch drops them as they end) and
    still decode what they decode alone."""
    model = llama()
    sampler = Sampler(model)
    budgets = [3, 9, 1, 14, 2, 5, 7, 7, 11, 1, 6, 4]  # 4 prompts x 3 rows
    rows = sampler.sample(PROMPTS, budgets, temperature=0, k=3)
    assert [len(r.token_ids) for r in rows] == budgets
    assert sampler.stats.compactions > 0
    full = hf_greedy(model, PROMPTS, 14)
    assert [r.token_ids for r in rows] == [full[i // 3][:b] for i, b in enumerate(budgets)]
    # stop at the third token of each greedy continuation: stop token included, stopped=True
    stops = [[full[i][2]] for i in range(len(PROMPTS))]
    rows = sampler.sample(PROMPTS, 14, stop_ids=stops, temperature=0)
    for row, continuation in zip(rows, full):
        cut = continuation.index(continuation[2]) + 1
        assert row.token_ids == continuation[:cut] and row.stopped
    shared = sampler.sample(PROMPTS, 14, stop_ids={full[0][2], full[1][2]}, temperature=0)
    assert shared[0].stopped and shared[1].stopped and len(shared[0].token_ids) <= 3


def test_zero_budget_and_validation():
    sampler = Sampler(llama())
    empty, three = sampler.sample(PROMPTS[:2], [0, 3], temperature=0)
    assert empty.token_ids == [] and not empty.stopped and len(three.token_ids) == 3
    with pytest.raises(ValueError):
        sampler.sample([[]], 3)
    with pytest.raises(ValueError):
        sampler.sample(PROMPTS, [1, 2, 3])


# ------------------------------------------------------------------------------ sampling


def test_seeded_sampling_is_reproducible_and_seeds_differ():
    sampler = Sampler(llama())
    first = sampler.sample(PROMPTS, 16, temperature=1.0, k=3, generator=gen(7))
    again = sampler.sample(PROMPTS, 16, temperature=1.0, k=3, generator=gen(7))
    other = sampler.sample(PROMPTS, 16, temperature=1.0, k=3, generator=gen(8))
    assert [r.token_ids for r in first] == [r.token_ids for r in again]
    assert [r.logprobs for r in first] == [r.logprobs for r in again]
    assert [r.token_ids for r in first] != [r.token_ids for r in other]
    assert len({tuple(r.token_ids) for r in first[:3]}) > 1  # k samples of a prompt differ


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_pick_draws_from_the_tempered_distribution(temperature):
    """Empirical frequencies of 40,000 draws match softmax(logits / T)."""
    torch.manual_seed(0)
    logits = torch.randn(1, 12) * 2
    token, logprob = pick(logits.expand(40_000, 12), temperature, gen(0))
    freq = torch.bincount(token, minlength=12).float() / token.numel()
    assert torch.allclose(freq, torch.softmax(logits[0] / temperature, -1), atol=0.01)
    assert torch.allclose(logprob, torch.log_softmax(logits[0], -1)[token], atol=1e-6)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("temperature", [0.0, 1.0, 0.7])
def test_logprobs_match_a_teacher_forced_forward(fast, temperature):
    """Each token's log-prob is log-softmax of the unscaled logits (what RL compares with the
    trainer's), whatever the sampling temperature."""
    model = llama(tie=False)
    rows = Sampler(model, fast=fast).sample(PROMPTS, 12, temperature=temperature, k=2,
                                            generator=gen(3))
    for i, row in enumerate(rows):
        reference = teacher_forced(model, PROMPTS[i // 2], row.token_ids)
        assert (reference - torch.tensor(row.logprobs)).abs().max() < 1e-4


# ------------------------------------------------------------------------------ prefill sharing


def test_k_samples_share_one_prefill():
    """One prefill per distinct prompt; its k rows decode what k copies of it decode."""
    model = llama()
    shared = Sampler(model)
    rows = shared.sample(PROMPTS, 8, temperature=0, k=3)
    assert shared.stats.prefill_calls == len(PROMPTS)
    assert shared.stats.prefill_tokens == sum(map(len, PROMPTS))
    copies = Sampler(model)
    alone = copies.sample([p for p in PROMPTS for _ in range(3)], 8, temperature=0)
    assert copies.stats.prefill_calls == 3 * len(PROMPTS)
    assert [r.token_ids for r in rows] == [r.token_ids for r in alone]
    for a, b in zip(rows, alone):  # other batch shapes, other fp32 kernels: 1.2e-5 on Zen 4
        assert max(abs(x - y) for x, y in zip(a.logprobs, b.logprobs)) < 1e-4


def test_weights_are_rebuilt_when_the_model_changes():
    """RL updates the policy in place: the next call samples from the new weights."""
    model = llama()
    sampler = Sampler(model)
    before = sampler.sample(PROMPTS, 8, temperature=0)
    with torch.no_grad():
        for p in model.parameters():
            p.data.mul_(-1.3)  # through .data: no version bump, the checksum sees it
    after = sampler.sample(PROMPTS, 8, temperature=0)
    assert [r.token_ids for r in after] == hf_greedy(model, PROMPTS, 8)
    assert [r.token_ids for r in after] != [r.token_ids for r in before]


# ------------------------------------------------------------------------------ the hf backend


def chat_setup():
    """A tiny Llama over the test tokenizer, three dialogues, greedy ``hf`` backend settings."""
    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(**{**SIZES, "vocab_size": len(tokenizer)},
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config).eval()
    dialogues = [conversation(name)[:2] for name in ("Ana", "Björn", "Omar")]
    settings = {"kind": "hf", "temperature": 0.0, "max_tokens": 10, "device": "cpu"}
    return model, tokenizer, dialogues, settings


def test_backend_samplers_agree_and_expose_token_ids():
    """'kimi' (default) and 'hf_generate' decode the same greedy texts; ``generate_samples``
    adds token ids and log-probs."""
    model, tokenizer, dialogues, settings = chat_setup()
    kimi = HFBackend(backend_config(settings), model=model, tokenizer=tokenizer)
    plain = HFBackend(backend_config({**settings, "sampler": "hf_generate"}), model=model,
                      tokenizer=tokenizer)
    assert kimi.generate(dialogues, TOOLS) == plain.generate(dialogues, TOOLS)
    samples = kimi.generate_samples(dialogues, TOOLS, num_samples=2, temperature=1.0, seed=3)
    for prompt, row in zip(dialogues, samples):
        assert len(row) == 2
        for g in row:
            assert len(g.token_ids) == len(g.logprobs) == g.tokens > 0
            reference = teacher_forced(model, kimi.encode(prompt, TOOLS), g.token_ids)
            assert (reference - torch.tensor(g.logprobs)).abs().max() < 1e-4
