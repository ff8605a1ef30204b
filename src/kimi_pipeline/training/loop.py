"""The training loop run inside each DeepSpeed process: schedule, steps, eval, checkpoints, resume.

One optimizer step consumes one global batch of packed rows: ``micro_batch_size`` rows per
micro-step, ``accumulation`` micro-steps, on every process. Which rows form a global batch
depends only on the seed and the step (a seeded permutation per epoch), and micro-batch ``k``
of a global batch is always the same rows whatever the world size, so 1 process × 2
accumulation steps and 2 processes × 1 see the same data — and a resumed run continues with
exactly the rows the uninterrupted one would have used.

Resume: every ``checkpoint_every`` steps DeepSpeed saves model, optimizer, LR schedule and our
client state (step, RNG states); a restarted run loads the newest one and continues, giving
bitwise the same final weights on CPU as a run that never stopped. Metrics go to
``metrics.jsonl`` (rank 0) and, when the spec names an MLflow run, to MLflow with their step.
"""

from __future__ import annotations

import inspect
import json
import math
import random
import resource
import shutil
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, model_validator

from kimi_pipeline import precision
from kimi_pipeline.training.adapters import LoraConfig, unwrapped
from kimi_pipeline.training.chat import IGNORE_INDEX
from kimi_pipeline.training.objectives import make_objective
from kimi_pipeline.training.packing import block_starts, forward_packed
from kimi_pipeline.training.qk_clip import max_logit_stats, record_max_logits, reset_max_logits


class TrainConfig(BaseModel):
    """Steps, batch shape, schedule, evaluation and checkpointing of one training run."""

    model_config = ConfigDict(extra="forbid")

    seq_len: int = Field(512, ge=16, description="Tokens per packed row.")
    micro_batch_size: int = Field(8, ge=1, description="Packed rows per process per micro-step.")
    accumulation: int = Field(1, ge=1, description="Micro-steps per optimizer step.")
    epochs: float = Field(1.0, gt=0, description="Passes over the training rows (fractional ok).")
    max_steps: int | None = Field(None, ge=1, description="Caps optimizer steps when set.")
    warmup_steps: int = Field(10, ge=0, description="Linear LR warm-up steps.")
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="Cosine decays to lr × this.")
    max_grad_norm: float = Field(1.0, gt=0, description="Global gradient-norm clip.")
    eval_every: int = Field(50, ge=1, description="Held-out loss every N steps (and at the end).")
    eval_rows: int = Field(64, ge=1, description="Validation rows used for the held-out loss.")
    checkpoint_every: int = Field(50, ge=1, description="Resumable checkpoint every N steps.")
    keep_checkpoints: int = Field(
        2, ge=1, description="Newest checkpoints kept on disk while the run is unfinished (a "
        "finished run keeps final/ only: training/launch.py).")
    log_every: int = Field(1, ge=1, description="Metrics logged every N steps.")
    max_logit_every: int = Field(
        1, ge=0, description="Record max attention logit every N steps (0: never; QK-Clip "
        "records every step regardless)."
    )
    autocast: Literal["auto", "none", "bf16"] = Field(
        "auto", description="Mixed precision of the forward pass outside DeepSpeed's own bf16 "
        "mode. 'auto': bf16 where the hardware multiplies bf16 natively (CUDA with bf16, CPUs "
        "with AMX or AVX512-BF16), none elsewhere: on an AVX2-only CPU a bf16 matmul is ~100x "
        "slower than fp32 (kimi_pipeline.precision). 'bf16' forces it (with a warning there)."
    )
    all_token_steps: int = Field(
        0, ge=0, description="The first N optimizer steps learn every token of the rows "
        "(labels = inputs, except each example's first token and padding), then the rows' own "
        "labels take over. A short language-modelling phase on the corpus for a model built from "
        "config, which has never seen text; 0 for a pretrained checkpoint. The held-out loss is "
        "always on the rows' own labels."
    )
    logits_on_labels_only: bool = Field(
        True, description="Ask the model for logits only at sequence positions whose next token "
        "is labelled in some row of the micro-batch (``logits_to_keep``), instead of at all "
        "positions: the output head and its softmax are a large share of a small model's step "
        "and of a big-vocabulary model's memory, and assistant-only SFT labels 5-20% of tokens. "
        "Same loss up to float rounding."
    )
    trainable_layers: int | None = Field(
        None, ge=1, description="Train only the top N decoder blocks (and the final norm); the "
        "blocks below and the embeddings (and a head tied to them) stay frozen. Backward then "
        "stops N blocks down: a CPU fine-tune of a pretrained checkpoint learns the tool-call "
        "format ~1.7x faster per step with the top third trainable. Null trains everything."
    )
    lora: LoraConfig | None = Field(
        None, description="Train LoRA adapters on a frozen checkpoint instead of its weights "
        "(training/adapters.py); the saved model has them merged in. Null: full fine-tuning."
    )
    seed: int = Field(0, description="Seed of data order and every RNG.")

    @model_validator(mode="after")
    def _settings_agree(self) -> TrainConfig:
        if self.max_steps is not None and self.all_token_steps >= self.max_steps:
            raise ValueError(
                f"all_token_steps ({self.all_token_steps}) must be below max_steps "
                f"({self.max_steps}): otherwise no step learns the rows' own labels"
            )
        if self.lora is not None and self.trainable_layers is not None:
            raise ValueError("set either lora or trainable_layers: adapters already leave "
                             "every weight of the checkpoint frozen")
        return self


