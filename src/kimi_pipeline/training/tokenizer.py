"""Byte-level BPE tokenizer of the base model, trained on the synthesised SFT corpus.

The ``base`` environment has no pretrained checkpoint, so its tokenizer is trained here with the
``tokenizers`` library: byte-level BPE with GPT-2's word split, except that identifiers break into
word-sized pieces (``WORD_SPLIT``), and ByteLevel bytes and decoder, so every string, any unicode
included, round-trips losslessly; plus single-id special tokens for the sequence, the chat roles
and tool calls, and ``CHAT_TEMPLATE`` attached as its chat template. The corpus is the SFT
conversations rendered with that template, so the tool signatures and the JSON of tool calls are
what the merges are learnt on. Special-token strings are cut out of the corpus before training:
they are whole tokens, and merges learnt on their characters would be wasted.

Saving and loading go through ``save_pretrained`` / ``AutoTokenizer.from_pretrained``, the same
loading code the ``gpu`` environment uses for a real checkpoint directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from kimi_pipeline.training.chat import CHAT_TEMPLATE, render_chat

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "<|end|>")
TOOL_TOKENS = ("<|tool_call|>", "<|/tool_call|>", "<|tools|>", "<|/tools|>")
SPECIAL_TOKENS = (BOS, EOS, PAD, *ROLE_TOKENS, *TOOL_TOKENS)
_SPECIAL_RE = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
# GPT-2's pre-tokenizer split, except that an underscore joins the letters after it, as a space
# does: ``list_battle_pass_tiers`` splits into ``list`` ``_battle`` ``_pass`` ``_tiers`` before
# BPE (which keeps frequent words whole), never into words with a bare ``_`` token between each.
# Tool names and argument keys are what tool calls copy from the tool declarations, and a model
# copies a few word-sized tokens far more easily than many fragments.
WORD_SPLIT = (
    r"'s|'t|'re|'ve|'m|'ll|'d|[ _]?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
)


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with the chat special tokens and template attached."""
    minimum = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (special tokens + 256 bytes)")
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(WORD_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_without_special_tokens(texts), trainer=trainer)
    return _wrap(core)


def _without_special_tokens(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        yield from (piece for piece in _SPECIAL_RE.split(text) if piece)


def _wrap(core: Tokenizer) -> PreTrainedTokenizerFast:
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[*ROLE_TOKENS, *TOOL_TOKENS],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def corpus_from_examples(
    messages_json: Iterable[Any], tools_json: Iterable[Any]
) -> Iterator[str]:
    """Render SFT examples (JSON strings or parsed lists, as in ``sft_dataset``) to text."""
    for messages, tools in zip(messages_json, tools_json, strict=True):
        yield render_chat(_parsed(messages), _parsed(tools) or None)


def _parsed(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, path: str | Path) -> Path:
    """Write the tokenizer (vocabulary, special tokens, chat template) to a directory."""
    path = Path(path)
    tokenizer.save_pretrained(str(path))
    return path


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load a tokenizer directory: ours or a local Hugging Face checkpoint's."""
    return AutoTokenizer.from_pretrained(str(path))
