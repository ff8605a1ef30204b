"""The rl stage end to end: pool → run folder → workers → the held-out before/after table.

``prepare_run`` writes what the workers read into ``data/06_models/rl_runs/<fingerprint>/``:
the train prompts (JSONL), PTX rows tokenised with the policy's chat template (assistant tokens
trained), the spec. The folder is named by a fingerprint of inputs and configs, so starting the
stage again after a crash resumes the run from its newest checkpoint, and a finished run is
reused. ``train`` starts the workers (``rl/loop.py``) through ``training.launch`` — one process,
or the DeepSpeed launcher for several. ``evaluate`` samples the held-out tasks from the SFT model
and the RL model with the same settings and verifies them with the gym: the learning signal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import torch

from kimi_pipeline.records import GymResult, GymTask, PreferencePair
from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.loop import RLSpec
from kimi_pipeline.rl.prompts import PromptPool
from kimi_pipeline.training.chat import IGNORE_INDEX, render_with_mask
from kimi_pipeline.training.engine import load_deepspeed_config
from kimi_pipeline.training.launch import launch
from kimi_pipeline.training.loop import read_jsonl, read_metrics
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.training.objectives import pad_rows
from kimi_pipeline.training.sft import digest

log = logging.getLogger(__name__)


def ptx_rows(sft_dataset: pl.DataFrame, tokenizer: Any, seq_len: int, limit: int, seed: int
             ) -> dict[str, torch.Tensor] | None:
    """Up to ``limit`` training examples of ``sft_dataset`` (drawn by seed), rendered with the
    policy's template: ``input_ids`` and ``loss_mask`` (assistant tokens), cut to ``seq_len``."""
    train = sft_dataset.filter(pl.col("split") == "train").sort("example_id")
    if train.is_empty():
        return None
    picked = sorted(random.Random(f"ptx:{seed}").sample(range(train.height),
                                                         min(limit, train.height)))
    ids, masks = [], []
    for row in train[picked].iter_rows(named=True):
        messages = json.loads(row["messages"]) if isinstance(row["messages"], str) \
            else row["messages"]
        tools = json.loads(row["tools"]) if isinstance(row["tools"], str) else row["tools"]
        example = render_with_mask(tokenizer, messages, tools or None)
        labels = example["labels"][:seq_len]
        if not any(label != IGNORE_INDEX for label in labels[1:]):
            continue
        ids.append(example["input_ids"][:seq_len])
        masks.append([label != IGNORE_INDEX for label in labels])
    if not ids:
        return None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return {"input_ids": pad_rows(ids, pad, torch.long),
            "loss_mask": pad_rows(masks, False, torch.bool)}


def tool_work_items(tasks: pl.DataFrame, agents: pl.DataFrame, tools: pl.DataFrame,
                    sft_dataset: pl.DataFrame, n: int, seed: int) -> list[Any]:
    """``n`` tool tasks of the SFT *training* agents as episode work items, in a seeded order
    (the SFT evaluation plays the validation agents: they stay unseen by RL too)."""
    from kimi_pipeline.agents.evaluate import validation_agent_ids
    from kimi_pipeline.agents.synthesis import split_playable, tool_lookup
    from kimi_pipeline.agents.rollout import plan_work
    from kimi_pipeline.records import Agent, Task, ToolSpec, from_frame

    if n == 0 or tasks.is_empty():
        return []
    held_out = set(validation_agent_ids(sft_dataset)) if "agent_id" in sft_dataset.columns \
        else set()
    agent_records, _ = from_frame(agents, Agent, stage="rl")
    index = {a.agent_id: a for a in agent_records if a.agent_id not in held_out}
    playable, _ = split_playable(tasks, index)
    records, _ = from_frame(playable, Task, stage="rl")
    ranked = sorted(records, key=lambda t: hashlib.sha256(f"{seed}:{t.task_id}".encode())
                    .hexdigest())[:n]
    tool_specs, _ = from_frame(tools, ToolSpec, stage="rl")
    return plan_work(index, ranked, tool_lookup(tool_specs), seed)


def _identity(folder: ModelFolder | None) -> Any:
    """The weights (and a critic's fitted state) a run starts from, for its fingerprint."""
    if folder is None:
        return None
    return [folder.weights_identity(), folder.metadata().get("critic")]