def all_token_labels(batch: dict[str, torch.Tensor], pad_id: int) -> torch.Tensor:
    """Every token is a target except the padding and the first token of each block of
    consecutive positions (an example's, or a continuation's after a shared prefix: the row
    position before it belongs to another example)."""
    labels = batch["input_ids"].clone()
    labels[block_starts(batch["position_ids"]) | (batch["input_ids"] == pad_id)] = IGNORE_INDEX
    return labels


def next_token_loss(
    engine: Any, batch: dict[str, torch.Tensor], labelled_only: bool
) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled tokens (Hugging Face's causal-LM loss).

    With ``labelled_only`` the model computes logits only at the positions ``t`` where some row
    labels token ``t + 1`` (one index set for the micro-batch, as ``logits_to_keep`` takes), so
    any head-side scaling or soft-capping the model applies still happens inside its forward.
    A model whose forward has no ``logits_to_keep`` (older remote code) gets the full head.
    """
    module = unwrapped(getattr(engine, "module", engine))
    if not labelled_only or "logits_to_keep" not in inspect.signature(module.forward).parameters:
        return forward_packed(engine, batch).loss
    labels = batch["labels"]
    keep = (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    unlabelled = {k: batch[k] for k in ("input_ids", "position_ids")}
    logits = forward_packed(engine, unlabelled, logits_to_keep=keep).logits
    if keep.numel() == 0:
        return logits.sum() * 0.0  # nothing labelled: a zero loss that still has a graph
    targets = labels[:, keep + 1]
    return torch.nn.functional.cross_entropy(
        logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)


def total_steps(config: TrainConfig, rows: int, world_size: int) -> int:
    per_step = config.micro_batch_size * config.accumulation * world_size
    steps = max(1, math.floor(rows * config.epochs / per_step))
    return min(steps, config.max_steps) if config.max_steps else steps


def schedule(config: TrainConfig, steps: int):
    """Linear warm-up then cosine decay to ``min_lr_ratio`` (a LambdaLR factor)."""
    warmup = min(config.warmup_steps, max(steps - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine

    return lambda optimizer: torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class RowOrder:
    """Which packed rows micro-batch ``k`` of optimizer step ``s`` reads (seeded, world-free)."""

    def __init__(self, rows: int, micro_batch_size: int, seed: int) -> None:
        self.rows, self.micro, self.seed = rows, micro_batch_size, seed
        self._epoch, self._perm = -1, None

    def micro_batch(self, step: int, k: int, per_step: int) -> list[int]:
        start = (step * per_step + k) * self.micro
        return [self._row(i) for i in range(start, start + self.micro)]

    def _row(self, i: int) -> int:
        epoch, offset = divmod(i, self.rows)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.rows, generator=generator)
        return int(self._perm[offset])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def process_rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def process_count() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def _all_mean(values: list[float]) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    if process_count() > 1:
        dist.all_reduce(tensor)
        tensor /= process_count()
    return tensor.tolist()


def _all_sum(value: float) -> float:
    tensor = torch.tensor([value], dtype=torch.float64)
    if process_count() > 1:
        dist.all_reduce(tensor)
    return float(tensor[0])


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class MetricsSink:
    """Rank 0 writes every metric row to ``metrics.jsonl`` and, if configured, MLflow, as
    ``<prefix>/<key>``: the MLflow UI charts these curves in their own section, first
    (``kimi_pipeline.tracking``)."""

    def __init__(self, path: Path, mlflow_run: dict[str, str] | None,
                 prefix: str = "train") -> None:
        self.path, self.client, self.run_id, self.prefix = path, None, None, prefix
        if mlflow_run and process_rank() == 0:
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(mlflow_run["tracking_uri"])
            self.run_id = mlflow_run["run_id"]

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if process_rank() != 0:
            return
        with self.path.open("a") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.client is not None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            batch = [Metric(f"{self.prefix}/{k}", float(v), now, step) for k, v in metrics.items()
                     if isinstance(v, (int, float)) and math.isfinite(v)]
            self.client.log_batch(self.run_id, metrics=batch)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows a worker appended to ``path`` (none when it does not exist), skipping a last
    line cut short by a crash."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Metric rows by step; a step logged twice (before a crash and after resume) keeps the last."""
    rows = {row["step"]: row for row in read_jsonl(path)}
    return [rows[step] for step in sorted(rows)]



def freeze_below(model: torch.nn.Module, trainable_layers: int | None) -> int:
    """Freeze all but the top ``trainable_layers`` decoder blocks and the final norm; returns
    the number of parameters left trainable (everything when ``trainable_layers`` is None)."""
    if trainable_layers is not None:
        blocks = model.get_decoder().layers
        top = {id(p) for block in blocks[-trainable_layers:] for p in block.parameters()}
        top |= {id(p) for p in model.get_decoder().norm.parameters()}
        for param in model.parameters():
            param.requires_grad_(id(param) in top)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def autocast_dtype(config: Any, device: torch.device | str) -> torch.dtype:
    """The forward pass's matmul dtype for ``config.autocast`` on ``device``."""
    return precision.resolve("float32" if config.autocast == "none" else config.autocast, device)


def autocast_context(choice: str, device: torch.device):
    """``torch.autocast`` to the dtype ``choice`` ('auto', 'none', 'bf16') resolves to on
    ``device``; nothing when that is fp32."""
    dtype = precision.resolve("float32" if choice == "none" else choice, device)
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()


def save_resumable(engine: Any, folder: Path, tag: str, client: dict[str, Any], keep: int,
                   exclude_frozen: bool = False) -> None:
    """A DeepSpeed checkpoint ``tag`` with ``client`` state plus every rank's RNG states; only
    the newest ``keep`` tags of the folder stay on disk. ``exclude_frozen``: the module's
    frozen parameters are left out (the resuming run rebuilds them from its starting model and
    loads the checkpoint with ``load_module_strict=False``)."""
    states = [None] * process_count()
    if process_count() > 1:
        dist.all_gather_object(states, _rng_state())
    else:
        states = [_rng_state()]
    engine.save_checkpoint(str(folder), tag=tag, client_state={**client, "rng": states},
                           exclude_frozen_parameters=exclude_frozen)
    if process_rank() == 0:
        prefix = tag.rstrip("0123456789")
        tags = sorted(p for p in folder.glob(f"{prefix}*") if p.is_dir())
        for old in tags[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    if process_count() > 1:
        dist.barrier()


def stage0_grad_norm(engine: Any) -> float | None:
    """The gradient norm before the step under ZeRO stage 0, which keeps whole gradients and
    does not report it; None under ZeRO 1-3 (their optimizers report it after the step)."""
    if engine.zero_optimization_stage() != 0:
        return None
    grads = [p.grad for p in engine.module.parameters() if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(grads)) if grads else None


def restore_rng(client: dict[str, Any]) -> None:
    """This rank's RNG states from a checkpoint's client state (``save_resumable``)."""
    _set_rng_state(client["rng"][process_rank()])


class Trainer:
    """Steps a DeepSpeed engine over packed rows; owns eval, metrics and checkpoints."""

    def __init__(self, engine, lr_scheduler, config: TrainConfig, train: dict[str, torch.Tensor],
                 validation: dict[str, torch.Tensor] | None, steps: int, run_dir: Path,
                 sink: MetricsSink, flops_per_token: float, peak_flops: float, base_lr: float,
                 pad_id: int, qk_clip=None, objective=None):
        self.engine, self.lr_scheduler, self.config = engine, lr_scheduler, config
        self.train_rows, self.validation, self.steps = train, validation, steps
        self.run_dir, self.sink, self.qk_clip = run_dir, sink, qk_clip
        self.flops_per_token, self.peak_flops = flops_per_token, peak_flops
        self.base_lr = base_lr  # groups scale it (Muon per shape); the curve shows the schedule
        self.order = RowOrder(len(train["input_ids"]), config.micro_batch_size, config.seed)
        self.device = engine.device
        self.pad_id = pad_id  # padding is not counted in tokens/s
        self.step = 0
        self.checkpoints = run_dir / "checkpoints"
        # the loss of a micro-batch of packed rows (objectives.py; SFT's next-token loss)
        self.objective = objective or make_objective(
            {"name": "sft"}, labelled_only=config.logits_on_labels_only)

    # ------------------------------------------------------------------ resume
    def resume(self) -> bool:
        if not (self.checkpoints / "latest").exists():
            return False
        _, client = self.engine.load_checkpoint(str(self.checkpoints))
        self.step = int(client["step"])
        restore_rng(client)
        return True

    def save_checkpoint(self) -> None:
        save_resumable(self.engine, self.checkpoints, f"step{self.step:07d}",
                       {"step": self.step}, self.config.keep_checkpoints)

    # ------------------------------------------------------------------ steps
    def _batch(self, rows: list[int], source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        index = torch.tensor(rows)
        return {k: source[k][index].long().to(self.device)
                for k in ("input_ids", "labels", "position_ids")}

    def _autocast(self):
        return autocast_context(self.config.autocast, self.device)

    def _record(self) -> bool:
        every = self.config.max_logit_every
        return self.qk_clip is not None or (every > 0 and self.step % every == 0)

    def train_step(self) -> dict[str, float]:
        per_step = self.config.accumulation * process_count()
        losses, tokens, labelled = [], 0, 0
        all_tokens = self.step < self.config.all_token_steps
        model = self.engine.module
        record = self._record()
        lr = self.base_lr * self.lr_scheduler.lr_lambdas[0](self.lr_scheduler.last_epoch)
        with record_max_logits(model) if record else nullcontext():
            for a in range(self.config.accumulation):
                k = a * process_count() + process_rank()
                batch = self._batch(self.order.micro_batch(self.step, k, per_step), self.train_rows)
                if all_tokens:
                    batch["labels"] = all_token_labels(batch, self.pad_id)
                with self._autocast():
                    loss, _ = self.objective(self.engine, batch, None)
                self.engine.backward(loss)
                if a == self.config.accumulation - 1:
                    grad_norm = self._grad_norm_before_step()
                self.engine.step()
                losses.append(loss.item())
                tokens += int((batch["input_ids"] != self.pad_id).sum())
                labelled += int((batch["labels"] != IGNORE_INDEX).sum())
        stats = self._max_logits(model) if record else {}
        self.step += 1
        (loss,) = _all_mean([sum(losses) / len(losses)])
        grad_norm = self.engine.get_global_grad_norm() if grad_norm is None else grad_norm
        metrics = {
            "loss": loss,
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
            "tokens": _all_sum(tokens),
            "label_tokens": _all_sum(labelled),
            "all_tokens": float(all_tokens),  # 1 in the all-token phase: its loss is over all
        }
        if "max_logit" in stats:
            metrics["max_attention_logit"] = float(stats["max_logit"])
        if "qk_clip/heads_clipped" in stats:
            metrics["qk_clip_heads"] = float(stats["qk_clip/heads_clipped"])
        return metrics

    def _max_logits(self, model) -> dict[str, float]:
        """Max logits of this step (all ranks), after QK-Clip rescaled the heads above τ."""
        if self.qk_clip is not None:
            return self.qk_clip.apply(model)  # reports the pre-clip max, then resets
        stats = max_logit_stats(model)
        reset_max_logits(model)
        return stats

    def _grad_norm_before_step(self) -> float | None:
        return stage0_grad_norm(self.engine)

    @torch.no_grad()
    def evaluate(self) -> float:
        if not self.validation:
            return float("nan")
        self.engine.eval()
        rows = min(self.config.eval_rows, len(self.validation["input_ids"]))
        mine = list(range(process_rank(), rows, process_count()))
        total, count = 0.0, 0
        for i in range(0, len(mine), self.config.micro_batch_size):
            batch = self._batch(mine[i: i + self.config.micro_batch_size], self.validation)
            with self._autocast():
                loss, _ = self.objective(self.engine, batch, None)
            n = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
            total, count = total + loss.item() * n, count + n
        self.engine.train()
        return _all_sum(total) / max(_all_sum(count), 1.0)

    def run(self, progress: bool = True) -> dict[str, Any]:
        from tqdm.auto import tqdm

        resumed_from = self.step
        bar = tqdm(total=self.steps, initial=self.step, desc="sft", unit="step",
                   disable=not progress or process_rank() != 0, dynamic_ncols=True)
        self.engine.train()
        last_eval = float("nan")
        start = time.perf_counter()
        while self.step < self.steps:
            tick = time.perf_counter()
            metrics = self.train_step()
            seconds = time.perf_counter() - tick
            metrics["tokens_per_s"] = metrics["tokens"] / seconds
            metrics["mfu"] = metrics["tokens_per_s"] * self.flops_per_token / (
                self.peak_flops * process_count())
            metrics["step_s"] = seconds
            metrics["peak_memory_mb"] = max(_all_mean([peak_memory_mb(self.device)]))
            if self.step % self.config.eval_every == 0 or self.step == self.steps:
                last_eval = metrics["eval_loss"] = self.evaluate()
            if self.step % self.config.log_every == 0 or "eval_loss" in metrics:
                self.sink.log(self.step, metrics)
            if self.step % self.config.checkpoint_every == 0 and self.step < self.steps:
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{metrics['lr']:.2e}",
                            tok_s=f"{metrics['tokens_per_s']:.0f}")
        bar.close()
        return {"steps": self.steps, "resumed_from_step": resumed_from,
                "train_seconds": time.perf_counter() - start, "final_eval_loss": last_eval}
