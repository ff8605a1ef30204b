"""Instruction following: every constraint type on a correct and an incorrect answer, task
generation (levels, conflicts, seeds, JSON round trip), the hack-check layer on adversarial
answers, the optional LLM judge, and speed."""

from __future__ import annotations

import itertools
import json
import random
import time

import pytest

from kimi_pipeline.gym import constraints as con
from kimi_pipeline.gym import instructions as ins
from kimi_pipeline.gym import prose
from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.llm.offline import OfflineBackend
from kimi_pipeline.records import GymTask
from tests.judge.test_llm_judge import ScriptedBackend

ESSAY = (
    "Urban beekeeping turns city rooftops into small farms. A single hive can hold a colony of "
    "many thousands of bees. The bees visit flowers in parks and gardens, and their pollination "
    "helps fruit trees across the city. Keepers check each hive every week during the warm "
    "months. They look for a healthy queen, enough stored food and signs of disease. In late "
    "summer the keepers harvest honey that tastes of linden and clover. Neighbours sometimes "
    "worry about stings, yet calm colonies rarely bother anyone. Good hives are placed away from "
    "busy paths and near a source of water."
)
BREAD = (
    "Home bread starts with flour, water, salt and yeast mixed into a rough dough. The dough is "
    "kneaded for ten minutes until it feels smooth and elastic. It then rests in a warm corner "
    "while the yeast makes it rise. After shaping, the loaf goes into a hot oven with a tray of "
    "steam below it. The crust turns brown and crisp while the crumb stays soft inside."
)
BEES = ins.TOPICS[0]

# name, params, a response meeting the constraint, one violating it
CASES = [
    ("min_words", {"n": 50}, ESSAY, "Bees make honey."),
    ("max_words", {"n": 120}, ESSAY, ESSAY + " " + ESSAY),
    ("min_sentences", {"n": 5}, ESSAY, "Bees make honey. Hives are boxes."),
    ("max_sentences", {"n": 3}, "Bees make honey. Hives are boxes.", ESSAY),
    ("paragraphs", {"n": 2}, "Bees make honey.\n\nHives are boxes.", "Bees make honey.\nHives are boxes."),
    ("include_keywords", {"keywords": ["hive", "pollination"]}, ESSAY, "Bees make honey in a hive."),
    ("exclude_keywords", {"keywords": ["very", "really"]}, ESSAY, "Bees are really busy."),
    ("keyword_frequency", {"keyword": "hive", "n": 3}, ESSAY, "One hive, two bees."),
    ("letter_frequency", {"letter": "k", "n": 3}, ESSAY, "Bees make honey."),
    ("json_format", {}, '```json\n{"essay": "Bees make honey."}\n```', "{'essay': 'Bees make honey.'}"),
    ("json_format", {}, '{"essay": "Bees make honey."}', '["Bees make honey."]'),
    ("bullet_list", {"n": 3}, "Bees:\n* wax\n* honey\n- pollen", "* wax\n* honey"),
    ("sections", {"n": 2}, "SECTION 1\nBees.\nSECTION 2\nHoney.", "SECTION 1\nBees.\nSECTION 3\nHoney."),
    ("all_lowercase", {}, "bees make honey.", "Bees make honey."),
    ("all_uppercase", {}, "BEES MAKE HONEY.", "BEES make honey."),
    ("max_capital_words", {"n": 2}, "Bees make HONEY.", "BEES MAKE HONEY."),
    ("title", {}, "<<Rooftop bees>>\nBees make honey.", "<<>> Bees make honey."),
    ("start_with", {"phrase": "Let me explain"}, "Let me explain: bees make honey.", "Bees make honey. Let me explain."),
    ("end_with", {"phrase": "Thank you for reading."}, "Bees make honey. Thank you for reading.",
     "Thank you for reading. Bees make honey."),
    ("placeholders", {"n": 2}, "Meet at [address] on [date].", "Meet at [address]."),
    ("quotation", {}, '"Bees make honey."', 'Bees make "honey".'),
    ("no_commas", {}, "Bees make honey.", "Bees, wasps and ants."),
    ("postscript", {}, "Bees make honey.\nP.S. Wear gloves.", "Bees make honey. Wear gloves."),
    ("highlights", {"n": 2}, "Bees make *honey* and *wax*.", "* Bees make honey.\n* wax"),
    ("max_sentence_words", {"n": 10}, "Bees make honey. Hives are boxes.", ESSAY),
    ("no_digits", {}, "Bees make honey twice a year.", "Bees make honey 2 times a year."),
    ("formal_tone", {}, ESSAY, "Bees are awesome, aren't they!"),
    ("simple_language", {}, "Bees make honey. They live in a hive.",
     "Notwithstanding considerable institutionalisation, apicultural administration necessitates "
     "comprehensive understanding of environmental considerations and interdisciplinary responsibilities."),
]


def task(constraints, topic=BEES, difficulty=1) -> GymTask:
    return ins.make_task(topic, constraints, difficulty, "t-1")


