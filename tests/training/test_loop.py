"""``training.loop``: the step count, LR schedule and data order a run is planned with, the
metric files, layer freezing, and the ``Trainer`` itself on a real DeepSpeed engine —
checkpoints every ``checkpoint_every`` steps with only the newest ``keep_checkpoints`` kept,
and a run that crashed resuming from its newest checkpoint with the RNG state it saved and
exactly the losses and weights of a run that never stopped.

The trainers run in one subprocess for the module (torch.distributed is set up once per
process, on DeepSpeed's CPU accelerator); a kill -9 of a real worker is
``test_sft_run.py``'s.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kimi_pipeline.training.chat import IGNORE_INDEX
from kimi_pipeline.training.loop import (
    MetricsSink,
    RowOrder,
    TrainConfig,
    freeze_below,
    read_jsonl,
    read_metrics,
    schedule,
    total_steps,
)
from kimi_pipeline.training.model import ModelConfig, build_model
from tests.training import single_process_group

REPO = Path(__file__).resolve().parents[2]
STEPS, CHECKPOINT_EVERY, KEEP, CRASH_AT = 7, 2, 2, 5


def tiny_model():
    config = ModelConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_layers=3,
                         num_heads=2, num_kv_heads=2, max_position_embeddings=64)
    return build_model(config, 300, 0, 1, 2)


# ----------------------------------------------------------------------------- the plan


def test_total_steps_is_whole_global_batches_capped_by_max_steps():
    config = TrainConfig(micro_batch_size=4, accumulation=2, epochs=1.5)
    assert total_steps(config, rows=100, world_size=1) == 18  # floor(150 / 8)
    assert total_steps(config, rows=100, world_size=2) == 9  # each step reads twice the rows
    assert total_steps(config, rows=3, world_size=1) == 1  # never zero
    assert total_steps(config.model_copy(update={"max_steps": 5}), 100, 1) == 5


def test_the_lr_warms_up_linearly_then_decays_to_the_floor_at_the_last_step():
    config = TrainConfig(warmup_steps=4, min_lr_ratio=0.1)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    scheduler = schedule(config, steps=20)(optimizer)
    factor = scheduler.lr_lambdas[0]
    assert [factor(s) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert factor(4) == pytest.approx(1.0) and factor(20) == pytest.approx(0.1)
    decay = [factor(s) for s in range(4, 21)]
    assert all(b < a for a, b in zip(decay, decay[1:]))
    assert scheduler.get_last_lr() == [pytest.approx(0.4)]  # lr × factor(0)
    short = schedule(TrainConfig(warmup_steps=50), steps=3)(optimizer).lr_lambdas[0]
    assert short(2) > short(1)  # a warm-up longer than the run is cut to steps - 1


def test_each_epoch_reads_every_row_once_in_a_seeded_order():
    def rows_read(order: RowOrder, steps: range) -> list[int]:
        # 1 process × 2 accumulation steps: micro-batches 0 and 1 of every step, 2 rows each
        return [r for step in steps for k in range(2) for r in order.micro_batch(step, k, 2)]

    order = RowOrder(rows=12, micro_batch_size=2, seed=3)
    first, second = rows_read(order, range(3)), rows_read(order, range(3, 6))
    assert sorted(first) == sorted(second) == list(range(12))
    assert first != second != list(range(12))  # shuffled anew each epoch
    again = RowOrder(rows=12, micro_batch_size=2, seed=3)
    assert again.micro_batch(4, 1, 2) == order.micro_batch(4, 1, 2)  # any step, any time
    assert rows_read(RowOrder(rows=12, micro_batch_size=2, seed=4), range(3)) != first


def test_metric_files_survive_a_crash_cut_line_and_keep_a_redone_step_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    sink = MetricsSink(path, None)
    for step, loss in [(1, 3.0), (2, 2.5), (3, 2.0), (2, 2.4), (3, 1.9)]:  # 2, 3 redone
        sink.log(step, {"loss": loss})
    with path.open("a") as handle:
        handle.write('{"step": 4, "lo')  # the worker died mid-write
    assert len(read_jsonl(path)) == 5
    assert read_metrics(path) == [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.4},
                                  {"step": 3, "loss": 1.9}]
    assert read_jsonl(tmp_path / "absent.jsonl") == []


def test_freeze_below_trains_only_the_top_blocks_and_the_final_norm():
    model = tiny_model()
    total = sum(p.numel() for p in model.parameters())
    assert freeze_below(model, None) == total
    trainable = freeze_below(model, 1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {n for n, _ in model.named_parameters()
                     if n.startswith("model.layers.2.") or n == "model.norm.weight"}
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad) < total


# ----------------------------------------------------------------------------- the Trainer


@pytest.fixture(scope="module")
def trainer_runs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("trainer")
    env = {**os.environ, "TORCHDYNAMO_DISABLE": "1", "DS_ACCELERATOR": "cpu",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-m", "tests.training.test_loop", str(root)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_checkpoint_every_n_steps_and_only_the_newest_kept(trainer_runs):
    straight = trainer_runs["straight"]
    assert straight["resumed_without_checkpoint"] is False
    assert straight["saved_at"] == [2, 4, 6]  # not at the last step: final/ is the result
    assert straight["on_disk"] == ["step0000004", "step0000006"]
    assert straight["latest"] == "step0000006"
    assert straight["summary"]["steps"] == STEPS and straight["summary"]["resumed_from_step"] == 0


def test_every_step_is_logged_and_evaluated_on_schedule(trainer_runs):
    rows = trainer_runs["straight"]["metrics"]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert [r["step"] for r in rows if "eval_loss" in r] == [3, 6, 7]  # eval_every 3, the end
    assert all(math.isfinite(r["loss"]) and r["tokens"] == 2 * 2 * 32 for r in rows)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert trainer_runs["straight"]["summary"]["final_eval_loss"] == rows[-1]["eval_loss"]


def test_a_resumed_run_continues_at_the_saved_step_with_the_saved_rng(trainer_runs):
    resumed = trainer_runs["resumed"]
    assert resumed["resumed"] is True and resumed["step_after_resume"] == 4
    assert resumed["summary"]["resumed_from_step"] == 4
    assert resumed["draws_after_resume"] == resumed["draws_at_checkpoint"]
    assert resumed["draws_before_resume"] != resumed["draws_at_checkpoint"]


def test_a_resumed_run_gives_the_losses_and_weights_of_an_uninterrupted_one(trainer_runs):
    straight, resumed = trainer_runs["straight"], trainer_runs["resumed"]
    assert [r["step"] for r in resumed["metrics"]] == list(range(1, STEPS + 1))  # 5 once
    assert [r["loss"] for r in resumed["metrics"]] == [r["loss"] for r in straight["metrics"]]
    assert resumed["crashed_loss"] == straight["metrics"][CRASH_AT - 1]["loss"]
    assert resumed["weights"] == straight["weights"]
    assert resumed["on_disk"] == straight["on_disk"]


# ----------------------------------------------------------------------------- the worker


def _packed_rows(n: int, seed: int) -> dict[str, torch.Tensor]:
    """``n`` rows of two 16-token examples each; the first 6 tokens of each are the prompt."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 300, (n, 32), generator=generator)
    labels = input_ids.clone()
    labels[:, :6] = labels[:, 16:22] = IGNORE_INDEX
    return {"input_ids": input_ids, "labels": labels,
            "position_ids": torch.arange(16).repeat(2).expand(n, 32).clone()}


