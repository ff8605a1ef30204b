"""Budget control, the K1.5 length reward, the temperature schedule and the prompt sampler."""

from __future__ import annotations

import polars as pl
import pytest

from kimi_pipeline.records import GymTask, OpenPrompt
from kimi_pipeline.rl.budget import (
    BudgetConfig, LengthRewardConfig, length_rewards, length_weight, shape_rewards,
)
from kimi_pipeline.rl.prompts import PoolConfig, PromptSampler, RLPrompt, SamplerConfig, build_pool
from kimi_pipeline.rl.schedules import TemperatureSchedule


def test_length_reward_is_k15s_lambda():
    # lengths 10, 20, 30: λ = 0.5, 0, −0.5; the wrong answers get min(0, λ)
    assert length_rewards([10, 20, 30], [1.0, 0.0, 1.0], 0.5) == [0.5, 0.0, -0.5]
    assert length_rewards([10, 20, 30], [0.0, 0.0, 0.0], 0.5) == [0.0, 0.0, -0.5]
    assert length_rewards([7, 7], [1.0, 0.0], 0.5) == [0.0, 0.0]  # no spread, no signal


def test_length_reward_waits_for_its_warm_up_then_ramps():
    config = LengthRewardConfig(enabled=True, weight=0.4, warmup_iterations=2)
    assert [length_weight(config, i) for i in range(5)] == pytest.approx([0, 0, 0.2, 0.4, 0.4])
    assert length_weight(LengthRewardConfig(enabled=False), 10) == 0.0


def test_truncated_responses_are_penalised_and_budgets_are_per_task_type():
    config = BudgetConfig(max_tokens={"default": 100, "math": 300}, truncation_penalty=0.5)
    assert config.budget("math") == 300 and config.budget("faithfulness") == 100
    shaped = shape_rewards([[(1.0, 100, True), (1.0, 40, False)]], config, iteration=0)
    assert [s["total"] for s in shaped[0]] == [0.5, 1.0]
    assert shaped[0][0]["truncation"] == -0.5


def test_shaping_adds_the_length_reward_after_its_warm_up():
    config = BudgetConfig(truncation_penalty=0.0, length_reward=LengthRewardConfig(
        enabled=True, weight=1.0, warmup_iterations=0))
    shaped = shape_rewards([[(1.0, 10, False), (1.0, 30, False)]], config, iteration=0)
    assert [s["total"] for s in shaped[0]] == [1.5, 0.5]


@pytest.mark.parametrize("shape", ["linear", "cosine", "exponential"])
def test_temperature_decays_from_start_to_end(shape):
    schedule = TemperatureSchedule(start=1.2, end=0.6, decay_iterations=4, shape=shape)
    values = [schedule.at(i) for i in range(7)]
    assert values[0] == pytest.approx(1.2) and values[4:] == [0.6, 0.6, 0.6]
    assert all(a >= b for a, b in zip(values, values[1:]))
    if shape == "linear":
        assert values[2] == pytest.approx(0.9)


def _prompts(n: int, level: int = 1, source: str = "verifier") -> list[RLPrompt]:
    return [RLPrompt(prompt_id=f"{source}-{level}-{i}", source=source, task_type="math",
                     messages=[{"role": "user", "content": str(i)}], item={}, level=level,
                     pass_rate=0.5) for i in range(n)]


def test_sampler_is_seeded_by_iteration_and_resumes_from_its_state():
    prompts = _prompts(20)
    config = SamplerConfig(prompts_per_iteration=5, source_shares={"verifier": 1.0})
    a, b = PromptSampler(prompts, config, seed=3), PromptSampler(prompts, config, seed=3)
    assert [p.prompt_id for p in a.draw(4)] == [p.prompt_id for p in b.draw(4)]
    a.update({"verifier-1-0": 1.0})
    resumed = PromptSampler(prompts, config, seed=3, state=a.state())
    assert resumed.success == a.success
    assert len({p.prompt_id for p in a.draw(0)}) == 5  # distinct prompts per iteration


