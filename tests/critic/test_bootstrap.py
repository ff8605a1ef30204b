"""Bootstrap pairs: every rejected twin has the defect it is labelled with, and chosen is clean."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from kimi_pipeline.critic.bootstrap import (
    DEGRADATIONS,
    PRAISE_OPENERS,
    SELF_JUSTIFICATIONS,
    UNSUPPORTED_ASIDES,
    add_praise_opener,
    add_self_justification,
    degraded_pairs,
    rule_pairs,
)
from kimi_pipeline.critic.rubrics import load_rubrics
from kimi_pipeline.critic.rules import get_rule, no_explicit_justification, no_initial_praise

RUBRICS = load_rubrics(Path(__file__).resolve().parents[2] / "conf" / "base" / "critic_rubrics.yml")

SAMPLES = [
    ("g1", "explanation", "Explain how a sourdough starter makes bread rise.",
     "A starter is a colony of wild yeast and lactic acid bacteria. The yeast eats sugars in the "
     "flour and releases carbon dioxide. The gluten network traps that gas, so the dough "
     "swells. The bacteria add the sour taste."),
    ("g2", "advice", "How can I sleep better during the day after night shifts?",
     "Make the bedroom as dark as you can with blackout curtains or an eye mask.\n\nKeep the same "
     "sleep window even on days off, and avoid caffeine in the last four hours of your shift. "
     "Wearing sunglasses on the drive home also helps your body wind down."),
    ("g3", "creative_writing", "Write a short poem about an old workbench.",
     "Scarred oak, a map of every cut,\nthe vice still warm from hands long gone.\nSawdust "
     "settles where he stood,\nand the grain remembers on."),
    ("g4", "open_qa", "Are things built worse today than fifty years ago?",
     "Partly, but survivorship bias plays a big role. The old furniture we still see is the "
     "small share that lasted; the flimsy pieces were thrown away long ago. Modern goods are "
     "often designed to a price, yet many are safer and more efficient than older ones."),
    ("g5", "advice", "How do I eat healthier on the road?",
     "Pack a cooler with fruit, yogurt and cut vegetables so you are not relying on the counter "
     "at every stop. When you do eat out, pick grilled over fried and swap fries for a salad. "
     "Drink water between stops instead of soda."),
]


def test_pools_are_varied():
    assert len(set(PRAISE_OPENERS)) >= 15 and len(set(SELF_JUSTIFICATIONS)) >= 15
    assert {"off_topic", "truncated", "repetition_loop", "unsupported_aside"} <= set(DEGRADATIONS)


@pytest.mark.parametrize("opener", PRAISE_OPENERS)
def test_every_praise_opener_is_caught_by_the_praise_rule(opener):
    assert no_initial_praise("Why is the sea salty?", f"{opener} Rivers carry salt.").violated


@pytest.mark.parametrize("sentence", SELF_JUSTIFICATIONS)
def test_every_self_justification_is_caught_by_the_justification_rule(sentence):
    assert no_explicit_justification("Why is the sea salty?", f"Rivers carry salt. {sentence}"
                                     ).violated


@pytest.mark.parametrize("aside", UNSUPPORTED_ASIDES)
def test_unsupported_asides_break_no_prescriptive_rule(aside):
    text = f"Rivers carry salt. {aside}"
    assert not no_initial_praise("q", text).violated
    assert not no_explicit_justification("q", text).violated


def test_rule_pairs_label_each_prescriptive_rubric_and_the_rule_agrees():
    skipped = Counter()
    pairs = rule_pairs(SAMPLES, random.Random(0), RUBRICS, skipped)
    assert len(pairs) == 2 * len(SAMPLES) and not skipped
    for pair in pairs:
        (rubric,) = pair.rubrics
        rule = get_rule(RUBRICS.get(rubric).rule)
        assert pair.source == "rule" and pair.split == "train"
        assert rule(pair.prompt, pair.rejected).violated
        assert not any(get_rule(r.rule)(pair.prompt, pair.chosen).violated
                       for r in RUBRICS.with_rules())
        assert rubric in pair.reasons[0]
    assert Counter(p.rubrics[0] for p in pairs) == {
        "no_initial_praise": len(SAMPLES), "no_explicit_justification": len(SAMPLES)}


def test_responses_that_already_break_a_rule_are_skipped_and_counted():
    dirty = [("g9", "advice", "Any tips?", "Great question! Drink water and sleep early.")]
    skipped = Counter()
    assert rule_pairs(dirty, random.Random(0), RUBRICS, skipped) == []
    assert degraded_pairs(dirty, random.Random(0), RUBRICS, skipped=skipped) == []
    assert skipped["response already breaks a rule"] == 2


def test_violating_twins_keep_the_original_text_and_layout():
    rng = random.Random(4)
    clean = SAMPLES[1][3]
    praised = add_praise_opener(clean, rng)
    assert praised.endswith(clean)
    justified = add_self_justification(clean, rng)
    assert justified.count("\n\n") == clean.count("\n\n") + 1
    for sentence in clean.replace("\n\n", " ").split(". "):
        assert sentence in justified


def test_pair_ids_are_deterministic_and_unique():
    first = rule_pairs(SAMPLES, random.Random(7), RUBRICS)
    again = rule_pairs(SAMPLES, random.Random(7), RUBRICS)
    assert [p.pair_id for p in first] == [p.pair_id for p in again]
    assert len({p.pair_id for p in first}) == len(first)


def by_kind(pairs):
    return {pair.reasons[0].rsplit("'", 2)[-2]: pair for pair in pairs}


@pytest.mark.parametrize("sample", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_each_degradation_makes_its_defect(sample):
    group, _, prompt, clean = sample
    pairs = degraded_pairs(SAMPLES, random.Random(1), RUBRICS)
    mine = by_kind(p for p in pairs if p.group_id == group)
    assert set(mine) == set(DEGRADATIONS)
    for kind, pair in mine.items():
        assert pair.chosen == clean and pair.source == "synthetic" and pair.split == "train"
        assert pair.rubrics == list(DEGRADATIONS[kind].rubrics)
        assert pair.rejected != clean
    others = {s[3] for s in SAMPLES if s[0] != group}
    assert mine["off_topic"].rejected in others
    truncated = mine["truncated"].rejected
    assert clean.startswith(truncated) and 0.25 < len(truncated) / len(clean) < 0.55
    assert truncated[-1] not in ".!?"
    looped = mine["repetition_loop"].rejected
    assert max(looped.count(s) for s in looped.replace("\n", " ").split(". ") if s) >= 4
    aside = mine["unsupported_aside"].rejected
    assert any(a in aside for a in UNSUPPORTED_ASIDES) and len(aside) > len(clean)


def test_degradations_attach_core_rubric_names():
    assert DEGRADATIONS["off_topic"].rubrics == ("clarity_relevance",)
    assert DEGRADATIONS["truncated"].rubrics == ("clarity_relevance",)
    assert DEGRADATIONS["repetition_loop"].rubrics == ("conversational_fluency",)
    assert DEGRADATIONS["unsupported_aside"].rubrics == ("objective_grounded",)
    assert set(RUBRICS.names) >= {n for d in DEGRADATIONS.values() for n in d.rubrics}


def test_degradations_can_be_chosen_and_unknown_ones_are_refused():
    pairs = degraded_pairs(SAMPLES, random.Random(0), RUBRICS, degradations=["truncated"])
    assert len(pairs) == len(SAMPLES) and all(p.rubrics == ["clarity_relevance"] for p in pairs)
    with pytest.raises(ValueError, match="unknown degradations"):
        degraded_pairs(SAMPLES, random.Random(0), RUBRICS, degradations=["shouting"])


def test_degradations_whose_rubric_is_absent_are_skipped():
    only_fluency = load_rubrics({"rubrics": [{
        "name": "conversational_fluency", "title": "Fluency", "description": "Fluent.",
        "kind": "core"}]})
    skipped = Counter()
    pairs = degraded_pairs(SAMPLES, random.Random(0), only_fluency, skipped=skipped)
    assert {p.rubrics[0] for p in pairs} == {"conversational_fluency"}
    assert skipped["off_topic does not apply"] == len(SAMPLES)
    assert rule_pairs(SAMPLES, random.Random(0), only_fluency) == []


def test_a_lone_sample_has_nothing_to_answer_off_topic_with():
    skipped = Counter()
    pairs = degraded_pairs(SAMPLES[:1], random.Random(0), RUBRICS, ["off_topic"], skipped)
    assert pairs == [] and skipped["off_topic does not apply"] == 1


def test_twins_the_rule_would_not_flag_are_skipped_and_counted():
    toast = [("g7", "creative_writing", "Write a toast for my brother's wedding.",
              "To Sam and Priya: may your kitchen always be loud and your arguments short.")]
    skipped = Counter()
    pairs = rule_pairs(toast, random.Random(0), RUBRICS, skipped)
    assert [p.rubrics for p in pairs] == [["no_explicit_justification"]]
    assert skipped == {"rule no_initial_praise missed its violation, or others fired": 1}