class Crash(Exception):
    """A worker dying right after it logged a step."""


def _trainer(run_dir: Path, sink: MetricsSink | None = None):
    from kimi_pipeline.training import engine as ds_engine
    from kimi_pipeline.training.loop import Trainer, seed_everything
    from kimi_pipeline.training.optim import OptimizerConfig, prepare_optimizer

    class Recording(Trainer):
        def save_checkpoint(self) -> None:
            super().save_checkpoint()
            self.saved_at.append(self.step)
            if self.step == 4:
                self.draws_at_checkpoint = _peek()

    seed_everything(0)
    config = TrainConfig(seq_len=32, micro_batch_size=2, accumulation=2, max_steps=STEPS,
                         warmup_steps=1, eval_every=3, eval_rows=4, max_logit_every=0,
                         checkpoint_every=CHECKPOINT_EVERY, keep_checkpoints=KEEP,
                         autocast="none", seed=3)
    model = tiny_model()
    setup = prepare_optimizer(model, OptimizerConfig(name="adamw", lr=0.01), 0)
    ds_config = ds_engine.resolve_deepspeed_config(
        {"zero_optimization": {"stage": 0}}, config.micro_batch_size, config.accumulation,
        config.max_grad_norm, setup.ds_config)
    engine, scheduler = ds_engine.initialize(model, ds_config, setup.optimizer,
                                             setup.model_parameters, schedule(config, STEPS))
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = Recording(engine, scheduler, config, _packed_rows(16, 0), _packed_rows(4, 1),
                        STEPS, run_dir, sink or MetricsSink(run_dir / "metrics.jsonl", None),
                        1.0, 1.0, 0.01, 0)
    trainer.saved_at = []
    return trainer


