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
from kimi_pipeline.critic.refine import (
    cross_validate,
    folds_of,
    measure,
    refine_critic,
    verifier_pairs,
)
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


def test_a_saved_critic_refits_on_its_pairs_without_reading_them_again(policy, tmp_path,
                                                                        monkeypatch):
    pairs = _pairs(16, seed=5)
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    critic.fit(pairs)
    folder = critic.save(tmp_path / "critic")
    read: list[int] = []
    forward = type(critic)._forward
    monkeypatch.setattr(type(critic), "_forward",
                        lambda self, batch: (read.append(len(batch)), forward(self, batch)))

    again = load_critic(folder, RUBRICS)
    again.fit(pairs)  # what RL's first refresh does with the critic stage's pairs
    assert read == []
    assert again.heads.keys() == critic.heads.keys()
    for name, head in critic.heads.items():
        assert again.heads[name] == pytest.approx(head)
    fresh = _pairs(3, seed=6)
    again.features([(p.prompt, p.chosen) for p in fresh])
    assert sum(read) == 3  # new text is read as before

    other = load_critic(folder, RUBRICS, {**folder.metadata()["critic"], "config": {
        **folder.metadata()["critic"]["config"], "feature_layers": [1.0, 1.0]}})
    other.fit(pairs)  # other layers: the saved features do not apply
    assert sum(read) == 3 + 32

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


def test_features_average_the_configured_band_of_layers(policy):
    """A band of layers is the mean of its layers' features; a one-layer band is that layer."""
    items = [("Answer the question.", "river stone correct"), ("Answer the question.", "wrong")]

    def features(band):
        return make_critic(policy, CriticModelConfig(feature_layers=band, dtype="float32"),
                           RUBRICS).features(items)

    first, second = features((0.5, 0.5)), features((1.0, 1.0))  # layers 1 and 2 of 2
    assert not torch.allclose(torch.tensor(first), torch.tensor(second))
    both = features((0.5, 1.0))
    assert torch.allclose(torch.tensor(both), torch.tensor((first + second) / 2), atol=1e-5)
    saved_before_bands = {"config": {"kind": "bradley_terry", "feature_depth": 1.0}}
    assert load_critic(policy, RUBRICS, saved_before_bands).config.feature_layers == (1.0, 1.0)
    with pytest.raises(ValueError, match="0 < first <= last <= 1"):
        CriticModelConfig(feature_layers=(0.6, 0.3))


def test_refining_without_train_pairs_says_why(policy):
    critic = make_critic(policy, CriticModelConfig(), RUBRICS)
    with pytest.raises(ValueError, match="answered both right and wrong"):
        refine_critic(critic, _pairs(3, seed=6, split="heldout"))


def test_unknown_critic_kind_and_folder_without_critic(policy):
    with pytest.raises(ValueError, match="unknown critic kind 'oracle'"):
        make_critic(policy, CriticModelConfig(kind="oracle"), RUBRICS)
    with pytest.raises(ValueError, match="holds no critic"):
        load_critic(policy, RUBRICS)


class _Spy:
    """A critic that records what it was fitted on and prefers nothing (ties)."""

    kind, refits_from_scratch = "spy", True

    def __init__(self):
        self.fits: list[set[str]] = []
        self.judged: list[tuple[str, set[str]]] = []  # (task of a judged pair, tasks fitted)

    def fit(self, pairs):
        self.fits.append({p.group_id for p in pairs})
        return {"pairs": len(pairs)}

    def judge(self, queries):
        from kimi_pipeline.critic.pairwise import Judgement
        fitted = self.fits[-1] if self.fits else set()
        self.judged += [(q.prompt, fitted) for q in queries]
        return [Judgement(0.5, {}, "spy") for _ in queries]


def test_cross_validation_judges_every_task_with_a_critic_that_never_saw_it():
    pairs = [p.model_copy(update={"group_id": f"task-{i % 7}", "prompt": f"task-{i % 7}"})
             for i, p in enumerate(_pairs(21, seed=8))]
    keep = _pairs(3, seed=9)
    folds = folds_of(pairs, 3, seed=0)
    tasks_of = [{pairs[i].group_id for i in fold} for fold in folds]
    assert sorted(len(f) for f in tasks_of) == [2, 2, 3]  # dealt by task, sizes within one
    assert set().union(*tasks_of) == {p.group_id for p in pairs}
    spy = _Spy()
    result = cross_validate(spy, pairs, keep, folds=3)
    out_of_fold = [(task, fitted) for task, fitted in spy.judged[2 * len(pairs):]]
    assert len(out_of_fold) == 2 * len(pairs)  # every pair, both orders, after the plain measure
    assert all(task not in fitted for task, fitted in out_of_fold)
    assert all({p.group_id for p in keep} <= fitted for fitted in spy.fits)
    assert spy.fits[-1] == {p.group_id for p in [*pairs, *keep]}  # finally fitted on all
    assert result.after["n"] == len(pairs) and result.after["folds"] == 3


def test_cross_validated_critic_learns_what_holds_across_tasks(policy):
    pairs = [p.model_copy(update={"group_id": f"task-{i % 6}"})
             for i, p in enumerate(_pairs(36, seed=10))]
    critic = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    result = cross_validate(critic, pairs, folds=3)
    assert result.before["accuracy"] == 0.5 and result.after["accuracy"] > 0.8


def test_cross_validation_needs_a_critic_that_refits_from_scratch_and_two_tasks(policy):
    spy = _Spy()
    spy.refits_from_scratch = False
    with pytest.raises(ValueError, match="fits on top of its last fit"):
        cross_validate(spy, _pairs(4, seed=11), folds=2)
    one_task = [p.model_copy(update={"group_id": "only"}) for p in _pairs(4, seed=12)]
    with pytest.raises(ValueError, match="two tasks at least"):
        cross_validate(_Spy(), one_task, folds=2)


def test_the_preference_head_learns_from_verified_pairs_when_there_are_any(policy):
    verified = _pairs(16, seed=13)
    # bootstrap twins that, unlike the verifier, prefer the answers marked 'wrong'
    twins = [p.model_copy(update={"chosen": p.rejected, "rejected": p.chosen,
                                  "source": "synthetic", "pair_id": f"twin-{p.pair_id}"})
             for p in _pairs(48, seed=14)]
    heldout = _pairs(12, seed=15, split="heldout")
    weights = {"verifier": 1.0, "synthetic": 5.0}
    only_verified = make_critic(policy, CriticModelConfig(l2=1.0, source_weights=weights),
                                RUBRICS)
    assert only_verified.fit([*verified, *twins])["heads"]["preference"] == len(verified)
    mixed = make_critic(policy, CriticModelConfig(l2=1.0, source_weights=weights,
                                                  preference_sources=[]), RUBRICS)
    assert mixed.fit([*verified, *twins])["heads"]["preference"] == len(verified) + len(twins)
    assert measure(only_verified, heldout)["accuracy"] > 0.8 > measure(mixed, heldout)["accuracy"]
    bootstrap_only = make_critic(policy, CriticModelConfig(l2=1.0), RUBRICS)
    assert bootstrap_only.fit(twins)["heads"]["preference"] == len(twins)  # none verified yet
