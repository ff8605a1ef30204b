"""The RL worker: sample → reward → update, iteration after iteration, resumable after kill -9.

Runs inside each training process (``python -m kimi_pipeline.rl.loop SPEC``, started by
``training.launch`` like SFT's workers). One iteration:

1. **draw** prompts (``PromptSampler``: curriculum + a priority from each success rate);
2. **sample** K responses per prompt from the model being trained, through the ``hf`` backend
   serving it in memory (KV-cached, batched; token ids and log-probs recorded), at the
   scheduled temperature, each cut at its task type's token budget (``rl/rollouts.py``);
3. **reward** through the reward protocol (``rl/reward_router.py``): gym verifiers, the critic's
   win rates among a prompt's K answers, rubric judges; weighted per source; budget penalties
   and the K1.5 length reward on top (``budget.py``);
4. **update**: the objective (``training/objectives.py``: k1.5 by default) on the
   ``RolloutBatch``, split into micro-batches, plus the PTX next-token loss on SFT rows, on the
   DeepSpeed engine of ``training/`` (ZeRO stage, optimizer and precision as SFT's);
5. **log** reward per source and domain, the sampler/trainer log-prob gap, entropy, lengths,
   truncation, time split — to ``metrics.jsonl`` and MLflow; a few completions to
   ``samples.jsonl``; every ``critic.refresh_every`` iterations the critic is refined on the
   iteration's verifiable rollouts and its agreement logged;
6. **checkpoint** (model, optimizer, client state: iteration, RNG, prompt success rates, the
   critic's heads). A restarted worker resumes from the newest checkpoint; since every draw and
   every sample is seeded by (seed, iteration), the resumed run is the uninterrupted one.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.rl.budget import shape_rewards
from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.prompts import PromptSampler, RLPrompt
from kimi_pipeline.rl.reward_router import RewardRouter
from kimi_pipeline.rl.rollouts import (
    Sampled, by_length, play_episodes, sample_responses, summarise_samples, to_batch,
)
from kimi_pipeline.training.loop import process_count, process_rank, stage0_grad_norm
from kimi_pipeline.training.objectives import (
    RolloutBatch, StepScale, can_share_prefix, make_objective, shared_prefixes,
)


class RLSpec(BaseModel):
    """Everything an RL worker needs, written by the node as ``spec.json``."""

    model_config = ConfigDict(extra="forbid")

    run_dir: str = Field(description="Folder of this run: checkpoints, metrics, final model.")
    initial_model: str = Field(description="save_pretrained folder of the policy to train.")
    prompts: str = Field(description="JSONL of RLPrompt rows (the train pool).")
    ptx_data: str | None = Field(None, description="torch.save of PTX rows (input_ids, mask).")
    critic_model: str | None = Field(None, description="critic_model folder (critic rewards).")
    critic_pairs: str | None = Field(
        None, description="JSONL of the critic stage's train pairs, kept in every refresh fit.")
    rubrics_file: str | None = Field(None, description="Critic rubrics YAML.")
    config: RLConfig
    deepspeed: dict[str, Any] = Field(description="DeepSpeed JSON config before our keys.")
    mlflow_run: dict[str, str] | None = Field(None, description="Live metrics target.")


# ----------------------------------------------------------------------------- the loop


def _gathered(local: Any) -> list[Any]:
    """Every rank's ``local`` object, in rank order (each rank works on its own prompts)."""
    if process_count() == 1:
        return [local]
    parts: list[Any] = [None] * process_count()
    dist.all_gather_object(parts, local)
    return parts


def _merged(local: dict[str, float]) -> dict[str, float]:
    """The union of every rank's ``local`` dict."""
    return {k: v for part in _gathered(local) for k, v in part.items()}


def reset_optimizer_state(engine: Any) -> None:
    """Forget the optimizer's moments (k1.5 starts every iteration afresh); the innermost
    torch optimizer re-creates them lazily at the next step."""
    optimizer = engine.optimizer  # DeepSpeed's ZeRO / bf16 wrappers hold the torch one
    while not isinstance(optimizer, torch.optim.Optimizer) and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer.state.clear()


