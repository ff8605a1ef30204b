"""The gym run: seeded task generation, rollouts through real verifiers, pass@k, the RL band.

The policy here is a plain function standing in for the SFT model (the input of the gym): for
the i-th task it writes the reference answer in j = i mod (k+1) of its k samples and wrong
text in the others, so every task's pass rate (j/k) is known in advance. The verifiers and
the coding sandbox are the real ones.
"""

from __future__ import annotations

import random

import polars as pl
import pytest
from pydantic import ValidationError

from kimi_pipeline.config import ParameterError, validate_parameters
from kimi_pipeline.gym.passk import pass_at_k
from kimi_pipeline.gym.registry import (_DOMAINS, Domain, Verification, get_domain,
                                         register_domain)
from kimi_pipeline.gym.run import (GymConfig, chat_prompt, generate_tasks, roll_out, score,
                                   verify_responses)
from kimi_pipeline.records import GymResult, GymTask, from_frame, to_frame

K = 4
SOLVABLE = {  # the reference answer of a task, in the form its verifier reads
    "math": lambda t: f"The answer is \\boxed{{{t.answer}}}",
    "logic": lambda t: f"<answer>{t.answer[0] if isinstance(t.answer, list) else t.answer}</answer>",
    "coding": lambda t: f"```python\n{t.answer}\n```",
    "faithfulness": lambda t: str(t.answer),
}
DOMAINS = {"math": [3, 3, 3], "logic": [2, 2, 2], "coding": [2, 2, 2], "faithfulness": [2, 2, 2],
           "safety": [2, 0, 1], "instruction_following": [2]}


def config(**overrides) -> GymConfig:
    return GymConfig.model_validate({"domains": DOMAINS, "samples": K, "pass_k": [1, 2],
                                     "verify_batch": 5, "verify_workers": 2, **overrides})


def planted(tasks: list[GymTask]) -> dict[str, int]:
    """How many of the k samples the policy answers correctly, per task."""
    return {t.task_id: (i % (K + 1) if t.domain in SOLVABLE else 0) for i, t in enumerate(tasks)}


def make_policy(tasks: list[GymTask]):
    by_prompt = {t.prompt: t for t in tasks}
    right = planted(tasks)
    calls = []

    def policy(prompts, k):
        calls.append(len(prompts))
        out = []
        for messages in prompts:
            task = by_prompt[messages[-1]["content"]]
            good = SOLVABLE.get(task.domain, lambda t: "")(task)
            out.append([good if s < right[task.task_id] else "I am not sure." for s in range(k)])
        return out

    return policy, calls


@pytest.fixture(scope="module")
def tasks() -> list[GymTask]:
    return generate_tasks(config())


@pytest.fixture(scope="module")
def run(tasks):
    policy, calls = make_policy(tasks)
    return roll_out(tasks, policy, config(generation_batch=7)), calls


def test_tasks_follow_the_plan_seeded_per_domain_and_level(tasks):
    counts = to_frame(tasks, GymTask).group_by("domain", "difficulty").len()
    got = {(d, lvl): n for d, lvl, n in counts.iter_rows()}
    for name, per_level in DOMAINS.items():
        for level, n in enumerate(per_level, 1):
            assert got.get((name, level), 0) == n, (name, level)  # these pools have no repeats
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert [t.model_dump() for t in generate_tasks(config())] == [t.model_dump() for t in tasks]
    # changing one domain's counts or dropping a domain leaves the others' tasks as they were
    other = generate_tasks(config(domains={**DOMAINS, "math": [1], "safety": []}))
    assert ([t.task_id for t in other if t.domain == "logic"]
            == [t.task_id for t in tasks if t.domain == "logic"])
    assert not [t for t in other if t.domain == "safety"]
    assert [t.task_id for t in other if t.domain == "math"] != [t.task_id for t in tasks if t.domain == "math"]
    assert generate_tasks(config(seed=1))[0].task_id != tasks[0].task_id


def test_repeated_prompts_are_dropped():
    # coding has 6 problems per level: asking for 9 yields the 6 distinct ones once each
    coding = generate_tasks(config(domains={"coding": [9]}))
    assert len(coding) == 6 == len({t.prompt for t in coding})