def test_priority_prefers_unsolved_prompts_and_the_curriculum_holds_back_hard_levels():
    prompts = _prompts(2) + _prompts(2, level=3)
    config = SamplerConfig(prompts_per_iteration=1, source_shares={"verifier": 1.0},
                           priority_floor=0.0, curriculum_iterations=4)
    sampler = PromptSampler(prompts, config, seed=0)
    sampler.success.update({"verifier-1-0": 1.0, "verifier-1-1": 0.0})
    # levels enter every 4 / (3 - 1) = 2 iterations: before that only level 1, and of it the
    # unsolved prompt (priority 1 − success, no floor)
    assert {sampler.draw(i)[0].prompt_id for i in range(2)} == {"verifier-1-1"}
    late = {sampler.draw(i)[0].prompt_id for i in range(4, 40)}
    assert "verifier-1-0" not in late and any(p.startswith("verifier-3") for p in late)


def test_sampler_splits_each_iteration_between_sources():
    prompts = _prompts(10) + _prompts(10, source="critic")
    config = SamplerConfig(prompts_per_iteration=4,
                           source_shares={"verifier": 0.75, "critic": 0.25, "rubric": 0.5})
    drawn = PromptSampler(prompts, config, seed=0).draw(0)
    assert sorted(p.source for p in drawn) == ["critic", "verifier", "verifier", "verifier"]


def test_pool_holds_out_whole_tasks_and_adds_fresh_tasks_of_band_levels():
    scores = pl.DataFrame({"scope": ["level", "level"], "domain": ["math", "logic"],
                           "difficulty": [1, 1], "pass_rate": [0.5, 0.0]})
    band = [GymTask(task_id="math-x", domain="math", prompt="What is 1 + 1?", answer="2")]
    opens = [OpenPrompt(prompt_id=f"o{i}", category="advice", prompt=f"Advice {i}?",
                        source="seed") for i in range(5)]
    pool = build_pool(band, {"math-x": 0.5}, [], scores, opens,
                      PoolConfig(fresh_per_level=30, heldout_share=0.3, open_prompts=2))
    train_ids = {p.prompt_id for p in pool.train if p.source == "verifier"}
    held = {t.task_id for t in pool.heldout}
    assert not train_ids & held and held
    assert pool.stats["band_levels"] == ["math/L1 (0.50)"]  # logic L1 (0 %) teaches nothing
    assert all(t.domain == "math" for t in pool.heldout)
    assert sum(p.source == "critic" for p in pool.train) == 2
    assert len(train_ids) + len(held) == 31


def test_variance_priority_draws_where_rewards_can_differ():
    prompts = _prompts(3)
    config = SamplerConfig(prompts_per_iteration=1, source_shares={"verifier": 1.0},
                           priority="variance", priority_floor=0.0)
    sampler = PromptSampler(prompts, config, seed=0)
    sampler.success.update({"verifier-1-0": 0.0, "verifier-1-1": 1.0, "verifier-1-2": 0.4})
    assert {sampler.draw(i)[0].prompt_id for i in range(10)} == {"verifier-1-2"}


def test_balance_gives_every_task_type_the_same_draw_mass():
    """20 safety prompts at the variance priority's peak, 4 instruction-following ones almost
    never solved: the priority alone draws mostly safety; balanced, each type half the draws."""
    safety = [RLPrompt(prompt_id=f"safety-{i}", source="verifier", task_type="safety",
                       messages=[], item={}, pass_rate=0.5) for i in range(20)]
    following = [RLPrompt(prompt_id=f"if-{i}", source="verifier",
                          task_type="instruction_following", messages=[], item={},
                          pass_rate=0.05) for i in range(4)]
    shares = {}
    for balance in ("none", "task_type"):
        config = SamplerConfig(prompts_per_iteration=2, source_shares={"verifier": 1.0},
                               priority="variance", balance=balance)
        sampler = PromptSampler(safety + following, config, seed=0)
        draws = [p.task_type for i in range(400) for p in sampler.draw(i)[:1]]
        shares[balance] = draws.count("instruction_following") / len(draws)
    assert shares["none"] < 0.15  # 4 × (0.0475 + 0.05) against 20 × (0.25 + 0.05)
    assert 0.42 < shares["task_type"] < 0.58
