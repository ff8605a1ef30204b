"""Training objectives by name, and the one batch type carrying rollouts from sampler to trainer.

Every trainer of the project steps a DeepSpeed engine over micro-batches and asks an objective
for the loss of each: ``@register_objective("sft")`` is the next-token loss of SFT (and PTX, and
the generative critic), ``"k1.5"`` the policy objective of Kimi k1.5/K2, ``"grpo"`` the clipped
surrogate that peer projects use, for comparison. An objective has two parts:

- ``prepare(batch)``: work on the whole step's batch before it is cut into micro-batches — the
  group baselines of the policy losses need all K samples of a prompt;
- ``__call__(engine, micro, scale)``: the micro-batch's loss, already divided by the step's
  totals in ``scale`` (sequences, policy tokens), so that summing micro-batch losses gives the
  exact loss of the step whatever the split.

**RolloutBatch** (right-padded, one row per sampled sequence; token tensors aligned with
``input_ids``, so ``loss_mask[b, t]`` says whether token ``t`` of row ``b`` is trained and
``sampler_logprobs[b, t]`` is the log-prob the sampler gave that token given the tokens
before it; ``old_logprobs``, π_old of the loss, is the same alignment, or None for "the
trained model's own log-probs in this forward, detached"):
prompt tokens, tool results and user turns have ``loss_mask`` 0 — only the policy's own sampled
tokens are trained, and only they count as response length. Right padding needs no attention
mask under causal attention: no real token attends to a later one.

The policy losses, for a prompt's K samples y_i with rewards r_i and group mean r̄:

- ``k1.5`` (k1.5 §2.3): ``1/K Σ_i (r_i − r̄ − τ·log(π_θ(y_i|x)/π_old(y_i|x)))²``, the log-ratio
  summed over the response (``per_token: true`` averages it over the response's tokens).
  Its gradient at π_θ = π_old is the policy gradient −2τ(r_i − r̄)∇log π_θ(y_i|x); the square
  keeps later updates of the same samples near π_old, so there is no value network and no clip.
- ``grpo``: per token ``−min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)`` with ρ = π_θ/π_old and
  A = (r_i − r̄)/(std_i + 1e-4) of the group, plus ``kl_coef`` × the k3 estimate of
  KL(π_θ‖π_ref) when reference log-probs are given; averaged over all policy tokens of the step
  (``aggregation: token``) or over each sequence's tokens then over sequences (``sequence``).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.registry import registrar

# ----------------------------------------------------------------------------- the batch


@dataclass
class RolloutBatch:
    """Sampled sequences of one RL step, from the sampler to the trainer (see module doc)."""

    input_ids: torch.Tensor  # [B, T] long, right-padded
    loss_mask: torch.Tensor  # [B, T] bool: the policy's own sampled tokens
    sampler_logprobs: torch.Tensor  # [B, T] float: log-probs the sampler recorded (T = 1)
    rewards: torch.Tensor  # [B] float: the sequence's reward (after budget penalties)
    group_ids: torch.Tensor  # [B] long: the K samples of one prompt share one id
    # [B, T] log π_old(token t | < t); None: the trained model's own log-probs of this forward,
    # detached (exact when the weights have not moved since sampling)
    old_logprobs: torch.Tensor | None = None
    advantages: torch.Tensor | None = None  # [B] float, filled by an objective's prepare
    ref_logprobs: torch.Tensor | None = None  # [B, T] float, for a KL penalty (grpo)

    def __post_init__(self) -> None:
        rows, width = self.input_ids.shape
        for name in ("loss_mask", "sampler_logprobs", "old_logprobs", "ref_logprobs"):
            value = getattr(self, name)
            if value is not None and value.shape != (rows, width):
                raise ValueError(f"RolloutBatch.{name} has shape {tuple(value.shape)}, "
                                 f"input_ids {(rows, width)}")
        for name in ("rewards", "group_ids", "advantages"):
            value = getattr(self, name)
            if value is not None and value.shape != (rows,):
                raise ValueError(f"RolloutBatch.{name} has shape {tuple(value.shape)}, "
                                 f"expected ({rows},)")

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def response_tokens(self) -> torch.Tensor:
        """The policy's own tokens per row."""
        return self.loss_mask.sum(dim=1)

    def select(self, rows: torch.Tensor | list[int]) -> RolloutBatch:
        """The given rows, trimmed of columns that are padding in all of them."""
        index = torch.as_tensor(rows, dtype=torch.long)
        picked = {f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[index])
                  for f in fields(self)}
        width = int(picked["loss_mask"].any(dim=0).nonzero().max()) + 1 if picked[
            "loss_mask"].any() else 1
        for name in ("input_ids", "loss_mask", "sampler_logprobs", "old_logprobs", "ref_logprobs"):
            if picked[name] is not None:
                picked[name] = picked[name][:, :width]
        return RolloutBatch(**picked)

    def split(self, parts: int) -> list[RolloutBatch]:
        """``parts`` micro-batches of consecutive rows (sizes differ by at most one; a part may
        be empty when there are fewer rows than parts)."""
        return [self.select(chunk) for chunk in torch.arange(len(self)).tensor_split(parts)]

    def to(self, device: torch.device | str) -> RolloutBatch:
        return replace(self, **{f.name: getattr(self, f.name).to(device)
                                for f in fields(self) if getattr(self, f.name) is not None})


