"""Optimizers chosen by name in config, prepared for ``deepspeed.initialize`` and MLflow.

K2 trains (and recommends fine-tuning) with Muon; the other entries are the AdamW baselines a
user compares against. :func:`prepare_optimizer` turns an :class:`OptimizerConfig` into an
:class:`OptimizerSetup`: either a client optimizer (``optimizer=``) or a DeepSpeed JSON
``"optimizer"`` section, the ``model_parameters=`` groups, the QK-Clip to run after each step,
and flat ``describe()`` params for MLflow.

Registry (``name``):

* ``adamw`` — ``torch.optim.AdamW`` with ``fused=True`` when every parameter's device type has
  fused kernels (CPU and CUDA do in torch ≥ 2.4), else the foreach kernel, with the reason
  logged. Decay on matrices/embeddings, none on norms and biases. All ZeRO stages.
* ``muon`` — one ``MuonWithAuxAdam`` (``deepspeed.runtime.zero.muon.muon_optimizer``): Muon on
  the 2-D weights of ``nn.Linear`` layers inside the blocks, inline AdamW on embeddings,
  ``lm_head`` (tied or not), norms and biases. It must be this class: DeepSpeed's ZeRO-1/2
  (``'muon'`` in the optimizer class name), ZeRO-3 and bf16 optimizers (``isinstance``)
  recognise it and run Newton-Schulz on the *full* gradient of each ``use_muon`` parameter
  before partitioning the update, which is what makes Muon correct on flat ZeRO partitions.
  ``torch.optim.Muon`` is not used: it only accepts 2-D tensors (ZeRO hands the optimizer 1-D
  flat partitions) and is not combined with AdamW. Stages 0, 1, 2 and 3 (ZeRO-3 needs
  ``zero_optimization.reduce_scatter: false``, which ``ds_config`` carries).
  DeepSpeed 0.19.8's Muon always uses Nesterov momentum and 5 Newton-Schulz steps (not
  configurable); ``ns_method`` picks its "gram" or "standard" kernel. Its update carries
  Keller Jordan's ``sqrt(max(1, out/in))`` factor; ``muon_lr_adjust="match_rms_adamw"``
  (Moonlight/K2) instead gives the update the RMS of an AdamW update, ``0.2·sqrt(max(out,
  in))``, by grouping Muon matrices by shape with ``lr = muon_lr · 0.2·sqrt(max(out, in)) /
  sqrt(max(1, out/in))`` — so the AdamW lr can be reused. Each group carries ``lr_scale``
  (its lr / the configured lr): an LR schedule must multiply, not overwrite, group lrs (torch
  ``LambdaLR`` does; DeepSpeed's ``WarmupLR`` sets one lr for all groups and would undo it).
* ``muonclip`` — ``muon`` plus :class:`~kimi_pipeline.training.qk_clip.QKClip` (τ default 100,
  K2's value) to apply after each optimizer step.
* ``deepspeed_fused_adam`` — DeepSpeed builds it from ``ds_config`` (``type: AdamW``):
  ``deepspeed.ops.adam.FusedAdam``, or ``DeepSpeedCPUAdam`` under ZeRO-Offload. On a CPU
  accelerator DeepSpeed JIT-builds a C++ FusedAdam (needs ninja and a C++ compiler; first
  build takes a while, then it is cached in ``~/.cache/torch_extensions``). All stages.
* ``apex_fused_adam`` — ``apex.optimizers.FusedAdam`` (CUDA only, built from source); a clear
  :class:`OptimizerUnavailableError` when apex is not importable.

``qk_clip_tau`` may be set for any optimizer (logits can grow under AdamW too).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from kimi_pipeline.training.qk_clip import QKClip

logger = logging.getLogger(__name__)

DEEPSPEED_MUON_NS_STEPS = 5  # fixed inside deepspeed.runtime.zero.muon.original_muon.muon_update
DEEPSPEED_MUON_NESTEROV = True
K2_QK_CLIP_TAU = 100.0
ALL_STAGES = frozenset({0, 1, 2, 3})


class OptimizerUnavailableError(RuntimeError):
    """The configured optimizer's implementation cannot be used on this machine."""


