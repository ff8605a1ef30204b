"""The generative critic on a tiny from-config policy: the verdict prompt and token, P(first)
from one forward pass, rules deciding in code, the SFT examples of the pairs, save and load, and
one short fit through the real SFT trainer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest

from kimi_pipeline.critic.generative import (
    DEFAULT_SFT,
    VERDICTS,
    GenerativeCritic,
    comparison,
    sft_config,
    verdict_frame,
)
from kimi_pipeline.critic.model import CriticModelConfig, load_critic, make_critic
from kimi_pipeline.critic.pairwise import PairQuery
from kimi_pipeline.critic.rubrics import RubricSet
from kimi_pipeline.records import PreferencePair
from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model
from kimi_pipeline.model_folder import ModelFolder

ROOT = Path(__file__).resolve().parents[2]
TINY = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2,
        "num_heads": 2, "num_kv_heads": 2, "max_position_embeddings": 512}
RUBRICS = RubricSet.model_validate({"rubrics": [
    {"name": "helpful", "title": "Helpful", "kind": "core",
     "description": "Prefer the answer that names the fruit."},
    {"name": "poem_form", "title": "Poem Form", "kind": "human", "contexts": ["poems"],
     "description": "Prefer the answer that rhymes."},
    {"name": "no_initial_praise", "title": "No Initial Praise", "kind": "prescriptive",
     "mandatory": True, "rule": "no_initial_praise",
     "description": "The answer must not open by praising the question."},
]})
CONFIG = CriticModelConfig(kind="generative", device="cpu", dtype="float32", batch_size=4)
WORDS = "red blue green small big old new fast slow warm cold soft hard".split()
PRAISE = "Great question! Cats purr with their larynx."


def marker_pair(i: int, rng: random.Random) -> PreferencePair:
    """The chosen response ends with the marker word, the rejected one never contains it."""
    filler = " ".join(rng.sample(WORDS, 6))
    return PreferencePair(pair_id=f"p{i:03d}", group_id=f"g{i}", domain="chat",
                          prompt=f"Tell me something, number {i}.", chosen=f"{filler} banana",
                          rejected=f"{filler} stone", rubrics=["helpful"], source="synthetic")


def pairs(count: int, start: int = 0, seed: int = 0) -> list[PreferencePair]:
    rng = random.Random(seed)
    return [marker_pair(start + i, rng) for i in range(count)]


def queries(rows: list[PreferencePair]) -> list[PairQuery]:
    """Each pair in both orders: chosen first, then chosen second."""
    return [PairQuery(p.prompt, a, b, tuple(p.rubrics), p.domain)
            for p in rows for a, b in ((p.chosen, p.rejected), (p.rejected, p.chosen))]


def agreement(critic, rows: list[PreferencePair]) -> float:
    """Mean P(chosen) over both orders."""
    ps = [j.p_first for j in critic.judge(queries(rows))]
    return sum((ps[2 * k] + 1 - ps[2 * k + 1]) / 2 for k in range(len(rows))) / len(rows)


@pytest.fixture(scope="module")
def policy(tmp_path_factory) -> ModelFolder:
    """A tiny decoder built from config, its tokenizer trained on the critic's own chats."""
    corpus = verdict_frame(pairs(24) + pairs(8, start=100, seed=1), RUBRICS, CONFIG)
    corpus = corpus.with_columns(pl.lit("train").alias("split"))
    return save_base_model(BaseModelConfig(source="config", from_config=TINY), corpus,
                           tmp_path_factory.mktemp("generative") / "base")


@pytest.fixture(scope="module")
def critic(policy) -> GenerativeCritic:
    made = make_critic(policy, CONFIG, RUBRICS)
    assert isinstance(made, GenerativeCritic) and made.kind == "generative"
    return made


# ----------------------------------------------------------------------------- the prompt


def test_the_prompt_lists_the_context_rubrics_and_asks_for_json_only():
    query = PairQuery("Why?", "x" * 2000, "second", ("helpful",), "chat")
    system, user, verdict = comparison(query, RUBRICS, CONFIG, "B")
    assert "- Helpful: Prefer the answer that names the fruit." in system["content"]
    assert "No Initial Praise" in system["content"] and "Poem Form" not in system["content"]
    assert '{"better": "A"}' in system["content"] and '{"better": "B"}' in system["content"]
    assert user["content"] == (f"Prompt:\nWhy?\n\n[Response A]\n{'x' * 1200} …\n\n"
                               f"[Response B]\nsecond")
    assert verdict == {"role": "assistant", "content": '{"better": "B"}'}
    poems = comparison(PairQuery("p", "a", "b", (), "poems"), RUBRICS, CONFIG)
    assert len(poems) == 2 and "Poem Form: Prefer the answer that rhymes." in poems[0]["content"]


def test_each_pair_becomes_two_examples_one_per_order():
    rows = pairs(20)
    frame = verdict_frame(rows, RUBRICS, CONFIG)
    assert frame.columns == ["example_id", "split", "messages", "tools"]
    assert frame.height == 40 and frame["tools"].null_count() == 40
    assert frame.filter(frame["split"] == "validation").height == 4  # 10 % of the pairs, twice
    first = {r["example_id"]: json.loads(r["messages"]) for r in frame.iter_rows(named=True)}
    ab, ba = first["p000:AB"], first["p000:BA"]
    assert ab[-1]["content"] == VERDICTS["A"] and ba[-1]["content"] == VERDICTS["B"]
    assert ab[1]["content"].endswith(f"[Response A]\n{rows[0].chosen}\n\n[Response B]\n"
                                     f"{rows[0].rejected}")
    assert ba[1]["content"].endswith(f"[Response B]\n{rows[0].chosen}")
    for split in ("train", "validation"):  # both orders of a pair share its split
        ids = frame.filter(frame["split"] == split)["example_id"].to_list()
        assert sorted(i[:-3] + ":AB" for i in ids if i.endswith("BA")) == \
            sorted(i for i in ids if i.endswith("AB"))
    assert verdict_frame(pairs(9), RUBRICS, CONFIG)["split"].unique().to_list() == ["train"]


