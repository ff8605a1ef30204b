"""The tool-call enforcer (``llm/enforcer.py``) on tiny local models: a model trained to write
a wrong call writes an offered tool with valid arguments under it; free text is untouched;
log-probs stay the model's; the forked decode path enforces too."""

from __future__ import annotations

import json

import pytest
import torch
from jsonschema import Draft202012Validator

from kimi_pipeline.llm.base import backend_config, ChatRequest, complete_many, HFBackendConfig
from kimi_pipeline.llm.decode import pick
from kimi_pipeline.llm.enforcer import call_tag
from kimi_pipeline.llm.hf_backend import HFBackend
from tests.llm.test_hf_backend import backend, prefixes, save, tiny_model, train_forced

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/llm/conftest.py

STRICT_TOOLS = [
    {"type": "function", "function": {
        "name": "search_orders", "description": "Search orders by customer.",
        "parameters": {"type": "object", "properties": {
            "customer": {"type": "string"}, "status": {"enum": ["open", "shipped"]}},
            "required": ["customer"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "cancel_order", "description": "Cancel an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"], "additionalProperties": False}}},
]
# a misspelt tool and an argument the tool does not declare
WRONG = ('<|tool_call|>{"name": "search_ordrs", "arguments": {"customer": "Ana", '
         '"limit": 3}}<|/tool_call|>')


@pytest.fixture(scope="module")
def wrong_dir(tokenizer, tmp_path_factory):
    """A tiny model that answers every dialogue with the WRONG call."""
    probe = HFBackend(HFBackendConfig(), model=tiny_model(tokenizer), tokenizer=tokenizer)
    prompts = [probe.encode(p, STRICT_TOOLS) for p in prefixes()]
    model = train_forced(tokenizer, prompts, WRONG, steps=100)
    return save(model, tokenizer, tmp_path_factory.mktemp("wrong"))


def request(messages, seed: int, tools=STRICT_TOOLS) -> ChatRequest:
    return ChatRequest(role="agent", messages=messages, tools=tools, seed=seed)


def strict_requests():
    return [request(p, seed=i) for i, p in enumerate(prefixes())]


def valid(call) -> bool:
    spec = {t["function"]["name"]: t["function"]["parameters"] for t in STRICT_TOOLS}
    return (call.raw_arguments is None and call.name in spec
            and Draft202012Validator(spec[call.name]).is_valid(call.arguments))


def test_a_wrong_call_is_written_as_an_offered_tool_with_valid_arguments(wrong_dir):
    free = complete_many(backend(wrong_dir, max_tokens=64), strict_requests())
    assert all(r.meta["raw_text"] == WRONG for r in free)  # the model's own habit
    assert not any(valid(c) for r in free for c in r.tool_calls)

    # two forked decode processes, as the evaluations run: each makes its own matchers
    enforced = backend(wrong_dir, max_tokens=64, tool_call_enforcer=True, cpu_processes=2)
    replies = complete_many(enforced, strict_requests())
    for reply in replies:
        assert reply.error is None and reply.meta["enforced"]
        assert reply.meta["finish_reason"] == "stop" and reply.meta["parse_errors"] == []
        [call] = reply.tool_calls
        assert valid(call), reply.meta["raw_text"]
        assert call.name == "search_orders" and call.arguments["customer"] == "Ana"
    assert enforced.sampler.stats.constrained_tokens > 0
    assert enforced.sampler.stats.grammar_rejections == 0


def test_log_probs_stay_the_models_own(wrong_dir):
    """RL reads the sampler's log-probs as the policy's: under the mask they must still be
    log softmax of the model's logits at the tokens drawn (teacher-forced check)."""
    hf = backend(wrong_dir, max_tokens=64, tool_call_enforcer=True, dtype="float32")
    [reply] = complete_many(hf, strict_requests()[:1])
    prompt, tokens = reply.meta["prompt_ids"], reply.meta["token_ids"]
    with torch.no_grad():
        logits = hf.model(torch.tensor([prompt + tokens])).logits[0, len(prompt) - 1:-1]
    expected = torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(tokens)[:, None])
    assert torch.allclose(torch.tensor(reply.meta["logprobs"]), expected.squeeze(1), atol=1e-4)
    # and some of those tokens were not the model's first choice: the mask did choose
    assert (logits.argmax(-1) != torch.tensor(tokens)).any()


def test_free_text_and_requests_without_tools_are_not_constrained(random_dir):
    """A random model rarely opens a call: enforced or not, the same seeds give the same
    sampled text, with and without tools."""
    plain = backend(random_dir, temperature=1.0, max_tokens=24)
    enforced = backend(random_dir, temperature=1.0, max_tokens=24, tool_call_enforcer=True)
    for tools in (STRICT_TOOLS, None):
        reqs = [request(p, seed=i, tools=tools) for i, p in enumerate(prefixes())]
        a, b = complete_many(plain, reqs), complete_many(enforced, reqs)
        assert "<|tool_call|>" not in "".join(r.meta["raw_text"] for r in a)
        assert [r.meta["raw_text"] for r in a] == [r.meta["raw_text"] for r in b]
        assert [r.meta["enforced"] for r in b] == [tools is not None] * len(b)


def test_a_format_without_call_tags_is_decoded_freely(random_dir, caplog):
    """A template that writes calls as bare JSON gives the enforcer nothing to trigger on: the
    backend says so and decodes freely rather than stopping a run."""
    hf = backend(random_dir, tool_format="json", tool_call_enforcer=True)
    assert hf.enforcer is None and "no call tags" in caplog.text
    [reply] = complete_many(hf, strict_requests()[:1])
    assert reply.error is None and reply.meta["enforced"] is False


def test_pick_draws_inside_the_mask_and_reports_the_unmasked_log_prob():
    logits = torch.tensor([[4.0, 3.0, 0.0, -1.0]])

    def forbid_best(scores):
        scores[:, 0] = float("-inf")

    token, logprob = pick(logits, 0.0, None, forbid_best)
    assert token.tolist() == [1]
    assert logprob.item() == pytest.approx(torch.log_softmax(logits, -1)[0, 1].item())
    draws = {pick(logits, 1.0, torch.Generator().manual_seed(s), forbid_best)[0].item()
             for s in range(200)}
    assert 0 not in draws and draws >= {1, 2}


def test_call_tag_renders_each_tool_as_the_template_writes_calls():
    tag = call_tag(STRICT_TOOLS, "hermes")["format"]
    assert tag["triggers"] == ["<tool_call>"]
    assert [t["begin"] for t in tag["tags"]] == [
        '<tool_call>{"name": "search_orders", "arguments": ',
        '<tool_call>{"name": "cancel_order", "arguments": ']
    assert {t["end"] for t in tag["tags"]} == {"}</tool_call>"}
    assert tag["tags"][1]["content"]["json_schema"] == STRICT_TOOLS[1]["function"]["parameters"]
    with pytest.raises(ValueError, match="'json' tool format has no call tags"):
        call_tag(STRICT_TOOLS, "json")


def test_the_enforcer_needs_the_kimi_sampler():
    with pytest.raises(ValueError, match="tool_call_enforcer needs sampler 'kimi'"):
        backend_config({"kind": "hf", "model_path": "x", "sampler": "hf_generate",
                        "tool_call_enforcer": True})
    assert json.loads(HFBackendConfig().model_dump_json())["tool_call_enforcer"] is False