def verify(constraints, response, topic=BEES, domain=None):
    return (domain or get_domain("instruction_following")).verify(task(constraints, topic), response)


# ------------------------------------------------------------------------------ constraints


def test_registry_has_twenty_types_each_tested_here():
    assert len(con.CONSTRAINTS) >= 20
    assert {name for name, *_ in CASES} == set(con.CONSTRAINTS)


@pytest.mark.parametrize("name,params,good,bad", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_constraint_accepts_good_and_rejects_bad(name, params, good, bad):
    ok, reason = con.check_constraint(name, good, params)
    assert ok, reason
    ok, reason = con.check_constraint(name, bad, params)
    assert not ok and reason


def test_malformed_params_fail_with_reason_not_exception():
    ok, reason = con.check_constraint("min_words", ESSAY, {})
    assert not ok and "min_words" in reason


def test_sentence_splitter_keeps_abbreviations_and_decimals():
    assert prose.split_sentences("Dr. Moll paid 3.5 coins. The coast is near.") == [
        "Dr. Moll paid 3.5 coins.", "The coast is near."]


# ------------------------------------------------------------------------------- generation


@pytest.mark.parametrize("level", [1, 2, 3])
def test_generated_tasks_are_compatible_sized_and_seeded(level):
    domain = get_domain("instruction_following")
    tasks = domain.generate(random.Random(7), 60, level)
    assert tasks == domain.generate(random.Random(7), 60, level)
    for t in tasks:
        names = [c["name"] for c in t.metadata["constraints"]]
        assert len(names) == ins.CONSTRAINTS_PER_LEVEL[level]
        assert all(con.compatible(a, b) for a, b in itertools.combinations(names, 2))
        assert all(con.CONSTRAINTS[n].min_level <= level for n in names)
        for c in t.metadata["constraints"]:
            assert con.CONSTRAINTS[c["name"]].text(c["params"]) in t.prompt


def test_conflicting_types_never_combine():
    seen = set()
    for t in get_domain("instruction_following").generate(random.Random(1), 400, 3):
        seen |= {frozenset(p) for p in itertools.combinations([c["name"] for c in t.metadata["constraints"]], 2)}
    assert frozenset({"all_lowercase", "all_uppercase"}) not in seen
    assert frozenset({"min_words", "max_words"}) not in seen
    assert frozenset({"json_format", "bullet_list"}) not in seen
    assert len({n for pair in seen for n in pair}) == len(con.CONSTRAINTS)  # every type is used


def test_verification_survives_json_round_trip():
    t = task([{"name": "min_words", "params": {"n": 50}}, {"name": "include_keywords", "params": {"keywords": ["hive"]}}])
    back = GymTask.from_json(t.to_json())
    domain = get_domain("instruction_following")
    assert domain.verify(back, ESSAY) == domain.verify(t, ESSAY)
    assert domain.verify(back, ESSAY).reward == 1.0
    as_string = back.model_copy(update={"metadata": {**back.metadata, "constraints": json.dumps(back.metadata["constraints"])}})
    assert domain.verify(as_string, ESSAY).reward == 1.0


def test_topics_are_many_and_have_keywords():
    assert len(ins.TOPICS) >= 30
    assert all(len(t.keywords) >= 6 for t in ins.TOPICS)


# ----------------------------------------------------------------------------- verification

BASE = [{"name": "min_words", "params": {"n": 50}},
        {"name": "include_keywords", "params": {"keywords": ["hive", "pollination"]}}]


def test_correct_response_scores_one():
    v = verify(BASE, ESSAY)
    assert v.reward == 1.0, v.reason
    assert all(r["ok"] for r in v.details["hacks"].values())


def test_violation_scores_zero_naming_the_constraint():
    v = verify(BASE, "Bees pollinate flowers in the city near every hive.")
    assert v.reward == 0.0 and "min_words" in v.reason and "pollination" in v.reason


@pytest.mark.parametrize("response", ["", "   \n", None, 42])
def test_empty_or_non_text_response_is_zero_with_reason(response):
    v = verify(BASE, response)
    assert v.reward == 0.0 and v.reason == "empty response"


@pytest.mark.parametrize("metadata", [{}, {"constraints": []}, {"constraints": "not json"},
                                      {"constraints": [{"name": "no_such", "params": {}}]}])
def test_malformed_task_is_zero_with_reason(metadata):
    t = GymTask(task_id="x", domain="instruction_following", prompt="p", metadata=metadata)
    v = get_domain("instruction_following").verify(t, ESSAY)
    assert v.reward == 0.0 and v.reason.startswith("malformed task")


# ------------------------------------------------------------------------------ hack checks


def _hack(v, name):
    return v.details["hacks"][name]["ok"]


def test_false_word_count_claim_is_zero_but_a_true_one_passes():
    lying = verify(BASE, ESSAY + " (word count: 250)")
    assert lying.reward == 0.0 and not _hack(lying, "false_claim") and "250" in lying.reason
    true_count = len(prose.words(ESSAY)) + 3  # the claim's own three words
    honest = verify(BASE, ESSAY + f" (word count: {true_count})")
    assert honest.reward == 1.0, honest.reason


def test_generic_compliance_claim_with_failed_constraint_is_flagged():
    v = verify(BASE, "Bees love every hive in the city. I have followed all the constraints.")
    assert v.reward == 0.0 and not _hack(v, "false_claim")


def test_padding_by_repeated_sentences_is_zero():
    padded = " ".join(["The hive helps pollination in the city."] * 8)
    assert con.check_constraint("min_words", padded, {"n": 50})[0]
    v = verify(BASE, padded)
    assert v.reward == 0.0 and not _hack(v, "padding")


def test_padding_by_word_runs_is_zero():
    v = verify(BASE, ESSAY + " Bees are very very very very busy.")
    assert v.reward == 0.0 and not _hack(v, "padding")


def test_keyword_stuffing_is_zero():
    constraints = [{"name": "keyword_frequency", "params": {"keyword": "hive", "n": 2}}]
    stuffed = ESSAY + " " + " ".join(f"Hive {w}." for w in "one two three four five six seven eight nine ten eleven".split())
    assert con.check_constraint("keyword_frequency", stuffed, {"keyword": "hive", "n": 2})[0]
    v = verify(constraints, stuffed)
    assert v.reward == 0.0 and not _hack(v, "keyword_stuffing")


def test_keyword_list_without_sentence_is_zero():
    v = verify(BASE, ESSAY + " Keywords: hive, pollination.")
    assert v.reward == 0.0 and not _hack(v, "keyword_stuffing")


def test_answering_in_the_instructions_words_is_zero():
    constraints = [{"name": "min_words", "params": {"n": 20}},
                   {"name": "include_keywords", "params": {"keywords": ["hive", "pollination"]}}]
    t = task(constraints)
    v = get_domain("instruction_following").verify(t, t.prompt)
    assert v.reward == 0.0 and not _hack(v, "instruction_echo")


def test_off_topic_response_is_zero():
    v = verify([{"name": "min_words", "params": {"n": 50}}, {"name": "no_digits", "params": {}}], BREAD)
    assert v.reward == 0.0 and not _hack(v, "off_topic")
    bread_task = next(t for t in ins.TOPICS if "bread" in t.prompt)
    assert verify([{"name": "min_words", "params": {"n": 50}}], BREAD, topic=bread_task).reward == 1.0


# -------------------------------------------------------------------------------- LLM judge

FORMAL = BASE + [{"name": "formal_tone", "params": {}}]


def test_offline_judge_accepts_formal_and_rejects_casual():
    domain = ins.InstructionFollowing(judge_backend=OfflineBackend())
    assert verify(FORMAL, ESSAY, domain=domain).reward == 1.0
    casual = verify(FORMAL, ESSAY + " Honestly it's awesome!", domain=domain)
    assert casual.reward == 0.0 and "formal_tone" in casual.reason


def test_judge_can_reject_and_malformed_verdict_is_zero():
    reject = ScriptedBackend('{"verdicts": [{"constraint": "formal_tone", "ok": false, "reason": "stiff"}]}')
    v = verify(FORMAL, ESSAY, domain=ins.InstructionFollowing(judge_backend=reject))
    assert v.reward == 0.0 and "judge: stiff" in v.reason
    assert reject.requests[0].role == ins.JUDGE_ROLE and ESSAY in reject.requests[0].messages[1]["content"]
    garbage = verify(FORMAL, ESSAY, domain=ins.InstructionFollowing(judge_backend=ScriptedBackend("yes!")))
    assert garbage.reward == 0.0 and "judge reply unusable: reply is not JSON" in garbage.reason


def test_judge_is_only_asked_about_nuanced_constraints():
    backend = ScriptedBackend('{"verdicts": []}')
    assert verify(BASE, ESSAY, domain=ins.InstructionFollowing(judge_backend=backend)).reward == 1.0
    assert backend.requests == []


def test_with_judge_copies_the_registered_domain():
    registered = get_domain("instruction_following")
    reject = ScriptedBackend('{"verdicts": [{"constraint": "formal_tone", "ok": false}]}')
    judged = registered.with_judge(reject)
    assert verify(FORMAL, ESSAY, domain=judged).reward == 0.0
    assert registered.judge_backend is None and verify(FORMAL, ESSAY).reward == 1.0


# ------------------------------------------------------------------------------------ speed


def test_many_checks_in_one_batch_prints_the_rate():
    domain = get_domain("instruction_following")
    tasks = domain.generate(random.Random(3), 300, 3)
    pairs = [(t, ESSAY if i % 2 else BREAD) for i, t in enumerate(tasks)] * 3
    start = time.perf_counter()
    results = domain.verify_many(pairs)
    rate = len(pairs) / (time.perf_counter() - start)
    assert len(results) == len(pairs)
    print(f"\n{rate:,.0f} instruction checks/s")