def pad_rows(rows: list[list[int]], pad: int | float, dtype: torch.dtype) -> torch.Tensor:
    """Right-pad lists to one tensor."""
    width = max((len(r) for r in rows), default=1) or 1
    out = torch.full((len(rows), width), pad, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=dtype)
    return out


# ----------------------------------------------------------------------------- log-probs

MIN_SHARED_PREFIX = 8  # shorter common prompts are not worth a separate prefix forward


def token_logprobs(engine: Any, input_ids: torch.Tensor, loss_mask: torch.Tensor,
                   position_ids: torch.Tensor | None = None, entropy: bool = False,
                   groups: torch.Tensor | None = None,
                   min_shared_prefix: int = MIN_SHARED_PREFIX
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log π(token t | tokens < t) where ``loss_mask`` (0 elsewhere), and optionally the
    entropy of the next-token distribution at those positions, in fp32.

    Logits are computed only at the positions that predict a masked token (``logits_to_keep``).
    With ``groups`` (one id per row: the K samples of a prompt), each group's common prompt —
    the tokens all its rows share before their first trained token — goes through the model
    once and its KV cache is repeated for the group's rows (gradients flow back through it), so
    K samples cost one prompt instead of K; groups without such a prefix of at least
    ``min_shared_prefix`` tokens take the plain forward. Same values up to float rounding."""
    parts = _prefix_parts(engine, input_ids, loss_mask, groups, min_shared_prefix) \
        if groups is not None and position_ids is None else []
    if not parts:
        return _rows_logprobs(engine, input_ids, loss_mask, position_ids, entropy)
    out = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    ent = torch.zeros_like(out) if entropy else None
    for rows, prefix in parts:
        end = int(loss_mask[rows].any(dim=0).nonzero().max()) + 1
        lp, h = _rows_logprobs(engine, input_ids[rows, :end], loss_mask[rows, :end], None,
                               entropy, prefix)
        out[rows, :end] = lp
        if ent is not None:
            ent[rows, :end] = h
    return out, ent


def _prefix_parts(engine: Any, input_ids: torch.Tensor, loss_mask: torch.Tensor,
                  groups: torch.Tensor, min_shared: int) -> list[tuple[torch.Tensor, int]]:
    """``shared_prefixes``, or [] when no group shares a long-enough prompt or the engine
    cannot run a prefix forward."""
    if not can_share_prefix(engine):
        return []
    parts = shared_prefixes(input_ids, loss_mask, groups, min_shared)
    return parts if any(prefix for _, prefix in parts) else []


def can_share_prefix(engine: Any) -> bool:
    """False under ZeRO-3 (parameters are partitioned per forward) and gradient checkpointing
    (it drops the cache)."""
    module = getattr(engine, "module", engine)
    stage = getattr(engine, "zero_optimization_stage", lambda: 0)()
    names = ("is_activation_checkpointing", "is_gradient_checkpointing")  # new, old name
    checkpointing = next((getattr(module, n) for n in names if hasattr(module, n)), False)
    return stage < 3 and not checkpointing


def shared_prefixes(input_ids: torch.Tensor, loss_mask: torch.Tensor, groups: torch.Tensor,
                    min_shared: int = MIN_SHARED_PREFIX) -> list[tuple[torch.Tensor, int]]:
    """(rows, shared prefix length) per group: the tokens all its rows share before the
    position that predicts their first trained token; 0 when that is shorter than
    ``min_shared`` or the group has one row."""
    parts = []
    for group in torch.unique(groups):
        rows = (groups == group).nonzero().squeeze(1)
        first = int(loss_mask[rows].int().argmax(dim=1).min())  # earliest trained token
        ids = input_ids[rows, : max(first - 1, 0)]  # position first-1 predicts it: not shared
        differs = (ids != ids[:1]).any(dim=0).nonzero()
        prefix = int(differs[0]) if len(differs) else ids.shape[1]
        useful = len(rows) > 1 and prefix >= min_shared and loss_mask[rows].any()
        parts.append((rows, prefix if useful else 0))
    return parts


def _rows_logprobs(engine: Any, input_ids: torch.Tensor, loss_mask: torch.Tensor,
                   position_ids: torch.Tensor | None, entropy: bool, prefix: int = 0
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``token_logprobs`` of rows that share their first ``prefix`` tokens (0: none shared)."""
    module = getattr(engine, "module", engine)
    predicting = loss_mask[:, 1:].any(dim=0).nonzero().squeeze(1)  # position p predicts p + 1
    kwargs: dict[str, Any] = {"use_cache": False}
    if position_ids is not None:
        kwargs["position_ids"] = position_ids
    accepted = inspect.signature(module.forward).parameters
    keep = "logits_to_keep" in accepted
    if prefix:
        head = engine(input_ids=input_ids[:1, :prefix], use_cache=True,
                      **({"logits_to_keep": 1} if keep else {}))
        name = "cache" if "cache" in accepted else "past_key_values"  # transformers ≥ 5.2x: cache
        cache = getattr(head, name)
        cache.batch_repeat_interleave(len(input_ids))
        kwargs.update({name: cache, "use_cache": True})
    if keep:
        kwargs["logits_to_keep"] = predicting - prefix
    logits = engine(input_ids=input_ids[:, prefix:], **kwargs).logits
    if not keep:
        logits = logits[:, predicting - prefix]
    logp = torch.log_softmax(logits.float(), dim=-1)
    targets = input_ids[:, predicting + 1]
    picked = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    mask = loss_mask[:, predicting + 1]
    out = torch.zeros(input_ids.shape, dtype=torch.float32, device=input_ids.device)
    out[:, predicting + 1] = torch.where(mask, picked, torch.zeros_like(picked))
    ent = None
    if entropy:
        with torch.no_grad():
            h = -(logp.exp() * logp).sum(-1)
            ent = torch.zeros_like(out)
            ent[:, predicting + 1] = torch.where(mask, h, torch.zeros_like(h))
    return out, ent


# ----------------------------------------------------------------------------- the maths


def group_baseline(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor,
                                                                             torch.Tensor]:
    """Mean and (population) standard deviation of each row's group, per row."""
    _, inverse, counts = torch.unique(group_ids, return_inverse=True, return_counts=True)
    r = rewards.double()
    sums = torch.zeros(len(counts), dtype=torch.float64).index_add_(0, inverse, r)
    mean = sums / counts
    squares = (r - mean[inverse]) ** 2
    sq = torch.zeros(len(counts), dtype=torch.float64).index_add_(0, inverse, squares)
    std = (sq / counts).sqrt()
    return mean[inverse].to(rewards.dtype), std[inverse].to(rewards.dtype)


def k15_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, loss_mask: torch.Tensor,
             advantages: torch.Tensor, tau: float, per_token: bool, sequences: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Σ_i (A_i − τ·log-ratio_i)² / ``sequences`` and the log-ratios (see module doc)."""
    mask = loss_mask.float()
    ratio = ((logprobs - old_logprobs) * mask).sum(dim=1)
    if per_token:
        ratio = ratio / mask.sum(dim=1).clamp(min=1)
    return ((advantages - tau * ratio) ** 2).sum() / sequences, ratio.detach()


def grpo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, loss_mask: torch.Tensor,
              advantages: torch.Tensor, clip: float, aggregation: str, tokens: float,
              sequences: float, ref_logprobs: torch.Tensor | None = None, kl_coef: float = 0.0
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate (plus k3 KL), aggregated over tokens or sequences (module doc)."""
    mask = loss_mask.float()
    ratio = torch.exp(logprobs - old_logprobs)
    adv = advantages.unsqueeze(1)
    per_token = -torch.minimum(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv)
    if ref_logprobs is not None and kl_coef:
        delta = ref_logprobs - logprobs
        per_token = per_token + kl_coef * (torch.exp(delta) - delta - 1)
    if aggregation == "token":
        loss = (per_token * mask).sum() / tokens
    else:
        loss = ((per_token * mask).sum(1) / mask.sum(1).clamp(min=1)).sum() / sequences
    clipped = ((ratio - 1).abs() > clip).float() * mask
    return loss, {"clip_fraction_sum": float(clipped.sum())}


# ----------------------------------------------------------------------------- registry


class ObjectiveConfig(BaseModel):
    """Which objective a trainer optimises and its coefficients."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("k1.5", description="Registry key: k1.5 (default), grpo, sft.")
    tau: float = Field(
        1.0, gt=0, description="k1.5: weight τ of the log-ratio to π_old in the squared loss; "
        "the policy-gradient step is 2τ(r − r̄), and after it the loss pulls each sample's "
        "log-ratio towards (r − r̄)/τ."
    )
    per_token: bool = Field(
        False, description="k1.5: average the log-ratio over the response's tokens instead of "
        "summing it (k1.5 sums: the ratio of whole-response probabilities)."
    )
    clip: float = Field(0.2, gt=0, description="grpo: ε of the clipped ratio.")
    kl_coef: float = Field(0.0, ge=0, description="grpo: weight of KL(π_θ‖π_ref) (k3).")
    aggregation: Literal["token", "sequence"] = Field(
        "token", description="grpo: mean over all policy tokens of the step, or over each "
        "sequence's tokens then over sequences."
    )
    share_prompt_prefix: bool = Field(
        True, description="Policy losses: run the prompt the K samples of a group share once "
        "per micro-batch and repeat its KV cache (gradients flow through it) instead of K "
        "times; the same loss up to float rounding. Off under ZeRO-3 or gradient checkpointing."
    )


@dataclass
class StepScale:
    """Totals of the whole step each micro-batch loss is divided by."""

    sequences: float
    tokens: float


class Objective(ABC):
    """Base: ``prepare`` leaves the batch as it is; subclasses compute the loss."""

    name = ""

    def __init__(self, config: ObjectiveConfig):
        self.config = config

    def prepare(self, batch: Any) -> Any:
        return batch

    @abstractmethod
    def __call__(self, engine: Any, micro: Any, scale: StepScale
                 ) -> tuple[torch.Tensor, dict[str, float]]:
        """The micro-batch's share of the step's loss, and statistics to sum over the step."""


_OBJECTIVES: dict[str, type[Objective]] = {}
_register = registrar(_OBJECTIVES)


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    def wrap(cls: type[Objective]) -> type[Objective]:
        cls.name = name
        return _register(name)(cls)

    return wrap


def make_objective(config: ObjectiveConfig | dict[str, Any] | None = None, **options: Any
                   ) -> Objective:
    """The objective ``config.name`` (``options`` go to its constructor)."""
    config = ObjectiveConfig.model_validate(config or {})
    if config.name not in _OBJECTIVES:
        raise ValueError(f"unknown objective {config.name!r}; known: {sorted(_OBJECTIVES)}")
    return _OBJECTIVES[config.name](config, **options)


def objective_names() -> list[str]:
    return sorted(_OBJECTIVES)


@register_objective("sft")
class NextToken(Objective):
    """Mean next-token cross-entropy over the trained tokens. On a ``RolloutBatch`` (PTX rows:
    ``loss_mask`` = the assistant tokens) it is divided by ``scale.tokens``; on SFT's packed
    rows (a dict with ``labels``) it is the loop's own fast path, the micro-batch mean."""

    def __init__(self, config: ObjectiveConfig, labelled_only: bool = True):
        super().__init__(config)
        self.labelled_only = labelled_only  # packed rows: logits only where labelled (loop.py)

    def __call__(self, engine, micro, scale):
        if isinstance(micro, dict):  # packed rows: the micro-batch mean (``scale`` unused)
            from kimi_pipeline.training.loop import next_token_loss

            return next_token_loss(engine, micro, self.labelled_only), {}
        logprobs, _ = token_logprobs(engine, micro.input_ids, micro.loss_mask)
        return -(logprobs * micro.loss_mask).sum() / scale.tokens, {}


class PolicyObjective(Objective):
    """Shared by the policy losses: the forward, and statistics every RL run logs."""

    def __call__(self, engine, micro: RolloutBatch, scale: StepScale):
        groups = micro.group_ids if self.config.share_prompt_prefix else None
        logprobs, entropy = token_logprobs(engine, micro.input_ids, micro.loss_mask,
                                           entropy=True, groups=groups)
        old = micro.old_logprobs if micro.old_logprobs is not None else logprobs.detach()
        loss, extra = self.loss(logprobs, old, micro, scale)
        mask = micro.loss_mask
        gap = ((logprobs.detach() - micro.sampler_logprobs).abs() * mask).sum()
        return loss, {"policy_tokens": float(mask.sum()), "entropy_sum": float(entropy.sum()),
                      "abs_log_ratio_sum": float(gap), **extra}

    @abstractmethod
    def loss(self, logprobs: torch.Tensor, old: torch.Tensor, micro: RolloutBatch,
             scale: StepScale) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss from the trained log-probs and π_old's."""


@register_objective("k1.5")
class K15(PolicyObjective):
    def prepare(self, batch: RolloutBatch) -> RolloutBatch:
        mean, _ = group_baseline(batch.rewards, batch.group_ids)
        return replace(batch, advantages=batch.rewards - mean)

    def loss(self, logprobs, old, micro, scale):
        loss, ratio = k15_loss(logprobs, old, micro.loss_mask, micro.advantages,
                               self.config.tau, self.config.per_token, scale.sequences)
        return loss, {"seq_log_ratio_sum": float(ratio.sum())}


@register_objective("grpo")
class GRPO(PolicyObjective):
    def prepare(self, batch: RolloutBatch) -> RolloutBatch:
        mean, std = group_baseline(batch.rewards, batch.group_ids)
        return replace(batch, advantages=(batch.rewards - mean) / (std + 1e-4))

    def loss(self, logprobs, old, micro, scale):
        c = self.config
        return grpo_loss(logprobs, old, micro.loss_mask, micro.advantages, c.clip,
                         c.aggregation, scale.tokens, scale.sequences, micro.ref_logprobs,
                         c.kl_coef)