def prepare_run(sft_model: ModelFolder, pool: PromptPool, sft_dataset: pl.DataFrame | None,
                critic_model: ModelFolder | None, config: RLConfig, root: str | Path = ".",
                mlflow_run: dict[str, str] | None = None,
                critic_pairs: list[PreferencePair] = ()) -> RLSpec:
    """Write the run folder (prompts, PTX rows, the critic's train pairs, spec); the spec."""
    if not pool.train:
        raise ValueError("the RL prompt pool is empty: rl_prompts has no task, no gym level is "
                         "in rl.pool.band, and there are no open prompts")
    tokenizer = sft_model.load_tokenizer()
    ptx = None
    if sft_dataset is not None and config.ptx.weight > 0:
        limit = config.ptx.rows_per_update * config.train.updates_per_iteration * \
            config.train.iterations
        ptx = ptx_rows(sft_dataset, tokenizer, config.ptx.seq_len, limit, config.train.seed)
        if ptx is None:
            log.warning("rl: no sft_dataset training example has an assistant token within "
                        "ptx.seq_len=%d: the PTX loss is off; raise rl.ptx.seq_len",
                        config.ptx.seq_len)
    needs_critic = any(p.source == "critic" for p in pool.train)
    critic = critic_model if needs_critic else None
    deepspeed = load_deepspeed_config(config.engine, root)
    prompts = [p.as_dict() for p in pool.train]
    kept_ids = sorted(p.pair_id for p in critic_pairs if p.split == "train") if critic else []
    fingerprint = digest(
        prompts, ptx["input_ids"] if ptx else None, _identity(sft_model), _identity(critic),
        kept_ids,
        config.model_dump(exclude={"progress", "resume", "runs_dir", "evaluation"}, mode="json"),
        deepspeed, config.engine.world_size,
    )
    run_dir = Path(root) / config.runs_dir / fingerprint
    if not config.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    if ptx is not None:
        torch.save(ptx, run_dir / "ptx.pt")
    kept = [p for p in critic_pairs if p.split == "train"] if critic is not None else []
    if kept:
        (run_dir / "critic_pairs.jsonl").write_text(
            "".join(p.model_dump_json() + "\n" for p in kept))
    return RLSpec(
        run_dir=str(run_dir), initial_model=str(sft_model.path),
        prompts=str(run_dir / "prompts.jsonl"),
        ptx_data=str(run_dir / "ptx.pt") if ptx is not None else None,
        critic_model=str(critic.path) if critic is not None else None,
        critic_pairs=str(run_dir / "critic_pairs.jsonl") if kept else None,
        rubrics_file=config.critic.rubrics_file, config=config, deepspeed=deepspeed,
        mlflow_run=mlflow_run,
    )


def train(spec: RLSpec) -> dict[str, Any]:
    """Run (or resume, or reuse) the RL workers; the result with the metric history."""
    run_dir = Path(spec.run_dir)
    result_path, final = run_dir / "result.json", run_dir / "final"
    if spec.config.resume and result_path.exists() and (final / "config.json").exists():
        log.info("rl: run %s already finished; reusing it", run_dir.name)
        result = {**json.loads(result_path.read_text()), "reused": True}
    else:
        result = {**launch(spec, spec.config.engine, "rl.log", module="kimi_pipeline.rl.loop"),
                  "reused": False}
    result["metrics"] = read_metrics(run_dir / "metrics.jsonl")
    result["run_dir"] = str(run_dir)
    return result


def read_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    """The completions the workers logged; an iteration redone after a crash (the same
    samples: it is seeded) is kept once."""
    rows: dict[tuple, dict[str, Any]] = {}
    for row in read_jsonl(Path(run_dir) / "samples.jsonl"):
        rows.setdefault((row["iteration"], row["prompt_id"], row["response"]), row)
    return list(rows.values())


def evaluate(models: dict[str, str], tasks: list[GymTask], config: RLConfig,
             progress: Any = None) -> pl.DataFrame:
    """Every held-out task sampled from each ``{name: model folder}`` with the same settings
    (evaluation temperature, budget, seed) and verified by the gym: GymResult rows + ``model``."""
    from kimi_pipeline.gym.run import GymConfig, make_policy, roll_out
    from kimi_pipeline.records import to_frame

    settings = config.evaluation
    if settings.max_tasks:
        tasks = tasks[: settings.max_tasks]
    backend = (settings.backend or config.rollout).model_copy(update={"kind": "hf"})
    # the gym config of the sampling and verifying; its task plan (domains) is not used. Each
    # call fills the backend's batch: a decode step costs a fixed ~70 ms (reading the weights)
    # plus ~4-5 ms per row on one core, so a last call of a few prompts is nearly all overhead
    gym = GymConfig(domains={t.domain: [1] for t in tasks} or {"math": [1]},
                    samples=settings.samples, temperature=settings.temperature,
                    max_new_tokens=settings.max_new_tokens, generation_seed=config.train.seed,
                    generation_batch=max(1, getattr(backend, "max_batch_size", 32)
                                         // settings.samples),
                    backend=backend,
                    judges=config.rewards.judges, verify_workers=config.rewards.verify_workers,
                    system_prompt=config.pool.system_prompt)
    frames = []
    for name, path in models.items():
        results: list[GymResult] = roll_out(tasks, make_policy(path, gym), gym,
                                            progress).results if tasks else []
        frames.append(to_frame(results, GymResult).with_columns(pl.lit(name).alias("model")))
    return pl.concat(frames) if frames else pl.DataFrame()


def before_after(rows: pl.DataFrame, tasks: list[GymTask]) -> list[dict[str, Any]]:
    """Mean reward per model, overall and per domain/level, on the held-out tasks."""
    if rows.is_empty():
        return []
    levels = pl.DataFrame({"task_id": [t.task_id for t in tasks],
                           "level": [f"{t.domain}/L{t.difficulty}" for t in tasks]})
    joined = rows.join(levels, on="task_id", how="left")
    table = []
    for scope, key in (("all", None), ("domain", "domain"), ("level", "level")):
        grouped = (joined.group_by("model").agg(pl.col("reward").mean().alias("reward"),
                                                pl.col("task_id").n_unique().alias("tasks"))
                   .with_columns(pl.lit("all").alias("name")) if key is None else
                   joined.group_by("model", key).agg(
                       pl.col("reward").mean().alias("reward"),
                       pl.col("task_id").n_unique().alias("tasks")).rename({key: "name"}))
        for row in grouped.sort("name", "model").iter_rows(named=True):
            table.append({"scope": scope, **row})
    return table