class OptimizerConfig(BaseModel):
    """Which optimizer to build and its hyper-parameters (recorded in MLflow via describe())."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        "muon",
        description="Registry key: adamw, muon, muonclip, deepspeed_fused_adam, apex_fused_adam.",
    )
    lr: float = Field(2e-4, gt=0, description="Peak learning rate of the AdamW parameters.")
    weight_decay: float = Field(
        0.1, ge=0, description="Decoupled weight decay (Muon matrices, embeddings and lm_head)."
    )
    decay_norms_and_biases: bool = Field(
        False, description="Also decay 1-D parameters (norms, biases); off as is customary."
    )
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW (beta1, beta2).")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    muon_lr: float | None = Field(
        None,
        gt=0,
        description="Base lr of the Muon matrices before the lr-matching rule; null = lr.",
    )
    muon_momentum: float = Field(
        0.95, ge=0, lt=1, description="Muon momentum (Nesterov; DeepSpeed fixes Nesterov on)."
    )
    muon_lr_adjust: Literal["match_rms_adamw", "original"] = Field(
        "match_rms_adamw",
        description="match_rms_adamw: update RMS of AdamW, 0.2·sqrt(max(out, in)) (Moonlight/K2);"
        " original: Keller Jordan's sqrt(max(1, out/in)).",
    )
    ns_method: Literal["gram", "standard"] = Field(
        "gram", description="DeepSpeed's Newton-Schulz kernel (5 steps, fixed by DeepSpeed)."
    )
    adamw_fused: bool | None = Field(
        None, description="adamw: force the fused kernel on/off; null = on when supported."
    )
    qk_clip_tau: float | None = Field(
        None,
        gt=0,
        description="QK-Clip threshold τ on max attention logits (K2: 100); muonclip defaults "
        "to 100 when null; any optimizer may set it.",
    )
    qk_clip_gqa_rule: Literal["balanced", "query"] = Field(
        "balanced", description="How QK-Clip splits the scale between q and a shared GQA k head."
    )


@dataclass
class OptimizerSetup:
    """What ``deepspeed.initialize`` needs, plus the QK-Clip and MLflow params."""

    name: str
    optimizer: torch.optim.Optimizer | None
    ds_config: dict[str, Any]
    model_parameters: list[dict[str, Any]]
    qk_clip: QKClip | None = None
    details: dict[str, str | int | float] = field(default_factory=dict)

    def describe(self) -> dict[str, str | int | float]:
        """Flat params for ``mlflow.log_params`` (prefixed ``optim/``); counts and stages are
        ints, so MLflow shows ``zero_stage=2``, not ``2.0``."""
        params: dict[str, str | int | float] = {"optimizer": self.name, **self.details}
        params["qk_clip_tau"] = self.qk_clip.tau if self.qk_clip else "off"
        if self.qk_clip:
            params["qk_clip_gqa_rule"] = self.qk_clip.gqa_rule
        return {f"optim/{k}": v for k, v in params.items()}


Builder = Callable[[nn.Module, OptimizerConfig, int], OptimizerSetup]


@dataclass(frozen=True)
class _Entry:
    build: Builder
    zero_stages: frozenset[int]


OPTIMIZERS: dict[str, _Entry] = {}


def register_optimizer(name: str, zero_stages: frozenset[int] = ALL_STAGES):
    """Register a builder ``(model, config, zero_stage) -> OptimizerSetup`` under ``name``."""

    def decorator(build: Builder) -> Builder:
        OPTIMIZERS[name] = _Entry(build, frozenset(zero_stages))
        return build

    return decorator


def prepare_optimizer(model: nn.Module, config: OptimizerConfig, zero_stage: int) -> OptimizerSetup:
    """Build the optimizer setup for ``model`` under ZeRO ``zero_stage`` (0-3).

    Call before ``deepspeed.initialize`` (on every rank), then pass ``optimizer=setup.optimizer,
    model_parameters=setup.model_parameters`` and deep-merge ``setup.ds_config`` into the
    DeepSpeed config (:func:`merge_ds_config`).
    """
    entry = OPTIMIZERS.get(config.name)
    if entry is None:
        raise ValueError(f"unknown optimizer {config.name!r}; choose one of {sorted(OPTIMIZERS)}")
    if zero_stage not in entry.zero_stages:
        raise ValueError(
            f"optimizer {config.name!r} does not support ZeRO stage {zero_stage}; "
            f"supported stages: {sorted(entry.zero_stages)}"
        )
    setup = entry.build(model, config, zero_stage)
    if setup.qk_clip is None and config.qk_clip_tau is not None:
        setup.qk_clip = QKClip(config.qk_clip_tau, config.qk_clip_gqa_rule)
    setup.details.update(_counts(setup.model_parameters), zero_stage=int(zero_stage))
    return setup


def merge_ds_config(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` (e.g. ``OptimizerSetup.ds_config``) into a copy of ``base``."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_ds_config(merged[key], value)
        else:
            merged[key] = value
    return merged


# --- parameter split ------------------------------------------------------------------------


def split_muon_params(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """``(muon, adamw)`` trainable parameters by name.

    Muon: 2-D weights of ``nn.Linear`` layers, except the output head. AdamW: everything else —
    input embeddings, ``lm_head`` (tied or not; a tied head is the embedding parameter),
    norms, biases, any other 1-D or non-Linear parameter. Works on ZeRO-3 partitioned
    parameters (reads ``ds_shape``).
    """
    excluded = _embedding_param_ids(model)
    muon: dict[str, nn.Parameter] = {}
    adamw: dict[str, nn.Parameter] = {}
    linear_weights = {
        id(m.weight) for m in model.modules() if isinstance(m, nn.Linear) and m.weight is not None
    }
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_matrix = len(_layer_shape(param)) == 2 and id(param) in linear_weights
        target = muon if is_matrix and id(param) not in excluded else adamw
        target[name] = param
    return muon, adamw


def _embedding_param_ids(model: nn.Module) -> set[int]:
    modules = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    for getter in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None:
            modules.append(module)
    ids = {id(p) for m in modules for p in m.parameters()}
    ids |= {id(p) for n, p in model.named_parameters() if "lm_head" in n or "embed" in n}
    return ids


def _layer_shape(param: nn.Parameter) -> tuple[int, ...]:
    ds_shape = getattr(param, "ds_shape", None)
    return tuple(param.shape) if ds_shape is None else tuple(ds_shape)


def _adamw_groups(params: dict[str, nn.Parameter], config: OptimizerConfig) -> list[dict]:
    decay, no_decay = [], []
    for param in params.values():
        is_vector = len(_layer_shape(param)) < 2
        (no_decay if is_vector and not config.decay_norms_and_biases else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay, "name": "adamw-decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "adamw-no-decay"},
    ]
    for group in groups:
        group.update(lr=config.lr, lr_scale=1.0)
    return [g for g in groups if g["params"]]


# --- adamw ----------------------------------------------------------------------------------


@register_optimizer("adamw")
def _build_adamw(model: nn.Module, config: OptimizerConfig, zero_stage: int) -> OptimizerSetup:
    groups = _adamw_groups(dict(_trainable(model)), config)
    fused, reason = _fused_choice(model, config.adamw_fused)
    logger.info("adamw: fused=%s (%s)", fused, reason)
    kwargs = dict(lr=config.lr, betas=config.betas, eps=config.eps)
    optimizer = torch.optim.AdamW(groups, fused=fused, foreach=None if fused else True, **kwargs)
    details = {"kernel": "torch.optim.AdamW", "fused": str(fused), "fused_reason": reason}
    return OptimizerSetup("adamw", optimizer, {}, groups, details=_with_hparams(details, config))


def _trainable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _fused_choice(model: nn.Module, requested: bool | None) -> tuple[bool, str]:
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    supported = set(_get_fused_kernels_supported_devices())
    devices = {p.device.type for p in model.parameters()}
    if requested is False:
        return False, "disabled in config"
    if not devices <= supported:
        reason = f"no fused AdamW kernel for device(s) {sorted(devices - supported)}"
        if requested:
            raise OptimizerUnavailableError(f"adamw_fused=true but {reason}")
        return False, reason
    return True, f"fused kernels available on {sorted(devices)}"


def _with_hparams(details: dict, config: OptimizerConfig) -> dict[str, str | int | float]:
    details.update(
        lr=config.lr,
        weight_decay=config.weight_decay,
        beta1=config.betas[0],
        beta2=config.betas[1],
        eps=config.eps,
    )
    return details


def _counts(groups: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for group in groups:
        key = "muon" if group.get("use_muon") else "adamw"
        counts[f"{key}_params"] += sum(math.prod(_layer_shape(p)) for p in group["params"])
        counts[f"{key}_tensors"] += len(group["params"])
    return dict(counts)


# --- muon / muonclip ------------------------------------------------------------------------


@register_optimizer("muon")
def _build_muon(model: nn.Module, config: OptimizerConfig, zero_stage: int) -> OptimizerSetup:
    from deepspeed.runtime.zero.muon.muon_optimizer import MuonWithAuxAdam

    muon, adamw = split_muon_params(model)
    _tag_use_muon(muon, adamw)
    groups = _muon_groups(muon, config) + _adamw_groups(adamw, config)
    for group in groups:
        group.setdefault("use_muon", False)
        group.setdefault("betas", config.betas)
        group.setdefault("eps", config.eps)
    optimizer = MuonWithAuxAdam(groups)  # no aux optimizer object: inline AdamW, any device
    ds_config = _muon_ds_config(zero_stage)
    details = {
        "kernel": "deepspeed MuonWithAuxAdam (Muon + inline AdamW)",
        "muon_lr": config.muon_lr or config.lr,
        "muon_momentum": config.muon_momentum,
        "muon_nesterov": str(DEEPSPEED_MUON_NESTEROV),
        "muon_ns_steps": int(DEEPSPEED_MUON_NS_STEPS),
        "muon_ns_method": config.ns_method,
        "muon_lr_adjust": config.muon_lr_adjust,
        "gradient_clipping": "off" if zero_stage else "deepspeed config",
    }
    details = _with_hparams(details, config)
    return OptimizerSetup("muon", optimizer, ds_config, groups, details=details)


def _muon_ds_config(zero_stage: int) -> dict[str, Any]:
    """DeepSpeed keys Muon needs at this stage.

    ZeRO 1-3 write Muon's orthogonalised update into the gradient partition before DeepSpeed's
    gradient clipping runs (default ``gradient_clipping: 1.0`` in 0.19.8), which then shrinks
    the *update* to norm 1 — measured here as steps ~20x smaller than Muon's. Clipping is
    therefore switched off (it also stops clipping the AdamW parameters' gradients). Without
    ZeRO the clip acts on raw gradients, which Newton-Schulz normalises away anyway.
    ZeRO-3's Muon path refuses ``reduce_scatter``.
    """
    config: dict[str, Any] = {"gradient_clipping": 0.0} if zero_stage >= 1 else {}
    if zero_stage == 3:
        config["zero_optimization"] = {"reduce_scatter": False}
    return config


@register_optimizer("muonclip")
def _build_muonclip(model: nn.Module, config: OptimizerConfig, zero_stage: int) -> OptimizerSetup:
    setup = _build_muon(model, config, zero_stage)
    setup.name = "muonclip"
    setup.qk_clip = QKClip(config.qk_clip_tau or K2_QK_CLIP_TAU, config.qk_clip_gqa_rule)
    return setup


def _tag_use_muon(muon: dict[str, nn.Parameter], adamw: dict[str, nn.Parameter]) -> None:
    """DeepSpeed's ZeRO optimizers route parameters by this attribute."""
    for param in muon.values():
        param.use_muon = True
    for param in adamw.values():
        param.use_muon = False


def _muon_groups(params: dict[str, nn.Parameter], config: OptimizerConfig) -> list[dict]:
    by_shape: dict[tuple[int, ...], list[nn.Parameter]] = defaultdict(list)
    for param in params.values():
        by_shape[_layer_shape(param)].append(param)
    base_lr = config.muon_lr or config.lr
    groups = []
    for shape, members in sorted(by_shape.items()):
        scale = (base_lr / config.lr) * muon_lr_factor(shape, config.muon_lr_adjust)
        groups.append(
            {
                "params": members,
                "use_muon": True,
                "lr": config.lr * scale,
                "lr_scale": scale,
                "momentum": config.muon_momentum,
                "weight_decay": config.weight_decay,
                "ns_method": config.ns_method,
                "name": f"muon-{shape[0]}x{shape[1]}",
            }
        )
    return groups


def muon_lr_factor(shape: tuple[int, ...], rule: str) -> float:
    """Multiplier on the Muon lr so the applied update follows ``rule`` for this shape.

    DeepSpeed's update already carries ``sqrt(max(1, out/in))`` ("original"); for
    "match_rms_adamw" that factor is replaced by ``0.2·sqrt(max(out, in))``.
    """
    rows, cols = shape[0], shape[1]
    if rule == "original":
        return 1.0
    if rule == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols)) / math.sqrt(max(1.0, rows / cols))
    raise ValueError(f"unknown muon_lr_adjust {rule!r}")


