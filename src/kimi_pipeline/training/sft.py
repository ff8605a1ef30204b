"""Tool-use SFT end to end: packed data from the base model's tokenizer, DeepSpeed run, result.

``SftConfig`` is the ``sft`` stage's parameters. ``prepare_run`` turns ``sft_dataset``, with
verified gym-style demonstrations mixed in at ``demo_share`` (``gym/demos.py``), into what the
workers read: assistant-only labels from the base model's chat template (``base_model.py``
made the folder: weights, tokenizer, template), rows packed without attention crossing
examples.
The run folder is named by a fingerprint of data and configs, so starting the stage again after
a crash resumes the same run from its newest checkpoint, and a finished run is not trained twice.
``train`` launches the workers (``launch.py``) and returns the trained folder and its figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kimi_pipeline.llm.forked import can_fork, run_forked, split_by_cost
from kimi_pipeline.training.chat import IGNORE_INDEX, render_with_mask
from kimi_pipeline.training.engine import EngineConfig, load_deepspeed_config
from kimi_pipeline.training.launch import RunSpec, launch
from kimi_pipeline.training.loop import TrainConfig, read_metrics
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.procs import usable_cores
from kimi_pipeline.training.optim import OptimizerConfig
from kimi_pipeline.training.packing import PackingConfig, collate_packed, pack

log = logging.getLogger(__name__)


class SftConfig(BaseModel):
    """Parameters of the ``sft`` stage (``parameters_sft.yml``)."""

    model_config = ConfigDict(extra="forbid")

    train: TrainConfig = Field(default_factory=TrainConfig, description="Loop and schedule.")
    optimizer: OptimizerConfig = Field(
        default_factory=OptimizerConfig, description="Optimizer (muon, muonclip, adamw, …)."
    )
    engine: EngineConfig = Field(default_factory=EngineConfig, description="DeepSpeed/launcher.")
    mask_method: Literal["auto", "markers", "prefix"] = Field(
        "auto", description="How assistant tokens are found (training/chat.py)."
    )
    attn_implementation: str = Field(
        "sdpa_max_logit", description="transformers attention kernel of the trained model. "
        "'sdpa_max_logit' is SDPA that also records the max attention logit per head (for "
        "logging and QK-Clip); 'flash_attention_2' or 'sdpa' on GPU when QK-Clip and max-logit "
        "logging are off."
    )
    max_examples: int | None = Field(
        None, ge=1, description="Use at most this many training examples (quick runs)."
    )
    share_prefixes: bool = Field(
        False, description="Pack the examples of one agent as its system prompt and tools "
        "once, followed by each example's continuation (training/packing.py): the same loss "
        "and gradients per example, with the shared prefix run once per row instead of once "
        "per example. A row then holds one agent's examples: keep several rows per step "
        "(micro_batch_size x accumulation) so a step still sees many agents."
    )
    demo_share: float = Field(
        0.0, ge=0.0, lt=1.0, description="Share of the training examples that are verified "
        "gym-style demonstrations (sft_demos, gym/demos.py); each demonstration is repeated to "
        "reach it (at least once), and the mixed set is shuffled. A short run (max_steps) then "
        "draws about this share; full epochs over a small demonstration set see each one "
        "many times (packing.demonstrations.repeats in the report): sample more tasks then. "
        "0: tool-use examples only."
    )
    runs_dir: str = Field(
        "data/06_models/sft_runs", description="Run folders (checkpoints, metrics, logs)."
    )
    resume: bool = Field(
        True, description="Continue a run with the same fingerprint from its newest checkpoint "
        "(and reuse a finished one); false starts it over."
    )
    progress: bool = Field(True, description="Progress bar while training.")

    @model_validator(mode="after")
    def _shared_prefixes_need_a_mask(self) -> SftConfig:
        if self.share_prefixes and "flash" in self.attn_implementation:
            raise ValueError(
                f"share_prefixes needs an attention kernel that takes a mask (sdpa, "
                f"sdpa_max_logit, eager); {self.attn_implementation} reads packed rows from "
                f"position ids alone: set share_prefixes: false with it")
        return self

    @model_validator(mode="after")
    def _qk_clip_needs_trainable_projections(self) -> SftConfig:
        if self.train.lora is not None and (
                self.optimizer.name == "muonclip" or self.optimizer.qk_clip_tau is not None):
            raise ValueError(
                "QK-Clip (optimizer muonclip, or qk_clip_tau) rescales the q_proj/k_proj "
                "weights, which train.lora keeps frozen: use lora with adamw or muon, or set "
                "train.lora: null for full fine-tuning")
        return self


@dataclass
class PreparedRun:
    """Everything written before the workers start."""

    spec: RunSpec
    run_dir: Path
    initial: ModelFolder
    packing: dict[str, dict[str, float]] = field(default_factory=dict)


def _examples(frame: pl.DataFrame, split: str, limit: int | None) -> pl.DataFrame:
    rows = frame.filter(pl.col("split") == split).sort("example_id")
    return rows.head(limit) if limit else rows


def mix_demonstrations(train: pl.DataFrame, demos: pl.DataFrame | None, share: float,
                       seed: int) -> tuple[pl.DataFrame, dict[str, float]]:
    """``train`` with the train-split ``demos`` repeated to make up about ``share`` of the
    examples (each at least once), shuffled; and what was mixed."""
    demos = demos.filter(pl.col("split") == "train") if demos is not None else None
    if demos is None or demos.is_empty() or share == 0:
        return train, {"distinct": 0, "repeats": 0, "examples": 0, "share": 0.0}
    wanted = share / (1 - share) * train.height
    repeats = max(1, round(wanted / demos.height))
    copies = pl.concat([
        demos.select(train.columns).with_columns(pl.col("example_id") + f"#{r}")
        for r in range(repeats)
    ])
    mixed = pl.concat([train, copies]).sample(fraction=1.0, shuffle=True, seed=seed)
    return mixed, {"distinct": demos.height, "repeats": repeats, "examples": copies.height,
                   "share": round(copies.height / mixed.height, 4)}


def _rendered(frame: pl.DataFrame, tokenizer, method: str) -> list[dict[str, list[int]]]:
    """``render_with_mask`` of every example, in order. The chat template is Python (jinja),
    ~2.5 ms an example: on Linux the rows are split over one process per core, forked with the
    tokenizer in memory (``llm.forked``; the default's 8.5k examples on 2 cores: the SFT node's
    preparation 31 → 20 s)."""
    messages, tools = frame["messages"].to_list(), frame["tools"].to_list()

    def part(rows: range):
        def render() -> list[dict[str, list[int]]]:
            out = []
            for i in rows:
                chat = json.loads(messages[i]) if isinstance(messages[i], str) else messages[i]
                offered = json.loads(tools[i]) if isinstance(tools[i], str) else tools[i]
                out.append(render_with_mask(tokenizer, chat, offered or None, method=method))
            return out
        return render

    parts = min(usable_cores(), len(messages) // 500) if can_fork(torch.device("cpu")) else 1
    ranges = split_by_cost([1] * len(messages), max(parts, 1))
    return [example for chunk in run_forked([part(r) for r in ranges]) for example in chunk]


def _tokenized(frame: pl.DataFrame, tokenizer, method: str, seq_len: int, dropped: list[str]):
    """Rendered examples with labels; those with no assistant token within ``seq_len`` are
    dropped (their ids go to ``dropped``): a row of them would teach nothing."""
    for example_id, example in zip(frame["example_id"], _rendered(frame, tokenizer, method),
                                   strict=True):
        if any(label != IGNORE_INDEX for label in example["labels"][1:seq_len]):  # pack truncates
            yield example
        else:
            dropped.append(example_id)


def _packed(frame: pl.DataFrame, tokenizer, config: SftConfig) -> tuple[dict, dict[str, float]]:
    packing = PackingConfig(seq_len=config.train.seq_len, seed=config.train.seed,
                            pad_token_id=tokenizer.pad_token_id,
                            share_prefixes=config.share_prefixes)
    dropped: list[str] = []
    examples = _tokenized(frame, tokenizer, config.mask_method, config.train.seq_len, dropped)
    rows, stats = pack(examples, packing)
    summary = {**stats.as_dict(), "dropped_without_labels": len(dropped)}
    if dropped:
        log.warning("sft: %d of %d examples have no assistant token within seq_len=%d and are "
                    "left out (e.g. %s); raise train.seq_len", len(dropped), frame.height,
                    config.train.seq_len, dropped[:3])
    if not rows:
        return {}, summary
    tensors = collate_packed(rows)
    return {k: tensors[k].to(torch.int32) for k in ("input_ids", "labels", "position_ids")}, summary


def digest(*parts: Any) -> str:
    """16 hex characters of a SHA-256 over tensors (their bytes) and JSON-able parts: the
    fingerprint naming a run folder."""
    sha = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            sha.update(part.numpy().tobytes())
        else:
            sha.update(json.dumps(part, sort_keys=True, default=str).encode())
    return sha.hexdigest()[:16]


def prepare_run(sft_dataset: pl.DataFrame, base_model: ModelFolder, config: SftConfig,
                root: str | Path = ".", mlflow_run: dict[str, str] | None = None,
                demos: pl.DataFrame | None = None) -> PreparedRun:
    """Tokenise with ``base_model``'s tokenizer, pack, fingerprint, and write the run folder;
    ``demos`` (SftExample rows) are mixed into the training examples at ``demo_share``."""
    train = _examples(sft_dataset, "train", config.max_examples)
    if train.is_empty():
        raise ValueError("sft_dataset has no 'train' examples: run the filtering stage first "
                         "or check its thresholds (filter_report shows where examples went)")
    train, mixed = mix_demonstrations(train, demos, config.demo_share, config.train.seed)
    validation = _examples(sft_dataset, "validation", None)
    tokenizer = base_model.load_tokenizer()
    if tokenizer.pad_token is None:  # many checkpoints ship none; padding never has a label
        tokenizer.pad_token = tokenizer.eos_token
    train_rows, train_stats = _packed(train, tokenizer, config)
    val_rows, val_stats = _packed(validation, tokenizer, config)
    if not train_rows:
        raise ValueError(f"no training example of sft_dataset has an assistant token within "
                         f"train.seq_len={config.train.seq_len}; raise it")
    deepspeed = load_deepspeed_config(config.engine, root)
    fingerprint = digest(
        train_rows["input_ids"], train_rows["labels"], base_model.weights_identity(),
        config.model_dump(exclude={"progress", "resume", "runs_dir"}, mode="json"), deepspeed,
        config.engine.world_size,
    )
    run_dir = Path(root) / config.runs_dir / fingerprint
    if not config.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = run_dir / "tokenizer"
    tokenizer.save_pretrained(str(tokenizer_dir))
    torch.save(train_rows, run_dir / "train.pt")
    if val_rows:
        torch.save(val_rows, run_dir / "validation.pt")
    initial = base_model
    stats = {"train": train_stats, "validation": val_stats, "demonstrations": mixed}
    spec = RunSpec(
        run_dir=str(run_dir), initial_model=str(initial.path), tokenizer=str(tokenizer_dir),
        train_data=str(run_dir / "train.pt"),
        validation_data=str(run_dir / "validation.pt") if val_rows else None,
        attn_implementation=config.attn_implementation,
        context_tokens=(train_stats["real_tokens"] + train_stats["shared_prefix_tokens"])
        / max(train_stats["examples"], 1),
        train=config.train, optimizer=config.optimizer, deepspeed=deepspeed,
        mlflow_run=mlflow_run, progress=config.progress,
    )
    return PreparedRun(spec=spec, run_dir=run_dir, initial=initial, packing=stats)


def train(prepared: PreparedRun, config: SftConfig) -> dict[str, Any]:
    """Run (or resume, or reuse) the training workers; the result with the metric history."""
    result_path = prepared.run_dir / "result.json"
    final = prepared.run_dir / "final"
    if config.resume and result_path.exists() and (final / "config.json").exists():
        log.info("sft: run %s already finished; reusing it", prepared.run_dir.name)
        result = json.loads(result_path.read_text())
        result["reused"] = True
    else:
        result = launch(prepared.spec, config.engine)
        result["reused"] = False
    result["metrics"] = read_metrics(prepared.run_dir / "metrics.jsonl")
    result["run_dir"] = str(prepared.run_dir)
    return result