def _peek() -> list:
    """The next draws of every RNG the loop checkpoints, without consuming them."""
    import random

    import numpy as np

    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    draws = [random.random(), float(np.random.rand()), torch.rand(2).tolist()]
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])
    return draws


def _digest(engine) -> str:
    import hashlib

    from kimi_pipeline.training.engine import consolidated_state_dict

    state = consolidated_state_dict(engine)
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode() + state[name].numpy().tobytes())
    return digest.hexdigest()


def _outcome(trainer, summary: dict) -> dict:
    checkpoints = trainer.run_dir / "checkpoints"
    return {"summary": summary, "metrics": read_metrics(trainer.run_dir / "metrics.jsonl"),
            "on_disk": sorted(p.name for p in checkpoints.iterdir() if p.is_dir()),
            "latest": (checkpoints / "latest").read_text().strip(),
            "weights": _digest(trainer.engine), "saved_at": trainer.saved_at}


def _straight(run_dir: Path) -> dict:
    trainer = _trainer(run_dir)
    resumed = trainer.resume()
    return {**_outcome(trainer, trainer.run(progress=False)),
            "resumed_without_checkpoint": resumed}


def _crash_then_resume(run_dir: Path) -> dict:
    from kimi_pipeline.training.loop import seed_everything

    class CrashingSink(MetricsSink):
        def log(self, step: int, metrics: dict) -> None:
            super().log(step, metrics)
            if step == CRASH_AT:
                raise Crash(metrics["loss"])

    crashed = _trainer(run_dir, CrashingSink(run_dir / "metrics.jsonl", None))
    try:
        crashed.run(progress=False)
    except Crash as crash:
        crashed_loss = crash.args[0]
    seed_everything(12345)  # the restarted process starts from other RNG states
    before = _peek()
    trainer = _trainer(run_dir)
    resumed = trainer.resume()
    out = {"resumed": resumed, "step_after_resume": trainer.step, "draws_before_resume": before,
           "draws_after_resume": _peek(), "draws_at_checkpoint": crashed.draws_at_checkpoint,
           "crashed_loss": crashed_loss}
    return {**_outcome(trainer, trainer.run(progress=False)), **out}


def _worker(root: Path) -> dict:
    single_process_group()
    return {"straight": _straight(root / "straight"),
            "resumed": _crash_then_resume(root / "resumed")}


if __name__ == "__main__":
    print(json.dumps(_worker(Path(sys.argv[1]))))