# --- fused Adam variants --------------------------------------------------------------------


@register_optimizer("deepspeed_fused_adam")
def _build_ds_fused_adam(
    model: nn.Module, config: OptimizerConfig, zero_stage: int
) -> OptimizerSetup:
    _check_ds_fused_adam()
    groups = _adamw_groups(dict(_trainable(model)), config)
    params = {"lr": config.lr, "betas": list(config.betas), "eps": config.eps}
    params["weight_decay"] = config.weight_decay
    ds_config = {"optimizer": {"type": "AdamW", "params": params}}
    kernel = "deepspeed FusedAdam (DeepSpeedCPUAdam under ZeRO-Offload)"
    details = {"kernel": kernel, "fused": "True"}
    setup = OptimizerSetup("deepspeed_fused_adam", None, ds_config, groups)
    setup.details = _with_hparams(details, config)
    return setup


def _check_ds_fused_adam() -> None:
    from deepspeed.accelerator import get_accelerator

    builder = get_accelerator().create_op_builder("FusedAdamBuilder")
    if builder is None or not builder.is_compatible(verbose=False):
        raise OptimizerUnavailableError(
            f"deepspeed_fused_adam: DeepSpeed cannot build FusedAdam on the "
            f"{get_accelerator().device_name()!r} accelerator (it needs ninja and a C++/CUDA "
            "toolchain); choose 'adamw' (torch fused AdamW) instead"
        )