class PolicyTrainer:
    """Owns the engine, the sampler backend, the reward router and the iteration state."""

    def __init__(self, engine, lr_scheduler, spec: RLSpec, tokenizer, prompts: list[RLPrompt],
                 ptx: dict[str, torch.Tensor] | None, router: RewardRouter, critic: Any,
                 sink: Any, flops_per_token: float, peak_flops: float):
        from kimi_pipeline.llm.hf_backend import HFBackend

        self.engine, self.lr_scheduler, self.spec = engine, lr_scheduler, spec
        self.config = spec.config
        self.tokenizer, self.router, self.critic, self.sink = tokenizer, router, critic, sink
        self.ptx = ptx
        self.flops_per_token, self.peak_flops = flops_per_token, peak_flops
        self.objective = make_objective(self.config.objective)
        self.ptx_objective = make_objective({"name": "sft"})
        self.sampler = PromptSampler(prompts, self.config.sampler, self.config.train.seed)
        self.backend = HFBackend(self.config.rollout.model_copy(update={"kind": "hf"}),
                                 model=engine.module, tokenizer=tokenizer)
        # grpo's KL term needs π_ref: a frozen copy of the initial policy (k1.5 needs none)
        self.reference = None
        if self.config.objective.name == "grpo" and self.config.objective.kl_coef > 0:
            import copy

            if engine.zero_optimization_stage() == 3:
                raise ValueError("objective grpo with kl_coef > 0 needs ZeRO stage 0-2: the "
                                 "reference copy of the policy is not partitioned")
            self.reference = copy.deepcopy(engine.module).eval().requires_grad_(False)
        self.critic_pairs = read_pairs(spec.critic_pairs) if spec.critic_pairs else []
        self.rollout_pairs: list[Any] = []  # verifier pairs of this run's rollouts
        self.iteration = 0
        self.run_dir = Path(spec.run_dir)
        self.checkpoints = self.run_dir / "checkpoints"
        self.pad_id = self.backend.pad_id

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> bool:
        from kimi_pipeline.training.loop import restore_rng

        if not (self.checkpoints / "latest").exists():
            return False
        # the frozen blocks are not in the checkpoint: they are the SFT model's, as built
        _, client = self.engine.load_checkpoint(str(self.checkpoints), load_module_strict=False)
        self.iteration = int(client["iteration"])
        restore_rng(client)
        self.sampler = PromptSampler(self.sampler.prompts, self.config.sampler,
                                     self.config.train.seed, client["sampler"])
        if client.get("critic") and self.critic is not None:
            self.critic = _restore_critic(self.critic, client["critic"])
            self.router.set_critic(self.critic)
        return True

    def save_checkpoint(self) -> None:
        from kimi_pipeline.training.loop import save_resumable

        client = {"iteration": self.iteration, "sampler": self.sampler.state(),
                  "critic": self.critic.state() if self.critic is not None else None}
        save_resumable(self.engine, self.checkpoints, f"iter{self.iteration:05d}", client,
                       self.config.train.keep_checkpoints, exclude_frozen=True)

    # ------------------------------------------------------------------ one iteration
    def _autocast(self):
        from kimi_pipeline.training.loop import autocast_context

        return autocast_context(self.config.train.autocast, self.engine.device)

    def _my_prompts(self, prompts: list[RLPrompt]) -> list[RLPrompt]:
        return prompts[process_rank()::process_count()]

    def iterate(self) -> dict[str, Any]:
        """One iteration; returns its metrics (and keeps its samples for the log)."""
        it = self.iteration
        temperature = self.config.temperature.at(it)
        prompts = self._my_prompts(self.sampler.draw(it))
        tick = time.perf_counter()
        self.engine.module.eval()
        single = [i for i, p in enumerate(prompts) if p.source != "rubric"]
        tools = [i for i, p in enumerate(prompts) if p.source == "rubric"]
        samples = sample_responses(self.backend, [prompts[i] for i in single], self.config, it,
                                   temperature)
        for s in samples:
            s.group = single[s.group]
        samples += play_episodes(self.backend, [prompts[i] for i in tools], tools, self.config,
                                 it, temperature)
        samples.sort(key=lambda s: s.group)
        rollout_s = time.perf_counter() - tick
        tick = time.perf_counter()
        self.router.score(samples)
        groups: dict[int, list[Sampled]] = defaultdict(list)
        for s in samples:
            groups[s.group].append(s)
        shaped = shape_rewards([[(s.reward, s.policy_tokens, s.truncated) for s in g]
                                for g in groups.values()], self.config.budget, it)
        for g, parts in zip(groups.values(), shaped, strict=True):
            for s, part in zip(g, parts, strict=True):
                s.shaped = part
        reward_s = time.perf_counter() - tick
        # every rank draws from the same success rates: merge what each rank saw
        self.sampler.update(_merged({g[0].prompt.prompt_id: sum(s.score for s in g) / len(g)
                                     for g in groups.values()}))
        tick = time.perf_counter()
        batch = to_batch(samples, self.pad_id)
        train = self.update(batch, it)
        train["trained_tokens"] = float(self._computed_tokens(batch, samples))
        train_s = time.perf_counter() - tick
        self.iteration += 1
        metrics = {**summarise_samples(samples), **train, "temperature": temperature,
                   "rollout_s": rollout_s, "reward_s": reward_s, "train_s": train_s,
                   "lr": self.lr_scheduler.get_last_lr()[0] if self.lr_scheduler else 0.0}
        if self.critic is not None and self.config.critic.refresh_every and \
                self.iteration % self.config.critic.refresh_every == 0:
            tick = time.perf_counter()
            metrics.update(self.refresh_critic(samples))
            metrics["critic_s"] = time.perf_counter() - tick
        self.samples = samples
        return metrics

    def update(self, batch: RolloutBatch, iteration: int) -> dict[str, float]:
        """``updates_per_iteration`` optimizer steps over the batch (micro-batched) + PTX."""
        cfg = self.config.train
        batch = self.objective.prepare(batch)
        if cfg.old_logprobs == "sampler":
            batch.old_logprobs = batch.sampler_logprobs
        elif cfg.updates_per_iteration > 1:
            batch.old_logprobs = self._logprobs(batch)
        if cfg.reset_optimizer:
            reset_optimizer_state(self.engine)
        self.engine.train()
        totals: dict[str, float] = defaultdict(float)
        shares = [by_length(share) for share in batch.split(cfg.updates_per_iteration)]
        for u, share in enumerate(shares):
            scale = StepScale(sequences=max(len(share), 1),
                              tokens=float(share.loss_mask.sum().clamp(min=1)))
            ptx_parts = self._ptx_rows(iteration * cfg.updates_per_iteration + u)
            for m, micro in enumerate(share.split(cfg.micro_batches)):
                micro = micro.to(self.engine.device)
                if self.reference is not None and len(micro):
                    micro.ref_logprobs = self._reference_logprobs(micro)
                with self._autocast():
                    if len(micro):
                        loss, stats = self.objective(self.engine, micro, scale)
                    else:
                        loss, stats = self._zero(), {}
                    if ptx_parts is not None and len(ptx_parts[m]):
                        ptx_loss, _ = self.ptx_objective(self.engine, ptx_parts[m].to(
                            self.engine.device), ptx_parts.scale)
                        totals["ptx_loss"] += float(ptx_loss.detach())
                        loss = loss + self.config.ptx.weight * ptx_loss
                self.engine.backward(loss, scale_wrt_gas=False)
                if m == cfg.micro_batches - 1:
                    norm = stage0_grad_norm(self.engine)
                    if norm is not None:
                        totals["grad_norm"] += norm / len(shares)
                self.engine.step()
                totals["loss"] += float(loss.detach())
                for key, value in stats.items():
                    totals[key] += value
        tokens = max(totals.pop("policy_tokens", 0.0), 1.0)
        out = {"loss": totals.pop("loss") / len(shares),
               "entropy": totals.pop("entropy_sum", 0.0) / tokens,
               "sampler_trainer_abs_logprob_gap": totals.pop("abs_log_ratio_sum", 0.0) / tokens,
               "policy_tokens": tokens}
        if "seq_log_ratio_sum" in totals:
            out["seq_log_ratio_mean"] = totals.pop("seq_log_ratio_sum") / max(len(batch), 1)
        if "clip_fraction_sum" in totals:
            out["clip_fraction"] = totals.pop("clip_fraction_sum") / tokens
        if "ptx_loss" in totals:
            out["ptx_loss"] = totals.pop("ptx_loss") / len(shares)  # parts sum to the mean
        out.update(totals)
        return out

    @torch.no_grad()
    def _reference_logprobs(self, micro: RolloutBatch) -> torch.Tensor:
        from kimi_pipeline.training.objectives import token_logprobs

        with self._autocast():
            return token_logprobs(self.reference, micro.input_ids, micro.loss_mask,
                                  groups=self._groups(micro))[0]

    def _computed_tokens(self, batch: RolloutBatch, samples: list[Sampled]) -> int:
        """Tokens the update's forward runs, padding left out: a group's shared prompt once
        when the objective shares it (its K copies are not computed, so tokens/s and MFU
        must not count them)."""
        tokens = sum(len(seg.token_ids) for s in samples for seg in s.segments)
        groups = self._groups(batch)
        if groups is None or not can_share_prefix(self.engine):
            return tokens
        parts = shared_prefixes(batch.input_ids, batch.loss_mask, groups)
        return tokens - sum((len(rows) - 1) * prefix for rows, prefix in parts)

    def _groups(self, micro: RolloutBatch) -> torch.Tensor | None:
        """Group ids for prompt sharing in a forward, when the objective's config allows it."""
        return micro.group_ids if self.config.objective.share_prompt_prefix else None

    def _zero(self) -> torch.Tensor:
        return sum(p.sum() for p in self.engine.module.parameters() if p.requires_grad) * 0.0

    @torch.no_grad()
    def _logprobs(self, batch: RolloutBatch) -> torch.Tensor:
        """π_old by the trained model, before any update of this iteration."""
        from kimi_pipeline.training.objectives import token_logprobs

        self.engine.eval()
        parts = []
        for micro in batch.split(self.config.train.micro_batches):
            with self._autocast():
                lp, _ = token_logprobs(self.engine, micro.input_ids.to(self.engine.device),
                                       micro.loss_mask.to(self.engine.device),
                                       groups=self._groups(micro))
            full = torch.zeros(len(micro), batch.input_ids.shape[1])
            full[:, : lp.shape[1]] = lp.cpu()
            parts.append(full)
        return torch.cat(parts)

    def _ptx_rows(self, update: int):
        """This update's PTX rows split like the policy micro-batches (None when off)."""
        if self.ptx is None or self.config.ptx.weight == 0:
            return None
        n = len(self.ptx["input_ids"])
        generator = torch.Generator().manual_seed(self.config.train.seed * 100_003 + update)
        rows = torch.randperm(n, generator=generator)[: self.config.ptx.rows_per_update]
        batch = RolloutBatch(
            input_ids=self.ptx["input_ids"][rows], loss_mask=self.ptx["loss_mask"][rows],
            sampler_logprobs=torch.zeros(self.ptx["input_ids"][rows].shape),
            rewards=torch.zeros(len(rows)), group_ids=torch.zeros(len(rows), dtype=torch.long))
        parts = batch.split(self.config.train.micro_batches)
        return _PtxParts(parts, StepScale(sequences=len(rows),
                                          tokens=float(batch.loss_mask.sum().clamp(min=1))))

    # ------------------------------------------------------------------ critic refresh
    def refresh_critic(self, samples: list[Sampled]) -> dict[str, float]:
        """Refine the critic on this iteration's verifiable rollouts (critic.refine)."""
        from kimi_pipeline.critic.refine import refine_critic, verifier_pairs
        from kimi_pipeline.records import GymResult

        verifiable = [s for s in samples if s.prompt.source == "verifier"]
        results = [GymResult(task_id=s.prompt.prompt_id, domain=s.prompt.task_type,
                             sample_index=i, response=s.text, reward=s.score,
                             reason=s.reason) for i, s in enumerate(verifiable)]
        prompts = {s.prompt.prompt_id: s.prompt.messages[-1]["content"] for s in verifiable}
        # one seed for every refresh: a task is measured or fitted, never both
        fresh = verifier_pairs(results, prompts, self.config.critic.heldout_share,
                               seed=self.config.train.seed)
        self.rollout_pairs += [p for part in _gathered(fresh) for p in part]  # every rank's
        if not any(p.split == "train" for p in self.rollout_pairs):
            return {"critic_refresh_pairs": float(len(self.rollout_pairs))}
        # the critic stage's train pairs stay in the fit, so its rule lessons are not forgotten
        refined = refine_critic(self.critic, self.rollout_pairs, keep=self.critic_pairs)
        self.critic = refined.critic
        self.router.set_critic(self.critic)
        out = {"critic_refresh_pairs": float(len(self.rollout_pairs))}
        if refined.after.get("n"):  # agreement with the verifiers on the held-out tasks
            out["critic_agreement_before"] = float(refined.before["accuracy"])
            out["critic_agreement_after"] = float(refined.after["accuracy"])
            out["critic_position_bias"] = float(refined.after["position_bias"])
        return out

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        from tqdm.auto import tqdm

        total = self.config.train.iterations
        resumed_from = self.iteration
        bar = tqdm(total=total, initial=self.iteration, desc="rl", unit="iter",
                   disable=not self.config.progress or process_rank() != 0, dynamic_ncols=True)
        start = time.perf_counter()
        while self.iteration < total:
            tick = time.perf_counter()
            metrics = self.iterate()
            metrics["iteration_s"] = time.perf_counter() - tick
            tokens_s = metrics["trained_tokens"] / max(metrics["train_s"], 1e-9)
            metrics["train_tokens_per_s"] = tokens_s
            metrics["mfu"] = tokens_s * self.flops_per_token / (self.peak_flops * process_count())
            self.sink.log(self.iteration, metrics)
            self._log_samples()
            if self.iteration % self.config.train.checkpoint_every == 0 and \
                    self.iteration < total:
                self.save_checkpoint()
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['reward/task']:.2f}",
                            T=f"{metrics['temperature']:.2f}")
        bar.close()
        return {"iterations": total, "resumed_from_iteration": resumed_from,
                "rl_seconds": time.perf_counter() - start}

    def _log_samples(self) -> None:
        if process_rank() != 0 or not self.config.samples_logged:
            return
        with (self.run_dir / "samples.jsonl").open("a") as handle:
            for s in self.samples[: self.config.samples_logged]:
                handle.write(json.dumps({
                    "iteration": self.iteration, "prompt_id": s.prompt.prompt_id,
                    "source": s.prompt.source,
                    "prompt": s.prompt.messages[-1]["content"][:2000] if s.prompt.messages else "",
                    "response": s.text, "reward": s.reward, "shaped": s.shaped,
                    "reason": s.reason[:300], "truncated": s.truncated}) + "\n")


