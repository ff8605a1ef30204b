"""Base tokenizer: lossless byte-level round trip, single-id special tokens, save/load."""

from __future__ import annotations

import json

import pytest

from kimi_pipeline.training.tokenizer import (
    SPECIAL_TOKENS,
    corpus_from_examples,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from tests.training import TOOLS, conversation, make_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()

TEXTS = [
    "plain ascii, with  double  spaces\tand tabs\n\nand newlines",
    "unicode: Zoë, 李雷, Ελληνικά, emoji 🎉👩‍🔬, combining é, rtl שלום",
    json.dumps({"name": "search", "arguments": {"q": 'a "quoted" ü', "n": [1, 2.5, None, True]}}),
    "",
    " leading and trailing spaces ",
    "\x00 control \x7f chars \u2028",
]


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_is_lossless(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_special_tokens_are_single_ids(tokenizer):
    ids = {tok: tokenizer(tok, add_special_tokens=False)["input_ids"] for tok in SPECIAL_TOKENS}
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({v[0] for v in ids.values()}) == len(SPECIAL_TOKENS)
    named = (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token)
    assert named == ("<|bos|>", "<|eos|>", "<|pad|>")
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_special_token_inside_text_is_one_id(tokenizer):
    ids = tokenizer("hi<|end|>there", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<|end|>") in ids
    assert tokenizer.decode(ids) == "hi<|end|>there"


def test_vocab_is_learnt_from_corpus(tokenizer):
    assert len(SPECIAL_TOKENS) + 256 < len(tokenizer) <= 600  # merges learnt, never past the cap
    # Frequent corpus words compress well below one token per byte.
    text = '"search_orders"'
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= len(text) // 2


def test_identifiers_split_into_words_with_their_underscore(tokenizer):
    # no bare "_" between known words: a call copies a name piece by piece from the tools
    assert tokenizer.tokenize("search_orders") == ["search", "_orders"]
    assert tokenizer.tokenize("cancel_order") == ["cancel", "_order"]
    assert tokenizer.tokenize("order_id") == ["order", "_id"]


def test_vocab_size_too_small_is_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["abc"], vocab_size=100)


def test_corpus_renders_tools_and_calls_from_json_and_lists():
    from_json = list(corpus_from_examples([json.dumps(conversation())], [json.dumps(TOOLS)]))
    from_lists = list(corpus_from_examples([conversation()], [TOOLS]))
    assert from_json == from_lists and len(from_json) == 1
    assert '"name": "cancel_order"' in from_json[0] and "<|tool_call|>" in from_json[0]


def test_save_load_round_trip(tokenizer, tmp_path):
    loaded = load_tokenizer(save_tokenizer(tokenizer, tmp_path / "tok"))
    assert loaded.chat_template == tokenizer.chat_template
    assert loaded.get_vocab() == tokenizer.get_vocab()
    assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    for text in TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert loaded(text, add_special_tokens=False)["input_ids"] == ids
    chat = conversation()
    rendered = tokenizer.apply_chat_template(chat, tools=TOOLS, tokenize=False)
    assert loaded.apply_chat_template(chat, tools=TOOLS, tokenize=False) == rendered