APEX_MISSING = (
    "optimizer 'apex_fused_adam' needs NVIDIA apex, which is not importable here. apex is not "
    "on PyPI (the PyPI package named 'apex' is unrelated): build it from source on a CUDA "
    "machine, e.g. `git clone https://github.com/NVIDIA/apex && cd apex && pip install -v "
    "--disable-pip-version-check --no-cache-dir --no-build-isolation --config-settings "
    '"--build-option=--cpp_ext" --config-settings "--build-option=--cuda_ext" ./`. '
    "Or pick 'adamw' (torch fused AdamW) or 'deepspeed_fused_adam', which need no extra install."
)


@register_optimizer("apex_fused_adam")
def _build_apex(model: nn.Module, config: OptimizerConfig, zero_stage: int) -> OptimizerSetup:
    try:
        from apex.optimizers import FusedAdam
    except ImportError as error:
        raise OptimizerUnavailableError(f"{APEX_MISSING} (import error: {error})") from error
    groups = _adamw_groups(dict(_trainable(model)), config)
    optimizer = FusedAdam(
        groups, lr=config.lr, betas=config.betas, eps=config.eps, adam_w_mode=True
    )
    details = {"kernel": "apex.optimizers.FusedAdam", "fused": "True"}
    details = _with_hparams(details, config)
    return OptimizerSetup("apex_fused_adam", optimizer, {}, groups, details=details)