def test_rollouts_are_verified_by_the_real_verifiers(tasks, run):
    rollouts, calls = run
    right = planted(tasks)
    assert calls == [7] * (len(tasks) // 7) + ([len(tasks) % 7] if len(tasks) % 7 else [])
    assert len(rollouts.results) == len(tasks) * K
    assert [(r.task_id, r.sample_index) for r in rollouts.results] == [
        (t.task_id, s) for t in tasks for s in range(K)]
    for result in rollouts.results:
        expected = 1.0 if result.sample_index < right[result.task_id] else 0.0
        assert result.reward == expected, (result.task_id, result.reason)
        assert result.reason and result.latency_s >= 0
    coding = [r for r in rollouts.results if r.domain == "coding" and r.reward == 0.0]
    assert coding and all("sandbox" in r.reason for r in coding)
    assert rollouts.stats["responses"] == len(tasks) * K
    assert rollouts.stats["verification_s"] > 0
    frame = to_frame(rollouts.results, GymResult)
    good, bad = from_frame(frame, GymResult, "test")
    assert not bad and good == rollouts.results


def test_scores_and_rl_prompts_follow_the_pass_rates(tasks, run):
    rollouts, _ = run
    cfg = config()
    task_frame, rollout_frame = to_frame(tasks, GymTask), to_frame(rollouts.results, GymResult)
    scores, rl_prompts = score(task_frame, rollout_frame, cfg)
    right = planted(tasks)
    per_task = scores.filter(pl.col("scope") == "task")
    assert per_task.height == len(tasks)
    for row in per_task.iter_rows(named=True):
        c = right[row["name"]]
        assert (row["samples"], row["correct"]) == (K, c)
        assert row["pass_rate"] == pytest.approx(c / K)
        for k in (1, 2, K):
            assert row[f"pass@{k}"] == pytest.approx(pass_at_k(K, c, k))
    for row in scores.filter(pl.col("scope") == "domain").iter_rows(named=True):
        mine = per_task.filter(pl.col("domain") == row["name"])
        assert row["tasks"] == mine.height and row["correct"] == mine["correct"].sum()
        assert row["pass@4"] == pytest.approx(mine["pass@4"].mean())
    levels = scores.filter(pl.col("scope") == "level")
    assert levels.filter(pl.col("name") == "math/L2")["tasks"].item() == 3
    assert scores.filter((pl.col("scope") == "tag") & (pl.col("name") == "coding"))["tasks"].item() == 6
    in_band = {t for t, c in right.items() if 0.1 <= c / K <= 0.9}
    assert in_band and set(rl_prompts["task_id"]) == in_band
    assert rl_prompts["task_id"].to_list() == [t.task_id for t in tasks if t.task_id in in_band]
    prompts, bad = from_frame(rl_prompts.drop("pass_rate"), GymTask, "test")
    assert not bad and all(p.prompt for p in prompts)
    assert rl_prompts["pass_rate"].to_list() == [right[t] / K for t in rl_prompts["task_id"]]
    # a narrower band keeps exactly the half-solved tasks
    _, half = score(task_frame, rollout_frame, config(band={"low": 0.5, "high": 0.5}))
    assert set(half["task_id"]) == {t for t, c in right.items() if c == 2}


class Brittle(Domain):
    """A verifier with a bug: it raises on some responses (and so does its verify_many)."""

    levels = (1,)

    def generate(self, rng: random.Random, n: int, difficulty: int) -> list[GymTask]:
        return [GymTask(task_id=f"brittle-{i}", domain=self.name, prompt=f"Say ok #{i}", answer="ok")
                for i in range(n)]

    def verify(self, task: GymTask, response: str) -> Verification:
        if "boom" in response:
            raise RuntimeError("parser exploded")
        return Verification(float(response == "ok"), "says ok" if response == "ok" else "not ok")


@pytest.fixture
def brittle():
    register_domain("brittle_test")(Brittle)
    yield _DOMAINS["brittle_test"]
    del _DOMAINS["brittle_test"]


def test_a_raising_verifier_scores_zero_with_its_reason_and_spares_the_rest(brittle):
    cfg = GymConfig.model_validate({"domains": {"brittle_test": [3]}, "samples": 2})
    tasks = brittle.generate(random.Random(0), 3, 1)
    results = verify_responses(tasks, [["ok", "boom"], ["ok", "ok"], ["no", "ok"]], cfg)
    assert [r.reward for r in results] == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    assert results[1].reason == "verifier error: RuntimeError: parser exploded"
    assert results[1].details == {"verifier_error": True}
    assert results[4].reason == "not ok"


def test_a_policy_returning_the_wrong_number_of_samples_is_an_error(tasks):
    with pytest.raises(ValueError, match="expected 4 each"):
        roll_out(tasks[:3], lambda prompts, k: [["x"] * (k - 1) for _ in prompts], config())


def test_the_system_prompt_goes_first(tasks):
    assert chat_prompt(tasks[0], None) == [{"role": "user", "content": tasks[0].prompt}]
    assert chat_prompt(tasks[0], "Be brief.")[0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("bad, where", [
    ({"domains": {"alchemy": [3]}}, "gym.domains"),
    ({"domains": {"math": [1, 1, 1, 1]}}, "gym.domains"),
    ({"domains": {"math": [0]}}, "gym.domains"),
    ({"domains": {"math": [2]}, "pass_k": [8]}, "gym"),
    ({"domains": {"math": [2]}, "band": {"low": 0.8, "high": 0.2}}, "gym.band"),
    ({"domains": {"math": [2]}, "samples": 0}, "gym.samples"),
    ({"domains": {"math": [2]}, "sampels": 4}, "gym.sampels"),
    ({"domains": {"math": [2]}, "judges": {"alchemy": {"kind": "offline"}}}, "gym.judges"),
    ({"domains": {"math": [2]}, "judges": {"math": {"kind": "offline"}}}, "gym.judges"),
    ({"domains": {"math": [2]}, "judges": {"safety": {"kind": "oracle"}}}, "gym.judges"),
])
def test_bad_parameters_are_refused_at_load_naming_the_key(bad, where):
    with pytest.raises(ParameterError, match=f"parameter '{where}"):
        validate_parameters({"gym": bad})
    with pytest.raises(ValidationError):
        GymConfig.model_validate(bad)


def test_configured_judges_verify_through_copies_with_their_backend(tasks):
    judged = [t for t in tasks if t.domain in ("safety", "faithfulness")]
    responses = [[str(t.answer), "I can't help with that."] for t in judged]
    offline = verify_responses(judged, responses, config())
    backends = {"safety": {"kind": "offline"}, "faithfulness": {"kind": "offline"}}
    llm = verify_responses(judged, responses, config(judges=backends))
    assert [r.reward for r in llm] == [r.reward for r in offline]
    safety = [r for r in llm if r.domain == "safety"]
    assert safety and all(r.reason.startswith("llm judge:") for r in safety)
    assert not any(r.reason.startswith("llm judge:") for r in offline)
    assert get_domain("safety").judge_backend is None
    assert get_domain("faithfulness").judge_backend is None
    with pytest.raises(ValidationError, match="'math' has no LLM judge"):
        config(judges={"math": {}})
    with pytest.raises(ValidationError, match="unknown gym domain 'alchemy'"):
        config(judges={"alchemy": {}})


def test_every_config_field_is_documented():
    for name, field in GymConfig.model_fields.items():
        assert field.description, name


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from kimi_pipeline.model_folder import ModelFolder
    from kimi_pipeline.training.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(["Compute 3 + 4. \\boxed{7}", "<answer>clock</answer>"] * 20,
                                vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id))
    return ModelFolder.save(model, tokenizer, tmp_path_factory.mktemp("model") / "sft_model")


class ChatOnly:
    """The hf backend seen only through the chat protocol, as an OpenAI endpoint would be."""

    name = "chat-only"

    def __init__(self, backend):
        self.inner = backend

    async def acomplete(self, request):
        return await self.inner.acomplete(request)


def test_the_policy_samples_k_texts_through_the_hf_backend_either_way(tasks, tiny_model_folder):
    from kimi_pipeline.gym.run import BackendPolicy, make_policy

    cfg = config(max_new_tokens=6, temperature=0.0,
                 backend={"kind": "hf", "max_batch_size": 8, "device": "cpu", "cpu_threads": 1})
    batched = make_policy(tiny_model_folder.path, cfg)
    prompts = [chat_prompt(t, "Be brief.") for t in tasks[:3]]
    out = batched(prompts, K)
    assert [len(texts) for texts in out] == [K] * 3
    assert all(len(set(texts)) == 1 for texts in out)  # greedy: the k samples agree
    assert batched.stats()["completion_tokens"] > 0 and batched.stats()["policy_calls"] == 1

    chat = BackendPolicy(ChatOnly(batched.backend), cfg)
    out = chat(prompts, K)
    assert [len(texts) for texts in out] == [K] * 3
    assert batched.backend.stats.requests == 3 * K  # k chat requests per prompt
    assert chat.stats()["request_errors"] == 0 and all(isinstance(t, str) for ts in out for t in ts)


def test_cpu_threads_are_set_for_generation_and_restored():
    import torch

    from kimi_pipeline.llm.hf_backend import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
