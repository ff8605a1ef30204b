"""``training.engine``: the DeepSpeed JSON and the keys our configs own, clear errors for a bad
file or a contradicting value, and engines built the way every trainer builds them.

The engines are built in one subprocess for the module (torch.distributed is set up once per
process, on DeepSpeed's CPU accelerator): from a shipped DeepSpeed JSON with the stage taken
from ``EngineConfig.zero_stage``, our optimizer and LR schedule, ten steps on one repeated
batch, then the weights gathered for ``save_pretrained``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from kimi_pipeline.training.engine import (
    OWNED_KEYS,
    EngineConfig,
    load_deepspeed_config,
    resolve_deepspeed_config,
    zero_stage,
)
from kimi_pipeline.training.loop import TrainConfig, schedule
from tests.training import single_process_group

REPO = Path(__file__).resolve().parents[2]
STEPS = 10
RUNS = [("adamw", 0), ("adamw", 3), ("muon", 2)]  # (optimizer.name, engine.zero_stage)
TRAIN = TrainConfig(warmup_steps=3, max_steps=STEPS, min_lr_ratio=0.1)


# ----------------------------------------------------------------------------- configuration


def test_the_engine_config_refuses_an_unknown_stage_or_key_and_counts_the_processes():
    with pytest.raises(ValidationError, match="zero_stage"):
        EngineConfig(zero_stage=4)
    with pytest.raises(ValidationError, match="num_gpus"):
        EngineConfig(num_gpus=2)
    assert EngineConfig(num_processes=4, num_nodes=2).world_size == 8


def test_a_missing_or_malformed_deepspeed_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json does not exist"):
        load_deepspeed_config(EngineConfig(deepspeed_config="nope.json"), tmp_path)
    (tmp_path / "bad.json").write_text('{"zero_optimization": {"stage": 2},}')
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        load_deepspeed_config(EngineConfig(deepspeed_config="bad.json"), tmp_path)


def test_zero_stage_of_the_engine_config_overrides_the_files():
    engine = EngineConfig(deepspeed_config="conf/base/deepspeed/zero2.json", zero_stage=3)
    config = load_deepspeed_config(engine, REPO)
    assert zero_stage(config) == 3
    assert config["zero_optimization"]["contiguous_gradients"] is True  # the rest is the file's
    plain = EngineConfig(deepspeed_config="conf/base/deepspeed/zero2.json")
    assert zero_stage(load_deepspeed_config(plain, REPO)) == 2
    assert zero_stage({}) == 0


@pytest.mark.parametrize("path", sorted(REPO.glob("conf/*/deepspeed/*.json")),
                         ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_shipped_deepspeed_file_leaves_the_owned_keys_to_the_training_config(path):
    config = load_deepspeed_config(EngineConfig(deepspeed_config=str(path)), "/")
    resolved = resolve_deepspeed_config(config, 4, 2, 0.5, {})
    assert [resolved[k] for k in OWNED_KEYS] == [4, 2, 0.5]
    assert "train_batch_size" not in resolved


def test_owned_keys_are_filled_and_a_contradicting_file_is_refused():
    resolved = resolve_deepspeed_config(
        {"gradient_accumulation_steps": 2, "train_batch_size": 64}, 8, 2, 1.0,
        {"zero_optimization": {"reduce_scatter": False}})
    assert resolved["train_micro_batch_size_per_gpu"] == 8
    assert resolved["gradient_accumulation_steps"] == 2  # the same value is fine
    assert "train_batch_size" not in resolved  # DeepSpeed derives it
    assert resolved["zero_optimization"] == {"reduce_scatter": False}
    assert resolved["steps_per_print"] == 10**9  # our loop reports progress
    with pytest.raises(ValueError, match="gradient_clipping=0.5.*says 1.0"):
        resolve_deepspeed_config({"gradient_clipping": 0.5}, 8, 1, 1.0, {})


def test_an_optimizer_section_in_the_file_is_refused_when_the_training_config_picks_one():
    file = {"optimizer": {"type": "Adam", "params": {"lr": 1e-3}}}
    with pytest.raises(ValueError, match="choose the optimizer in the training parameters"):
        resolve_deepspeed_config(file, 1, 1, 1.0, {"optimizer": {"type": "FusedAdam"}})
    assert resolve_deepspeed_config(file, 1, 1, 1.0, {})["optimizer"]["type"] == "Adam"


# ----------------------------------------------------------------------------- real engines


@pytest.fixture(scope="module")
def engine_runs() -> dict:
    env = {**os.environ, "TORCHDYNAMO_DISABLE": "1", "DS_ACCELERATOR": "cpu",
           "KEDRO_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-m", "tests.training.test_engine", json.dumps(RUNS)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _expected_lr_factors() -> list[float]:
    """Our schedule stepped once per optimizer step, on a plain torch optimizer."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = schedule(TRAIN, STEPS)(optimizer)
    factors = []
    for _ in range(STEPS):
        optimizer.step()
        scheduler.step()
        factors.append(scheduler.get_last_lr()[0])
    return factors


