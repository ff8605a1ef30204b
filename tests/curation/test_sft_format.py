"""SFT format: chat messages with tool calls, SftExample round trip, agent split, rendering."""

from __future__ import annotations

import json

import polars as pl
import pytest

from kimi_pipeline.curation.config import SftFormatConfig
from kimi_pipeline.curation.sft_format import to_sft_examples
from kimi_pipeline.records import Message, SftExample, ToolCall, from_frame, to_frame
from tests.curation.conftest import LOOKUP, frame, trajectory, with_bad_row

CONFIG = SftFormatConfig()

# A Qwen2.5-style template with tools, cut down to what matters here.
QWEN_LIKE = """\
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}
{% endif %}# Tools
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools><|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'system' and not tools) -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}<|im_start|>assistant
{% if message.content %}{{ message.content }}
{% endif %}
{%- for call in message.tool_calls | default([]) %}<tool_call>
{"name": "{{ call.function.name }}", "arguments": {{ call.function.arguments | tojson }}}
</tool_call>
{% endfor %}<|im_end|>
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}"""

# Templates that concatenate content: a None content (transformers drops the key before
# rendering) fails there on an undefined value; "" renders.
CONCAT = """\
{%- for message in messages %}{{ '<|' + message.role + '|>' + message['content'] }}
{%- for call in message.tool_calls | default([]) %} CALL {{ call.function.name }}
{{- call.function.arguments | tojson }}{% endfor %}
{% endfor %}"""


def example_frame(**columns) -> pl.DataFrame:
    traj = trajectory("t1", "Where is ORD-1?", persona="expert")
    traj.messages[2].tool_calls[0] = ToolCall(
        id="call_0",
        name="lookup_order",
        arguments={"order_id": "ORD-1"},
        raw_arguments='{"order_id": "ORD-1"}',
    )
    traj.messages.insert(
        4,
        Message(
            role="assistant",
            content="Let me check again.",
            tool_calls=[ToolCall(id="call_9", name="lookup_order", arguments={})],
        ),
    )
    traj.messages.insert(
        5, Message(role="tool", content="{}", tool_call_id="call_9", name="lookup_order")
    )
    return frame([traj, trajectory("t2", "Hello", agent="agent-2")], scores=[0.75, 0.5], **columns)


def test_messages_in_hf_chat_format():
    out = to_sft_examples(example_frame(domain=["shop", None]), CONFIG)
    first = out.row(0, named=True)
    messages = json.loads(first["messages"])
    assert messages[:2] == [
        {"role": "system", "content": "You are a helpful order assistant."},
        {"role": "user", "content": "Where is ORD-1?"},
    ]
    assert messages[2] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "lookup_order", "arguments": {"order_id": "ORD-1"}},
            }
        ],
    }
    assert messages[3] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "name": "lookup_order",
        "content": '{"status": "shipped"}',
    }
    assert messages[4]["content"] == "Let me check again." and len(messages[4]["tool_calls"]) == 1
    assert messages[-1] == {
        "role": "assistant",
        "content": "Your order ORD-1 has shipped and arrives on Friday.",
    }
    assert all(isinstance(m["content"], str) for m in messages)
    assert json.loads(first["tools"]) == [LOOKUP]
    assert (first["example_id"], first["judge_score"], first["domain"], first["persona"]) == (
        "t1",
        0.75,
        "shop",
        "expert",
    )
    assert out["domain"][1] == ""
    assert out.columns == list(SftExample.model_fields)