@dataclass
class _PtxParts:
    parts: list[RolloutBatch]
    scale: StepScale

    def __getitem__(self, i: int) -> RolloutBatch:
        return self.parts[i]


def _restore_critic(critic: Any, state: dict[str, Any]) -> Any:
    from kimi_pipeline.critic.model import load_critic

    return load_critic(critic.policy, critic.rubrics, state)


# ----------------------------------------------------------------------------- worker


def read_pairs(path: str | Path) -> list[Any]:
    from kimi_pipeline.records import PreferencePair

    return [PreferencePair.model_validate_json(line)
            for line in Path(path).read_text().splitlines() if line.strip()]


def read_prompts(path: str | Path) -> list[RLPrompt]:
    return [RLPrompt.from_dict(json.loads(line))
            for line in Path(path).read_text().splitlines() if line.strip()]


@dataclass
class Worker:
    """A started RL worker: the trainer and what ``main`` reports at the end."""

    trainer: PolicyTrainer
    setup: Any  # training.optim.OptimizerSetup
    ds_config: dict[str, Any]
    matmul_dtype: torch.dtype
    trainable: int


def build_worker(spec: RLSpec) -> Worker:
    """Process group, model, optimizer, DeepSpeed engine, critic, rewards and trainer of a
    spec (what ``main`` runs; ``bench/rl_step.py`` times its iterations)."""
    from kimi_pipeline.training import engine as ds_engine
    from kimi_pipeline.training.loop import (
        MetricsSink, autocast_dtype, freeze_below, seed_everything,
    )
    from kimi_pipeline.training.model import flops_per_token, load_model, measure_peak_flops
    from kimi_pipeline.training.optim import prepare_optimizer
    from kimi_pipeline.training.tokenizer import load_tokenizer

    config = spec.config
    run_dir = Path(spec.run_dir)
    if not dist.is_initialized():
        ds_engine.init_distributed(config.engine.dist_backend)
    seed_everything(config.train.seed)
    tokenizer = load_tokenizer(spec.initial_model)
    model = load_model(spec.initial_model, config.attn_implementation, dtype=torch.float32)
    prompts = read_prompts(spec.prompts)
    ptx = torch.load(spec.ptx_data) if spec.ptx_data else None
    trainable = freeze_below(model, config.train.trainable_layers)
    chars = [len(p.messages[-1]["content"]) for p in prompts if p.messages]
    context = sum(chars) / max(len(chars), 1) / 4  # ≈ 4 characters a token: a FLOP estimate
    flops = flops_per_token(model, context + config.budget.budget("default") / 2)
    setup = prepare_optimizer(model, config.optimizer, ds_engine.zero_stage(spec.deepspeed))
    rows = config.sampler.prompts_per_iteration * config.train.samples
    micro = max(1, math.ceil(rows / (config.train.micro_batches *
                                     config.train.updates_per_iteration)))
    ds_config = ds_engine.resolve_deepspeed_config(
        spec.deepspeed, micro, config.train.micro_batches, config.train.max_grad_norm,
        setup.ds_config)
    warmup = config.train.warmup_iterations * config.train.updates_per_iteration

    def constant_after_warmup(optimizer):
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))

    engine, lr_scheduler = ds_engine.initialize(model, ds_config, setup.optimizer,
                                                setup.model_parameters, constant_after_warmup)
    bf16 = ds_config.get("bf16", {}).get("enabled", False)
    matmul_dtype = torch.bfloat16 if bf16 else autocast_dtype(config.train, engine.device)
    on_gpu = engine.device.type == "cuda"
    peak = measure_peak_flops(matmul_dtype, device=str(engine.device) if on_gpu else "cpu")
    critic, rubric_names = _load_critic(spec)
    router = RewardRouter(config, critic, rubric_names)
    trainer = PolicyTrainer(engine, lr_scheduler, spec, tokenizer, prompts, ptx, router, critic,
                            MetricsSink(run_dir / "metrics.jsonl", spec.mlflow_run, "rl"),
                            flops, peak)
    return Worker(trainer, setup, ds_config, matmul_dtype, trainable)


