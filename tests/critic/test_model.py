"""The Bradley–Terry critic on a tiny policy: fitting raises agreement, rules decide by code,
a saved critic judges exactly as before, and refinement is measured on held-out tasks."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.critic.model import CriticModelConfig, load_critic, make_critic
from kimi_pipeline.critic.pairwise import PairQuery
from kimi_pipeline.critic.refine import measure, refine_critic, verifier_pairs
from kimi_pipeline.critic.rubrics import load_rubrics
from kimi_pipeline.records import GymResult, PreferencePair
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.training.tokenizer import train_tokenizer

RUBRICS = load_rubrics(Path(__file__).resolve().parents[2] / "conf" / "base"
                       / "critic_rubrics.yml")
WORDS = "river stone cloud lamp garden paper window music bread letter".split()
TEXTS = [" ".join(WORDS), "correct answer verified", "Great question! here is", "wrong"] * 8


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> ModelFolder:
    tokenizer = train_tokenizer(TEXTS, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)).eval()
    return ModelFolder.save(model, tokenizer, tmp_path_factory.mktemp("policy"))


def _text(rng: random.Random, marker: bool) -> str:
    words = rng.sample(WORDS, 5)
    return " ".join(words + (["correct", "answer", "verified"] if marker else ["wrong"]))


def _pairs(n: int, seed: int, split: str = "train") -> list[PreferencePair]:
    """Chosen answers carry the words 'correct answer verified', rejected ones 'wrong'."""
    rng = random.Random(seed)
    return [PreferencePair(pair_id=f"{seed}-{i}", group_id=f"task-{seed}-{i}", domain="math",
                           prompt="Answer the question.", chosen=_text(rng, True),
                           rejected=_text(rng, False), source="verifier", split=split)
            for i in range(n)]


def test_fitting_raises_agreement_on_held_out_pairs(policy):
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    heldout = _pairs(12, seed=1, split="heldout")
    before = measure(critic, heldout)
    assert before["accuracy"] == 0.5 and before["tie_rate"] == 1.0  # unfitted: no opinion
    critic.fit(_pairs(24, seed=2))
    after = measure(critic, heldout)
    assert after["strict_accuracy"] >= 0.9
    assert after["position_bias"] == 0.0  # one score per response: order cannot matter


def test_a_saved_critic_judges_as_before(policy, tmp_path):
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    critic.fit(_pairs(16, seed=3))
    queries = [PairQuery("Answer the question.", p.chosen, p.rejected, ()) for p in
               _pairs(4, seed=4)]
    folder = critic.save(tmp_path / "critic")
    again = load_critic(folder, RUBRICS)
    assert [j.p_first for j in again.judge(queries)] == pytest.approx(
        [j.p_first for j in critic.judge(queries)])
    assert folder.load_model() is not None  # still a loadable HF folder


def test_mandatory_rules_decide_when_one_side_breaks_them(policy):
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    critic.fit(_pairs(8, seed=5))
    query = PairQuery("How do I bake bread?", "Great question! Knead the dough well.",
                      "Knead the dough well.", ())
    judgement = critic.judge([query])[0]
    assert judgement.p_first == 0.0 and "rule" in judgement.reason
    assert judgement.per_rubric["no_initial_praise"] == 0.0
    critic.config.enforce_rules = False
    assert 0.0 < critic.judge([query])[0].p_first < 1.0  # the learned head alone


def test_verifier_pairs_split_by_task_and_refinement_is_measured(policy):
    rng = random.Random(0)
    rollouts = [GymResult(task_id=f"t{t}", domain="math", sample_index=s,
                          response=_text(rng, s % 2 == 0), reward=float(s % 2 == 0),
                          reason="checked") for t in range(20) for s in range(4)]
    rollouts.append(GymResult(task_id="t0", domain="math", response="  ", reward=0.0,
                              reason="empty"))  # empty answers never enter a pair
    prompts = {f"t{t}": "Answer the question." for t in range(20)}
    pairs = verifier_pairs(rollouts, prompts, share=0.3, seed=0)
    assert all(p.chosen.strip() and p.rejected.strip() for p in pairs)
    splits = {}
    for p in pairs:
        splits.setdefault(p.group_id, set()).add(p.split)
    assert all(len(s) == 1 for s in splits.values())  # a task is trained on or measured
    assert {"train", "heldout"} == {s for v in splits.values() for s in v}
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    result = refine_critic(critic, pairs)
    assert result.before["accuracy"] == 0.5
    assert result.after["accuracy"] > 0.8 and result.after["n"] == sum(
        p.split == "heldout" for p in pairs)


def test_refining_without_train_pairs_says_why(policy):
    critic = make_critic(policy, CriticModelConfig(), RUBRICS)
    with pytest.raises(ValueError, match="answered both right and wrong"):
        refine_critic(critic, _pairs(3, seed=6, split="heldout"))


def test_unknown_critic_kind_and_folder_without_critic(policy):
    with pytest.raises(ValueError, match="unknown critic kind 'oracle'"):
        make_critic(policy, CriticModelConfig(kind="oracle"), RUBRICS)
    with pytest.raises(ValueError, match="holds no critic"):
        load_critic(policy, RUBRICS)
