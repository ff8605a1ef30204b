"""``rl.run.evaluate``: the held-out table samples with ``rl.evaluation.backend`` when it is
set (the gym's processes, say), and with the training sampler's ``rl.rollout`` otherwise."""

from __future__ import annotations

import pytest

from kimi_pipeline.records import GymTask
from kimi_pipeline.rl import run
from kimi_pipeline.rl.config import RLConfig


class Sampled(Exception):
    """Raised by the stand-in policy factory once it has seen the backend settings."""


@pytest.mark.parametrize("evaluation_backend, processes", [(None, 1), (
    {"kind": "hf", "max_batch_size": 128, "cpu_threads": 1, "cpu_processes": 2}, 2)])
def test_the_held_out_table_samples_with_its_own_backend_when_given(
        monkeypatch, evaluation_backend, processes):
    seen = []

    def policy(path, gym):
        seen.append(gym.backend)
        raise Sampled

    monkeypatch.setattr("kimi_pipeline.gym.run.make_policy", policy)
    config = RLConfig.model_validate({"rollout": {"kind": "hf", "max_batch_size": 16},
                                      "evaluation": {"backend": evaluation_backend}})
    with pytest.raises(Sampled):
        run.evaluate({"sft_model": "folder"}, [GymTask(task_id="t", domain="math", prompt="?")],
                     config)
    assert seen[0].cpu_processes == processes
    assert seen[0].max_batch_size == (16 if evaluation_backend is None else 128)