def main(spec_path: str) -> None:
    """Worker entry point (one per process): build, resume, run, save ``final/``."""
    from kimi_pipeline.training import engine as ds_engine
    from kimi_pipeline.model_folder import replace_folder

    spec = RLSpec.model_validate_json(Path(spec_path).read_text())
    run_dir = Path(spec.run_dir)
    worker = build_worker(spec)
    trainer, engine = worker.trainer, worker.trainer.engine
    trainer.resume()
    summary = trainer.run()
    state = ds_engine.consolidated_state_dict(engine)
    if dist.get_rank() == 0:
        final, staging = run_dir / "final", run_dir / ".final.tmp"
        engine.module.save_pretrained(str(staging), state_dict=state)
        trainer.tokenizer.save_pretrained(str(staging))
        template = Path(spec.initial_model) / "chat_template.jinja"
        if template.exists() and not (staging / "chat_template.jinja").exists():
            shutil.copy(template, staging / "chat_template.jinja")
        replace_folder(staging, final)
        critic = trainer.critic
        result = {**summary, "world_size": dist.get_world_size(),
                  "peak_flops": trainer.peak_flops,
                  "matmul_dtype": str(worker.matmul_dtype).removeprefix("torch."),
                  "zero_stage": ds_engine.zero_stage(worker.ds_config),
                  "optimizer": worker.setup.describe(), "flops_per_token": trainer.flops_per_token,
                  "trainable_parameters": worker.trainable,
                  "critic_state": critic.state() if critic is not None else None,
                  "final_model": str(final)}
        (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    dist.barrier()
    dist.destroy_process_group()


def _load_critic(spec: RLSpec):
    """The critic of the critic stage (None when the pool has no open prompt)."""
    if not spec.critic_model:
        return None, []
    from kimi_pipeline.critic.model import load_critic
    from kimi_pipeline.critic.rubrics import DEFAULT_RUBRICS_FILE, load_rubrics
    from kimi_pipeline.model_folder import ModelFolder

    rubrics = load_rubrics(spec.rubrics_file or DEFAULT_RUBRICS_FILE)
    return load_critic(ModelFolder(Path(spec.critic_model)), rubrics), rubrics.names


if __name__ == "__main__":
    main(sys.argv[1])
