"""The gym report: summary tables, MLflow-safe metrics, the pass@k plot, the rollout sample."""

from __future__ import annotations

import polars as pl
import pytest
from mlflow.utils.validation import _validate_metric_name

from kimi_pipeline.gym import report
from kimi_pipeline.gym.run import GymConfig, generate_tasks, roll_out, score
from kimi_pipeline.records import GymResult, GymTask, to_frame

K = 3


def config() -> GymConfig:
    return GymConfig.model_validate({"domains": {"math": [4], "coding": [3], "safety": [2]},
                                     "samples": K, "band": {"low": 0.3, "high": 0.7},
                                     "sample_size": 4})


@pytest.fixture(scope="module")
def frames():
    cfg = config()
    tasks = generate_tasks(cfg)
    by_prompt = {t.prompt: t for t in tasks}

    def policy(prompts, k):  # math: i-th math task right in i of its k samples; coding: never
        out = []
        for messages in prompts:
            task = by_prompt[messages[-1]["content"]]
            i = [t for t in tasks if t.domain == task.domain].index(task)
            right = f"\\boxed{{{task.answer}}}" if task.domain == "math" else "print('hi')"
            out.append([right if s < i else "no idea" for s in range(k)])
        return out

    run = roll_out(tasks, policy, cfg)
    task_frame, rollout_frame = to_frame(tasks, GymTask), to_frame(run.results, GymResult)
    scores, rl_prompts = score(task_frame, rollout_frame, cfg)
    summary = report.summarise(task_frame, rollout_frame, scores, rl_prompts, run.stats, cfg)
    return task_frame, rollout_frame, scores, rl_prompts, summary


def test_summary_has_per_domain_pass_at_k_latency_failures_and_yield(frames):
    _, rollouts, _, rl_prompts, summary = frames
    rows = {row["domain"]: row for row in summary["domains"]}
    assert set(rows) == {"math", "coding", "safety"}
    # math: tasks solved in 0, 1, 2, 3 of 3 samples
    assert rows["math"]["correct"] == 6 and rows["math"]["pass_rate"] == pytest.approx(0.5)
    assert rows["math"]["pass@3"] == pytest.approx(0.75)
    assert rows["math"]["rl_prompts"] == 2 == rl_prompts.height  # 1/3 and 2/3 are in [0.3, 0.7]
    assert rows["coding"]["pass@1"] == 0.0 and rows["coding"]["rl_prompts"] == 0
    assert rows["coding"]["verify_ms_mean"] > 0
    assert summary["tasks_requested"] == {"math": 4, "coding": 3, "safety": 2}
    assert summary["tasks_generated"] == {"math": 4, "coding": 3, "safety": 2}
    assert summary["overall"]["pass_rate"] == pytest.approx(6 / (9 * K), abs=1e-4)  # rounded
    # failure reasons grouped without their specifics, most common first
    math_failures = summary["failure_reasons"]["math"]
    assert sum(math_failures.values()) == 12 - 6
    assert sum(summary["failure_reasons"]["coding"].values()) == 9
    assert all(kind.startswith("sandbox: ") for kind in summary["failure_reasons"]["coding"])
    assert [lvl["name"] for lvl in summary["levels"]] == ["coding/L1", "math/L1", "safety/L1"]


def test_metrics_are_valid_mlflow_metrics(frames):
    *_, summary = frames
    metrics = report.metrics(summary)
    for name, value in metrics.items():
        _validate_metric_name(name)  # raises on '@' and other characters MLflow refuses
        assert set(value) == {"value", "step"} and isinstance(value["value"], float)
    assert metrics["math.pass_at_3"]["value"] == pytest.approx(0.75)
    assert metrics["rl_prompts"]["value"] == 2.0
    assert "coding.verify_ms_mean" in metrics and "rollout.generation_s" in metrics


def test_plot_has_a_bar_per_domain_and_k(frames):
    *_, summary = frames
    fig = report.passk_plot(summary)
    bars = fig.axes[0].patches
    assert len(bars) == 3 * 2  # pass@1 and pass@3 for three domains
    heights = {round(b.get_height(), 4) for b in bars}
    assert 0.75 in heights and 0.5 in heights


def test_sample_spreads_over_domains_one_rollout_per_task_correct_first(frames):
    tasks, rollouts, *_ = frames
    sample = report.rollout_sample(tasks, rollouts, 6)
    assert sample.height == 6 and sample["task_id"].n_unique() == 6
    assert sample.group_by("domain").len()["len"].to_list() == [2, 2, 2]
    math = sample.filter(pl.col("domain") == "math")
    assert math["reward"].to_list() == [1.0, 1.0] and all(math["prompt"].str.contains("boxed"))
    assert report.rollout_sample(tasks, rollouts, 0).height == 0


def test_reason_kind_drops_the_specifics():
    assert report.reason_kind("sandbox: syntax_error (0/3 tests passed)") == "sandbox: syntax_error"
    assert report.reason_kind("verifier error: RuntimeError: boom") == "verifier error: RuntimeError"
    assert report.reason_kind("no_refusal: neither refused nor redirected") == "no_refusal"
    assert report.reason_kind("1 of 1 sentences unsupported: 'wheel") == "N of N sentences unsupported"
    assert report.reason_kind("min_words: 12 words, need 50") == "min_words"
    assert report.reason_kind("answer longer than 2000 characters") == "answer longer than N characters"