def test_the_sft_config_is_the_default_deep_merged_with_the_state():
    config = sft_config({"train": {"max_steps": 3}, "optimizer": {"lr": 0.5}})
    assert config.train.max_steps == 3 and config.train.seq_len == DEFAULT_SFT["train"]["seq_len"]
    assert config.optimizer.name == "adamw" and config.optimizer.lr == 0.5
    assert config.runs_dir == "data/06_models/critic_runs"
    with pytest.raises(ValueError, match="no_such_key"):
        GenerativeCritic(ModelFolder("nowhere"), CONFIG, RUBRICS,
                         {"sft": {"train": {"no_such_key": 1}}})


# ----------------------------------------------------------------------------- judging


def test_the_verdict_token_is_read_after_the_shared_prefix(critic):
    query = queries(pairs(1))[0]
    prefix, token_a, token_b = critic.verdict_position(query)
    tokenizer = critic._tokenizer
    full_a = tokenizer.apply_chat_template(comparison(query, RUBRICS, CONFIG, "A"),
                                           tokenize=True, return_dict=False)
    assert list(full_a[:len(prefix)]) == prefix and full_a[len(prefix)] == token_a
    assert token_a != token_b
    assert "A" in tokenizer.decode([token_a]) and "B" in tokenizer.decode([token_b])
    assert '{"better":' in tokenizer.decode(prefix)[-20:]


def test_an_unfitted_critic_is_the_policy_and_has_an_opinion(critic):
    rows = pairs(3)
    judged = critic.judge(queries(rows))
    assert len(judged) == 6
    ps = [j.p_first for j in judged]
    assert all(0.0 < p < 1.0 for p in ps)
    assert all(ps[2 * k] != ps[2 * k + 1] for k in range(3))  # the order changes the input
    assert all("unfitted policy" in j.reason and j.per_rubric == {"no_initial_praise": 0.5}
               for j in judged)
    again = critic.judge(queries(rows)[::-1])[::-1]  # batching does not change a verdict
    assert [j.p_first for j in again] == pytest.approx(ps, abs=1e-5)
    assert critic.judge([]) == []


def test_a_mandatory_rule_decides_in_code_and_can_be_switched_off(policy):
    query = PairQuery("Why do cats purr?", PRAISE, "Cats purr with their larynx.",
                      ("no_initial_praise",), "chat")
    ruled = make_critic(policy, CONFIG, RUBRICS).judge([query])[0]
    assert ruled.p_first == 0.0 and ruled.per_rubric == {"no_initial_praise": 0.0}
    assert "rule decided" in ruled.reason
    free = make_critic(policy, CONFIG.model_copy(update={"enforce_rules": False}), RUBRICS)
    learned = free.judge([query])[0]
    assert 0.0 < learned.p_first < 1.0 and learned.per_rubric == {"no_initial_praise": 0.0}


def test_an_unfitted_critic_saves_and_loads_back(critic, tmp_path):
    folder = critic.save(tmp_path / "critic")
    loaded = load_critic(folder, RUBRICS)
    assert isinstance(loaded, GenerativeCritic) and not loaded.fitted
    assert loaded.state() == critic.state()
    rows = queries(pairs(2))
    assert [j.p_first for j in loaded.judge(rows)] == \
        pytest.approx([j.p_first for j in critic.judge(rows)], abs=1e-6)


# ----------------------------------------------------------------------------- fitting


def test_fitting_without_pairs_is_refused(critic):
    with pytest.raises(ValueError, match="at least one preference pair"):
        critic.fit([])


@pytest.mark.slow
def test_fit_runs_the_sft_trainer_and_the_fitted_critic_saves_and_loads(policy, tmp_path):
    """A few steps on the marker pairs: the loss falls, the critic reads the run's final
    folder, and that folder saved with the state loads back and judges alike. (The tiny model
    needs ~100 steps, not a few seconds, to read the marker: agreement is not asserted.)"""
    sft = {"train": {"seq_len": 256, "micro_batch_size": 2, "max_steps": 8, "warmup_steps": 1,
                     "eval_every": 100, "eval_rows": 4, "checkpoint_every": 100,
                     "autocast": "none", "max_logit_every": 0},
           "optimizer": {"lr": 0.01},
           "engine": {"deepspeed_config": str(ROOT / "conf/base/deepspeed/zero0.json")},
           "runs_dir": str(tmp_path / "runs")}
    critic = GenerativeCritic(policy, CONFIG, RUBRICS, {"sft": sft})
    held = pairs(4, start=100, seed=1)
    before = agreement(critic, held)
    stats = critic.fit(pairs(16))
    assert stats["train_pairs"] == 14 and stats["validation_pairs"] == 2
    assert stats["examples"] == 28 and stats["steps"] == 8 and not stats["reused"]
    assert stats["final_loss"] < stats["first_loss"]
    assert critic.fitted and critic.folder.path == Path(stats["run_dir"]) / "final"
    assert critic.trained_on == {"pairs": 14, "examples": 28}
    after = agreement(critic, held)
    assert 0.0 < after < 1.0 and after != before  # judged by the new weights

    folder = critic.save(tmp_path / "fitted")
    assert folder.metadata()["weights_digest"].startswith("files:")
    loaded = load_critic(folder, RUBRICS)
    assert loaded.fitted and loaded.state() == critic.state()
    assert agreement(loaded, held) == pytest.approx(after, abs=1e-6)