@pytest.mark.parametrize("name,stage", RUNS)
def test_an_engine_from_config_steps_and_learns_a_repeated_batch(engine_runs, name, stage):
    run = engine_runs[f"{name}/{stage}"]
    assert run["stage"] == stage
    losses = run["losses"]
    assert losses[-1] < 0.9 * losses[0], losses
    assert run["lr_factors"] == pytest.approx(_expected_lr_factors())


@pytest.mark.parametrize("name,stage", RUNS)
def test_the_consolidated_weights_are_whole_and_trained(engine_runs, name, stage):
    run = engine_runs[f"{name}/{stage}"]
    assert run["partitioned"] == (stage == 3)  # ZeRO-3 keeps only shards in the module
    assert run["same_names_and_shapes"] and run["trained"]


# ----------------------------------------------------------------------------- the worker


def _worker(runs: list[tuple[str, int]]) -> dict:
    single_process_group()
    return {f"{name}/{stage}": _train(name, stage) for name, stage in runs}


def _train(name: str, stage: int) -> dict:
    from kimi_pipeline.training.engine import consolidated_state_dict, initialize
    from kimi_pipeline.training.model import ModelConfig, build_model
    from kimi_pipeline.training.optim import OptimizerConfig, prepare_optimizer

    engine_config = EngineConfig(deepspeed_config="conf/base/deepspeed/zero2.json",
                                 zero_stage=stage)
    config = load_deepspeed_config(engine_config, REPO)
    model = build_model(ModelConfig(vocab_size=300, hidden_size=32, intermediate_size=64,
                                    num_layers=2, num_heads=2, num_kv_heads=2), 300, 0, 1, 2)
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    setup = prepare_optimizer(model, OptimizerConfig(name=name, lr=0.01, weight_decay=0.0),
                              zero_stage(config))
    resolved = resolve_deepspeed_config(config, 2, 1, 1.0, setup.ds_config)
    engine, scheduler = initialize(model, resolved, setup.optimizer, setup.model_parameters,
                                   schedule(TRAIN, STEPS))
    batch = torch.randint(3, 300, (2, 24), generator=torch.Generator().manual_seed(0))
    losses, factors = [], []
    for _ in range(STEPS):
        loss = engine(input_ids=batch, labels=batch).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
        factors.append(scheduler.get_last_lr()[0] / scheduler.base_lrs[0])
    state = consolidated_state_dict(engine)
    return {
        "stage": engine.zero_optimization_stage(), "losses": losses, "lr_factors": factors,
        "partitioned": any(p.numel() == 0 for p in engine.module.parameters()),
        "same_names_and_shapes": state.keys() == initial.keys()
        and all(state[n].shape == initial[n].shape for n in initial),
        "trained": any(not torch.equal(state[n], initial[n]) for n in initial),
    }


if __name__ == "__main__":
    print(json.dumps(_worker([tuple(r) for r in json.loads(sys.argv[1])])))
