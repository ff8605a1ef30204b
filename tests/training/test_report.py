"""The training-curve figure: what a user reads off it."""

from __future__ import annotations

from kimi_pipeline.training.report import training_figure


def metrics(all_token_steps: int, steps: int = 8) -> list[dict]:
    rows = [{"step": s, "loss": 9.0 - s / 2, "lr": 1e-3, "tokens_per_s": 100.0, "mfu": 0.3,
             "max_attention_logit": 2.0, "all_tokens": float(s <= all_token_steps)}
            for s in range(1, steps + 1)]
    rows[-1]["eval_loss"] = 4.0
    return rows


def legend(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_loss_of_the_all_token_phase_is_drawn_apart_from_the_assistant_loss():
    fig = training_figure(metrics(all_token_steps=3))
    assert legend(fig) == ["train, every token", "train, assistant tokens", "held-out"]
    every, assistant = fig.axes[0].get_lines()[:2]
    assert list(every.get_xdata()) == [1, 2, 3]
    assert list(assistant.get_xdata()) == [4, 5, 6, 7, 8]


def test_a_run_without_that_phase_has_one_train_curve():
    assert legend(training_figure(metrics(all_token_steps=0))) == ["train", "held-out"]