def test_a_corrected_call_stays_in_context_without_labels():
    refused = '{"error": {"code": 404, "type": "not_found", "message": "order ORD-9 not found"}}'
    traj = trajectory("t1", "Where is ORD-1?", calls=[
        ("lookup_order", {"order_id": "ORD-9"}, refused),
        ("lookup_order", {"order_id": "ORD-1"}, '{"status": "shipped"}'),
    ])
    messages = json.loads(to_sft_examples(frame([traj]), CONFIG)["messages"][0])
    assert [m.get("train") for m in messages if m["role"] == "assistant"] == [False, None, None]
    assert messages[3]["content"] == refused  # the model reads the error before the right call
    # a lookup that rightly finds nothing and is reported is trained on as it is
    alone = trajectory("t2", "Where is ORD-9?", calls=[("lookup_order", {"order_id": "ORD-9"},
                                                         refused)], answer="ORD-9 not found.")
    messages = json.loads(to_sft_examples(frame([alone]), CONFIG)["messages"][0])
    assert all("train" not in m for m in messages)


def test_round_trip_through_records_gives_the_same_frame():
    out = to_sft_examples(example_frame(), CONFIG)
    records, bad = from_frame(out, SftExample, "sft")
    assert bad == [] and len(records) == 2
    assert to_frame(records, SftExample).equals(out)


def test_split_by_agent_without_leakage_and_deterministic():
    trajectories = [
        trajectory(f"t{a}-{k}", "hi", agent=f"agent-{a}") for a in range(300) for k in range(3)
    ]
    df = frame(trajectories)
    out = to_sft_examples(df, CONFIG)
    per_agent = out.group_by("agent_id").agg(pl.col("split").n_unique().alias("splits"))
    assert per_agent["splits"].max() == 1
    share = out.filter(pl.col("split") == "validation")["agent_id"].n_unique() / 300
    assert 0.05 < share < 0.15
    again = to_sft_examples(df.sample(fraction=1.0, shuffle=True, seed=1), CONFIG)
    assert (
        again.sort("example_id")
        .select("example_id", "split")
        .equals(out.sort("example_id").select("example_id", "split"))
    )
    reseeded = to_sft_examples(df, SftFormatConfig(split_seed=7))
    assert not reseeded["split"].equals(out["split"])


def test_few_agents_still_get_one_validation_agent():
    df = frame([trajectory(f"t{a}", "hi", agent=f"agent-{a}") for a in range(3)])
    out = to_sft_examples(df, SftFormatConfig(validation_fraction=0.01))
    assert out["split"].to_list().count("validation") == 1
    alone = to_sft_examples(df.head(1), SftFormatConfig(validation_fraction=0.01))
    assert alone["split"].to_list() == ["train"]
    none = to_sft_examples(df, SftFormatConfig(validation_fraction=0.0))
    assert set(none["split"]) == {"train"}


def test_malformed_row_is_a_wiring_error():
    with pytest.raises(ValueError, match="broken"):
        to_sft_examples(with_bad_row(example_frame()), CONFIG)


def tiny_tokenizer(template: str):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(
        ["where is my order tool call"],
        trainers.BpeTrainer(vocab_size=80, special_tokens=["[UNK]"]),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    tokenizer.chat_template = template
    return tokenizer


@pytest.mark.parametrize("template", [QWEN_LIKE, CONCAT], ids=["qwen", "concat"])
def test_renders_with_a_tools_chat_template(template):
    row = to_sft_examples(example_frame(), CONFIG).row(0, named=True)
    messages, tools = json.loads(row["messages"]), json.loads(row["tools"])
    text = tiny_tokenizer(template).apply_chat_template(messages, tools=tools, tokenize=False)
    assert "None" not in text
    assert "lookup_order" in text and '{"order_id": "ORD-1"}' in text
    assert "Your order ORD-1 has shipped" in text
    if template is CONCAT:  # why content is "" and not None on tool-call turns
        with_none = [dict(m, content=None) if m.get("tool_calls") else m for m in messages]
        with pytest.raises(Exception, match="content"):
            tiny_tokenizer(template).apply_chat_template(with_none, tokenize=False)
    if template is QWEN_LIKE:
        assert '"name": "lookup_order", "arguments": {"order_id": "ORD-1"}}' in text
        assert '<tool_response>\n{"status": "shipped"}\n</tool_response>' in text
        assert '"description": "Find an order by id."' in text
