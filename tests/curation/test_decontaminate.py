"""Decontamination: n-gram hits and misses, short references, reasons, reference loading."""

from __future__ import annotations

import json

import polars as pl
import pytest

from kimi_pipeline.curation.config import DecontaminationConfig
from kimi_pipeline.curation.decontaminate import ReferenceIndex, decontaminate, load_references
from tests.curation.conftest import frame, trajectory, with_bad_row

CONFIG = DecontaminationConfig()
EVAL = (
    "A train leaves Lisbon at nine in the morning travelling at eighty kilometres per hour "
    "towards Madrid; when does it arrive if the distance is six hundred kilometres?"
)
WORDS = EVAL.split()


def ids(df: pl.DataFrame) -> list[str]:
    return df["trajectory_id"].to_list()


def test_thirteen_word_overlap_is_removed_with_reference_and_ngram():
    copied = "Quick question: " + " ".join(WORDS[3:16]) + " -- thanks!"
    df = frame([trajectory("hit", copied), trajectory("clean", "Where is my order ORD-1?")])
    kept, removed = decontaminate(df, [("math-7", EVAL)], CONFIG)
    assert ids(kept) == ["clean"]
    assert ids(removed) == ["hit"]
    expected = " ".join(WORDS[3:16]).lower().replace(";", "")
    assert removed["reason"][0] == f'contaminated: 13-gram overlap with math-7: "{expected}"'
    assert removed["step"][0] == "decontaminate"


def test_twelve_word_overlap_is_kept():
    df = frame([trajectory("near", " ".join(WORDS[:12]) + " banana split")])
    kept, removed = decontaminate(df, [("math-7", EVAL)], CONFIG)
    assert ids(kept) == ["near"] and removed.height == 0


def test_assistant_text_counts_but_tool_results_do_not():
    in_answer = trajectory("answer", "Help me", answer=EVAL)
    in_tool = trajectory("tool", "Help me", calls=[("lookup_order", {}, EVAL)])
    kept, removed = decontaminate(frame([in_answer, in_tool]), [("math-7", EVAL)], CONFIG)
    assert ids(removed) == ["answer"] and ids(kept) == ["tool"]


def test_short_reference_matches_on_the_lower_n_only_when_enabled():
    short = "name the capital city of the smallest country in Europe"  # 10 words
    df = frame([trajectory("t", f"Quiz: {short}?")])
    _, removed = decontaminate(df, [("quiz-1", short)], CONFIG)
    assert removed["reason"][0].startswith(
        'contaminated: 8-gram overlap with quiz-1: "name the capital'
    )
    off = DecontaminationConfig(short_ngram_size=None)
    kept, removed = decontaminate(df, [("quiz-1", short)], off)
    assert kept.height == 1 and removed.height == 0
    assert ReferenceIndex.build([("tiny", "two words")], CONFIG).skipped == 1


def test_no_references_and_malformed_row():
    df = with_bad_row(frame([trajectory("a", EVAL)]))
    kept, removed = decontaminate(df, [], CONFIG)
    assert ids(kept) == ["a"]
    assert ids(removed) == ["broken"]
    assert removed["reason"][0].startswith("malformed_messages: ")


def test_load_references_from_files_and_gym_tasks(tmp_path):
    jsonl = tmp_path / "held_out.jsonl"
    rows = [
        {"id": "q1", "prompt": "first"},
        {"question": "second"},
        {"text": "third", "task_id": 9},
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    text = tmp_path / "prompts.txt"
    text.write_text("alpha prompt\n\nbeta prompt\n", encoding="utf-8")
    gym = pl.DataFrame({"task_id": ["m1"], "prompt": ["gym prompt"], "domain": ["math"]})
    assert load_references([str(jsonl), str(text)], gym) == [
        ("gym:m1", "gym prompt"),
        (f"{jsonl}#q1", "first"),
        (f"{jsonl}:2", "second"),
        (f"{jsonl}#9", "third"),
        (f"{text}:1", "alpha prompt"),
        (f"{text}:3", "beta prompt"),
    ]


def test_load_references_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=f"held-out evaluation file not found: {missing}"):
        load_references([str(missing)], None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"answer": 4}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}:2: no string field"):
        load_references([str(bad)])
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{broken}:1: not a JSON line"):
        load_references([str(broken)])
