"""The checks behind ``kimi-pipeline doctor``: what the configured run will use, and why.

Each check is a small function registered by name in ``CHECKS`` (``@register_check("cpu")``)
that takes a ``DoctorContext`` (the run's merged parameters, validated stage models, MLflow
config) and returns ``CheckResult`` rows (both in ``doctor_context.py``): status ``ok``, ``warn``
(the run works, maybe not as intended) or ``missing`` (something the configured run needs is
absent; the row says the fix).
``kimi_pipeline.doctor`` loads the configuration with Kedro's config loader, runs every check
and prints the table; nothing here imports Kedro. Heavy libraries (DeepSpeed, the MCP client,
httpx) are imported inside the check that needs them, so one broken install shows up as its
check's row instead of as an import error of the whole command. The ``policy``, ``disk`` and
``memory`` rows size the run from the policy's parameter count (``doctor_estimates.py``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kimi_pipeline.doctor_context import CheckResult, DoctorContext, walk
from kimi_pipeline.procs import usable_cores
from kimi_pipeline.doctor_estimates import (
    GIB,
    POLICY_SOURCES,
    RAM_BYTES_PER_PARAM,
    policy_parameters,
    run_needs,
)
from kimi_pipeline.registry import registrar

VERSIONED = ("torch", "deepspeed", "transformers", "kedro", "kedro-mlflow", "mlflow", "mcp")

Check = Callable[[DoctorContext], list[CheckResult]]
CHECKS: dict[str, Check] = {}
register_check = registrar(CHECKS)


def run_check(name: str, ctx: DoctorContext, verbose: bool = False) -> list[CheckResult]:
    """One registered check; an exception inside it becomes a ``missing`` row naming it."""
    try:
        return CHECKS[name](ctx)
    except Exception as exc:  # noqa: BLE001 -- one broken check must not hide the others
        if verbose:
            raise
        return [CheckResult(name, "missing", f"the check failed: {type(exc).__name__}: {exc}",
                            "rerun with --verbose for the traceback")]


def _where(ctx: DoctorContext, path: str) -> str:
    """``path`` with the file that sets it, when one does."""
    source = ctx.sources.get(path.split("[")[0])
    return f"{path} ({source})" if source else path


# ------------------------------------------------------------------------------ configuration


@register_check("config")
def check_config(ctx: DoctorContext) -> list[CheckResult]:
    """Parameters load and validate as a run would validate them (ParameterValidationHook)."""
    if ctx.config_errors:
        return [CheckResult("config", "missing", "; ".join(ctx.config_errors),
                            "fix the configuration file named in the error")]
    if ctx.problems:
        return [CheckResult("config", "missing", ctx.problems,
                            "correct the keys named above in the file given for each")]
    return [CheckResult("config", "ok", f"environment '{ctx.env}' over base: "
                        f"{len(ctx.stages)} stage sections valid ({', '.join(ctx.stages)})",
                        data={"env": ctx.env, "stages": list(ctx.stages)})]


# ------------------------------------------------------------------------------ hardware


def _explicit_bf16(ctx: DoctorContext) -> list[str]:
    """Configured matmul precisions that ask for bf16 explicitly (not 'auto')."""
    return [path for path, key, value, parent in walk(ctx.resolved())
            if (key == "autocast" and value == "bf16")
            or (key == "dtype" and value == "bfloat16" and "kind" in parent)]


@register_check("cpu")
def check_cpu(ctx: DoctorContext) -> list[CheckResult]:
    """CPU capability and the precision ``auto`` picks (precision.py), explicit bf16 noted."""
    import torch

    from kimi_pipeline import precision

    auto = precision.resolve("auto", "cpu")
    flags = sorted(f for f in precision.BF16_CPU_FLAGS if f in precision.cpu_flags())
    data = {"capability": torch.backends.cpu.get_cpu_capability(), "bf16_flags": flags,
            "auto_precision": str(auto).removeprefix("torch.")}
    detail = f"{precision.describe('cpu')}"
    explicit = _explicit_bf16(ctx)
    if explicit and auto != torch.bfloat16 and not torch.cuda.is_available():
        return [CheckResult("cpu", "warn", f"{detail}; bf16 asked for by {', '.join(explicit)}",
                            "set those to 'auto': this CPU emulates bf16 (matmuls ~100x slower)",
                            data)]
    return [CheckResult("cpu", "ok", detail, data=data)]


@register_check("threads")
def check_threads(ctx: DoctorContext) -> list[CheckResult]:
    """torch's threads, the cores, and every configured thread / worker count."""
    import torch

    cores = usable_cores()
    configured = {path: value for path, key, value, _ in walk(ctx.resolved())
                  if key in ("cpu_threads", "workers", "verify_workers")
                  and isinstance(value, int) and not isinstance(value, bool)}
    data = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "usable_cores": cores, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "configured": configured}
    detail = (f"torch {data['torch_threads']} threads, {cores} usable of {os.cpu_count()} "
              f"cores; configured: "
              + (", ".join(f"{p}={v}" for p, v in configured.items()) or "none"))
    over = [p for p, v in configured.items() if v > cores]
    if over:
        return [CheckResult("threads", "warn", detail,
                            f"lower {', '.join(over)} to at most {cores} (more threads or "
                            "processes than cores slow every one of them down)", data)]
    return [CheckResult("threads", "ok", detail, data=data)]


@register_check("versions")
def check_versions(ctx: DoctorContext) -> list[CheckResult]:
    """Installed versions of the libraries a run relies on (metadata only: nothing imported)."""
    found, absent = {"python": sys.version.split()[0]}, []
    for name in VERSIONED:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            absent.append(name)
    detail = ", ".join(f"{k} {v}" for k, v in found.items())
    if absent:
        return [CheckResult("versions", "missing", f"{detail}; not installed: {', '.join(absent)}",
                            "make install (or: pip install -e .)", found)]
    return [CheckResult("versions", "ok", detail, data=found)]


def _needs_cuda(ctx: DoctorContext) -> list[str]:
    """Configured settings that only work on CUDA (device: cuda, the nccl backend)."""
    return [path for path, key, value, _ in walk(ctx.resolved())
            if (key == "device" and value == "cuda") or (key == "dist_backend" and value == "nccl")]


@register_check("cuda")
def check_cuda(ctx: DoctorContext) -> list[CheckResult]:
    """CUDA availability and devices; missing only when the configuration demands CUDA."""
    import torch

    if torch.cuda.is_available():
        devices = [f"{i}: {torch.cuda.get_device_name(i)} "
                   f"({torch.cuda.get_device_properties(i).total_memory / GIB:.0f} GiB)"
                   for i in range(torch.cuda.device_count())]
        return [CheckResult("cuda", "ok", f"CUDA {torch.version.cuda}: {'; '.join(devices)}",
                            data={"available": True, "devices": devices})]
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build of torch"
    data = {"available": False, "devices": [], "torch_cuda": torch.version.cuda}
    demanded = _needs_cuda(ctx)
    if demanded:
        return [CheckResult("cuda", "missing", f"not available ({build}); needed by "
                            f"{', '.join(demanded)}", "run on a CUDA machine with a CUDA build of "
                            "torch, or set those to 'auto' / 'gloo'", data)]
    return [CheckResult("cuda", "ok", f"not available ({build}): everything runs on the CPU",
                        data=data)]


def _optimizers(ctx: DoctorContext) -> dict[str, str]:
    """Every configured optimizer: dotted path -> registry name."""
    return {path: value["name"] for path, key, value, _ in walk(ctx.resolved())
            if key == "optimizer" and isinstance(value, dict) and "name" in value}


@register_check("apex")
def check_apex(ctx: DoctorContext) -> list[CheckResult]:
    """NVIDIA apex: present or not; missing only when an optimizer is apex_fused_adam."""
    try:
        import apex.optimizers  # noqa: F401
        present = True
    except Exception:  # noqa: BLE001 -- any import failure means "not usable"
        present = False
    needed = [p for p, name in _optimizers(ctx).items() if name == "apex_fused_adam"]
    data = {"present": present, "needed_by": needed}
    if present:
        return [CheckResult("apex", "ok", "apex.optimizers importable", data=data)]
    if needed:
        from kimi_pipeline.training.optim import APEX_MISSING

        return [CheckResult("apex", "missing", f"not importable; needed by {', '.join(needed)}",
                            APEX_MISSING, data)]
    return [CheckResult("apex", "ok", "not installed (no optimizer is apex_fused_adam)",
                        data=data)]


# ------------------------------------------------------------------------------ DeepSpeed


def _engines(ctx: DoctorContext) -> dict[str, dict[str, Any]]:
    """Every configured DeepSpeed engine section: dotted path -> its settings."""
    return {path: value for path, key, value, _ in walk(ctx.resolved())
            if key == "engine" and isinstance(value, dict) and "deepspeed_config" in value}


def _deepspeed_json(ctx: DoctorContext, engine: dict[str, Any]) -> dict[str, Any]:
    """The engine's DeepSpeed JSON (OSError / ValueError when absent or malformed)."""
    path = Path(engine["deepspeed_config"])
    return json.loads((path if path.is_absolute() else ctx.project_path / path).read_text())


def _needed_ops(ctx: DoctorContext) -> dict[str, list[str]]:
    """DeepSpeed ops the configuration will build: op name -> the settings that need it."""
    needed: dict[str, list[str]] = {}
    for path, name in _optimizers(ctx).items():
        if name == "deepspeed_fused_adam":
            needed.setdefault("fused_adam", []).append(path)
    for path, engine in _engines(ctx).items():
        try:
            zero = _deepspeed_json(ctx, engine).get("zero_optimization") or {}
        except (OSError, ValueError):
            continue  # reported by the deepspeed_config check
        if (zero.get("offload_optimizer") or {}).get("device") in ("cpu", "nvme"):
            needed.setdefault("cpu_adam", []).append(path)
    return needed


def _op_table() -> tuple[str, dict[str, bool], dict[str, bool]]:
    """(accelerator, op -> prebuilt, op -> JIT-compatible) from DeepSpeed's op builders, as
    ``ds_report`` reads them; DeepSpeed's import chatter goes to stderr."""
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        from deepspeed.accelerator import get_accelerator
        from deepspeed.git_version_info import accelerator_name, installed_ops
        from deepspeed.ops.op_builder.all_ops import ALL_OPS

        accelerator = get_accelerator()._name
        prebuilt = {name: bool(installed_ops.get(name)) and accelerator_name == accelerator
                    for name in ALL_OPS}
        compatible = {name: _compatible(builder) for name, builder in ALL_OPS.items()}
    placeholder = "deepspeed_not_implemented"  # DeepSpeed's stand-in builder, not an op
    prebuilt.pop(placeholder, None)
    compatible.pop(placeholder, None)
    return accelerator, prebuilt, compatible


def _compatible(builder: Any) -> bool:
    try:
        return bool(builder.is_compatible(verbose=False))
    except Exception:  # noqa: BLE001 -- a probe that fails means "cannot build" (as ds_report)
        return False


@register_check("deepspeed_ops")
def check_deepspeed_ops(ctx: DoctorContext) -> list[CheckResult]:
    """DeepSpeed's C++/CUDA ops: prebuilt, JIT-buildable (needs ninja), and the ones the
    configured optimizer / ZeRO-Offload will build."""
    from torch.utils.cpp_extension import is_ninja_available

    accelerator, prebuilt, compatible = _op_table()
    ninja = is_ninja_available()
    needed = _needed_ops(ctx)
    unusable = {op: paths for op, paths in needed.items()
                if not prebuilt.get(op) and not (compatible.get(op) and ninja)}
    data = {"accelerator": accelerator, "ninja": ninja, "prebuilt": prebuilt,
            "compatible": compatible, "needed": needed}
    detail = (f"accelerator '{accelerator}'; ninja {'yes' if ninja else 'no'}; prebuilt: "
              f"{', '.join(o for o, y in prebuilt.items() if y) or 'none'}; JIT-compatible: "
              f"{', '.join(o for o, y in compatible.items() if y) or 'none'}; needed: "
              f"{', '.join(needed) or 'none (torch optimizers)'}")
    if unusable:
        users = ", ".join(p for paths in unusable.values() for p in paths)
        return [CheckResult("deepspeed_ops", "missing",
                            f"{detail}; cannot build {', '.join(unusable)}",
                            f"pip install ninja (and a C++/CUDA toolchain for this accelerator), "
                            f"or choose optimizer 'adamw' in {users}", data)]
    return [CheckResult("deepspeed_ops", "ok", detail, data=data)]


@register_check("deepspeed_config")
def check_deepspeed_config(ctx: DoctorContext) -> list[CheckResult]:
    """Each engine's DeepSpeed JSON exists and its process count fits the machine."""
    return [_engine_row(ctx, path, engine) for path, engine in _engines(ctx).items()]


def _engine_row(ctx: DoctorContext, path: str, engine: dict[str, Any]) -> CheckResult:
    import torch

    name = f"deepspeed:{path}"
    try:
        ds = _deepspeed_json(ctx, engine)
    except (OSError, ValueError) as exc:
        return CheckResult(name, "missing", f"{engine['deepspeed_config']}: {exc}",
                           f"create it or point {_where(ctx, path + '.deepspeed_config')} "
                           "at a DeepSpeed JSON (conf/base/deepspeed/ has ZeRO 0-3)")
    stage = engine.get("zero_stage")
    stage = (ds.get("zero_optimization") or {}).get("stage", 0) if stage is None else stage
    half = [k for k in ("bf16", "fp16") if (ds.get(k) or {}).get("enabled")] or ["fp32"]
    procs = engine.get("num_processes", 1)
    detail = (f"{engine['deepspeed_config']}: ZeRO {stage}, {half[0]}, {procs} process(es) x "
              f"{engine.get('num_nodes', 1)} node(s)")
    data = {"file": engine["deepspeed_config"], "zero_stage": stage, "precision": half[0],
            "num_processes": procs}
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus and procs > gpus:
        return CheckResult(name, "missing", f"{detail}; only {gpus} GPU(s) here",
                           f"set {path}.num_processes to {gpus} (the gpu env reads "
                           "KIMI_GPUS_PER_NODE)", data)
    if not gpus and half[0] != "fp32":
        return CheckResult(name, "warn", f"{detail}; no CUDA here",
                           "use a fp32 config (conf/base/deepspeed/) on the CPU", data)
    if not gpus and procs > usable_cores():
        return CheckResult(name, "warn", f"{detail}; {usable_cores()} usable cores",
                           f"lower {path}.num_processes to at most {usable_cores()}", data)
    return CheckResult(name, "ok", detail, data=data)


# ------------------------------------------------------------------------------ policy checkpoint



@register_check("policy")
def check_policy(ctx: DoctorContext) -> list[CheckResult]:
    """The initial policy checkpoint of base_model.source is there, and its size."""
    config = ctx.stages.get("base_model")
    counted = policy_parameters(ctx)
    if config is None:
        return [CheckResult("policy", "warn", "base_model parameters do not validate",
                            "fix the config row first")]
    if isinstance(counted, FileNotFoundError):
        return [CheckResult("policy", "missing", str(counted),
                            POLICY_SOURCES[config.source].fix(config), {"source": config.source})]
    count, how, where = counted
    return [CheckResult("policy", "ok", f"source '{config.source}': {where}; "
                        f"{count / 1e6:.1f}M parameters ({how})",
                        data={"source": config.source, "parameters": count, "where": where})]


# ------------------------------------------------------------------------------ MCP servers


@register_check("mcp")
def check_mcp(ctx: DoctorContext) -> list[CheckResult]:
    """Start each configured MCP server over stdio (the tool_repo harvester's client) and list
    its tools, every wait capped at the doctor's timeout."""
    config = ctx.stages.get("tool_repo")
    if config is None:
        return [CheckResult("mcp", "warn", "tool_repo parameters do not validate",
                            "fix the config row first")]
    if not config.mcp_servers:
        return [CheckResult("mcp", "ok", "no MCP servers configured (tool_repo.mcp_servers)")]
    from kimi_pipeline.tools.mcp_harvest import harvest_servers

    capped = [server.model_copy(update={
        "startup_timeout_s": min(server.startup_timeout_s, ctx.timeout_s),
        "call_timeout_s": min(server.call_timeout_s, ctx.timeout_s)})
        for server in config.mcp_servers]
    harvest = harvest_servers(capped)
    names: dict[str, list[str]] = {}
    for tool in harvest.tools:
        names.setdefault(tool.server, []).append(str(tool.raw.get("name")))
    return [_mcp_row(ctx, i, report, names.get(report.name, []), config.require_all_sources)
            for i, report in enumerate(harvest.servers)]


def _mcp_row(ctx: DoctorContext, index: int, report: Any, tools: list[str],
             required: bool) -> CheckResult:
    command = " ".join(report.command)
    data = {"command": report.command, "ok": report.ok, "tools": tools,
            "seconds": report.seconds, "error": report.error}
    if report.ok:
        shown = ", ".join(tools[:8]) + (", …" if len(tools) > 8 else "")
        return CheckResult(f"mcp:{report.name}", "ok",
                           f"`{command}`: {report.server_info or 'server'} listed "
                           f"{len(tools)} tools in {report.seconds:.1f} s ({shown})", data=data)
    consequence = ("the run stops (require_all_sources: true)" if required
                   else "a run goes on without its tools")
    return CheckResult(f"mcp:{report.name}", "missing", f"`{command}` failed: {report.error}",
                       f"install the server or correct "
                       f"{_where(ctx, f'tool_repo.mcp_servers[{index}].command')}, or remove it; "
                       f"as it is, {consequence}", data)


# ------------------------------------------------------------------------------ LLM endpoints


def _openai_backends(ctx: DoctorContext) -> dict[tuple[str, str, str], list[str]]:
    """(base_url, model, api_key_env) -> the settings using it, for every 'openai' backend."""
    from kimi_pipeline.llm.openai_backend import DEFAULT_BASE_URL

    groups: dict[tuple[str, str, str], list[str]] = {}
    for path, _, value, _ in walk(ctx.resolved()):
        if isinstance(value, dict) and value.get("kind") == "openai":
            base = str(value.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
            key = (base, str(value.get("model")), str(value.get("api_key_env", "OPENAI_API_KEY")))
            groups.setdefault(key, []).append(path)
    return groups


@register_check("llm_endpoint")
def check_llm_endpoint(ctx: DoctorContext) -> list[CheckResult]:
    """Every OpenAI-compatible endpoint the configuration names: reachable, model listed."""
    groups = _openai_backends(ctx)
    if not groups:
        return [CheckResult("llm_endpoint", "ok",
                            "no 'openai' backend configured (LLM roles are offline or hf)")]
    return [_probe_endpoint(base, model, key_env, paths, ctx.timeout_s)
            for (base, model, key_env), paths in groups.items()]


def _probe_endpoint(base: str, model: str, key_env: str, paths: list[str],
                    timeout_s: float) -> CheckResult:
    """GET {base}/models with the configured key: reachable? authorised? model listed?"""
    import httpx

    name, users = f"endpoint:{paths[0]}", ", ".join(paths)
    key = os.environ.get(key_env)
    data = {"base_url": base, "model": model, "used_by": paths, "key_set": bool(key)}
    try:
        reply = httpx.get(f"{base}/models", timeout=timeout_s,
                          headers={"Authorization": f"Bearer {key}"} if key else {})
    except httpx.HTTPError as exc:
        return CheckResult(name, "missing", f"{base} unreachable ({type(exc).__name__}: "
                           f"{exc}); used by {users}", f"start the endpoint (e.g. `python -m "
                           f"kimi_pipeline.llm.server --port N`) or point base_url of {users} at "
                           "a running one (or kind: offline)", data)
    if reply.status_code in (401, 403):
        return CheckResult(name, "missing", f"{base} refused GET /models (HTTP "
                           f"{reply.status_code}); used by {users}",
                           f"export {key_env}=<your key> (api_key_env names the variable)", data)
    try:
        listed = [str(m.get("id")) for m in reply.raise_for_status().json().get("data", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        return CheckResult(name, "warn", f"{base} answered GET /models with {exc}",
                           "check that base_url ends with the API root (…/v1)", data)
    data["listed"] = listed
    if model in listed:
        return CheckResult(name, "ok", f"{base}: model '{model}' listed; used by {users}",
                           data=data)
    return CheckResult(name, "warn", f"{base} is up but does not list '{model}' (it lists "
                       f"{', '.join(listed[:8]) or 'nothing'}); used by {users}",
                       f"set model of {users} to a listed name", data)


# ------------------------------------------------------------------------------ tracking


TrackingProbe = Callable[[DoctorContext, str], CheckResult]
TRACKING_PROBES: dict[str, TrackingProbe] = {}
register_tracking = registrar(TRACKING_PROBES)
_TRACKING_FIX = ("set MLFLOW_TRACKING_URI, or server.mlflow_tracking_uri in "
                 "conf/local/mlflow.yml, to a store this machine can reach")


@register_check("tracking")
def check_tracking(ctx: DoctorContext) -> list[CheckResult]:
    """The MLflow tracking URI from mlflow.yml, probed by its scheme."""
    uri = str((ctx.mlflow.get("server") or {}).get("mlflow_tracking_uri") or "mlruns")
    probe = TRACKING_PROBES.get(urlparse(uri).scheme)
    if probe is None:
        return [CheckResult("tracking", "warn", f"{uri}: scheme not checked by the doctor",
                            "make sure the run can log there", {"uri": uri})]
    return [probe(ctx, uri)]


@register_tracking("sqlite")
def _sqlite_store(ctx: DoctorContext, uri: str) -> CheckResult:
    return _local_store(ctx, uri, Path(uri.removeprefix("sqlite:///")))


@register_tracking("")
@register_tracking("file")
def _file_store(ctx: DoctorContext, uri: str) -> CheckResult:
    return _local_store(ctx, uri, Path(urlparse(uri).path or uri))


def _local_store(ctx: DoctorContext, uri: str, path: Path) -> CheckResult:
    path = path if path.is_absolute() else ctx.project_path / path
    data = {"uri": uri, "path": str(path), "exists": path.exists()}
    if path.exists():
        return CheckResult("tracking", "ok", f"{uri} ({path} exists)", data=data)
    parent = next(p for p in [path.parent, *path.parents] if p.exists())
    if os.access(parent, os.W_OK):
        return CheckResult("tracking", "ok", f"{uri} ({path} is created by the first run)",
                           data=data)
    return CheckResult("tracking", "missing", f"{uri}: {parent} is not writable",
                       _TRACKING_FIX, data)


@register_tracking("http")
@register_tracking("https")
def _server_store(ctx: DoctorContext, uri: str) -> CheckResult:
    import httpx

    try:
        reply = httpx.get(uri.rstrip("/") + "/health", timeout=ctx.timeout_s)
        reply.raise_for_status()
    except httpx.HTTPError as exc:
        return CheckResult("tracking", "missing", f"{uri}: /health failed "
                           f"({type(exc).__name__}: {exc})", f"start the tracking server, or "
                           f"{_TRACKING_FIX}", {"uri": uri})
    return CheckResult("tracking", "ok", f"{uri} (server healthy)", data={"uri": uri})


# ------------------------------------------------------------------------------ disk and memory


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB" if n >= GIB / 10 else f"{n / 2**20:.1f} MiB"


@register_check("disk")
def check_disk(ctx: DoctorContext) -> list[CheckResult]:
    """Free disk where the data folder lives, against the estimated need of one full run."""
    needs = run_needs(ctx)
    data_dir = ctx.project_path / "data"
    where = next(p for p in [data_dir, *data_dir.parents] if p.exists())
    free = shutil.disk_usage(where).free
    if needs is None:
        return [CheckResult("disk", "warn", f"{_gib(free)} free at {where}; need unknown",
                            "see the policy row", {"free": free})]
    need, formula = needs[0]["disk"], needs[1]
    data = {"free": free, "need": need, "path": str(where), "formula": formula}
    detail = f"{_gib(free)} free at {where}; a full run needs ≈{_gib(need)} ({formula})"
    if free < need:
        return [CheckResult("disk", "missing", detail, f"free {_gib(need - free)} there, or "
                            "lower keep_checkpoints / choose a smaller base_model", data)]
    if free < 2 * need:
        return [CheckResult("disk", "warn", detail, "room for one run only: versions "
                            "accumulate; delete old ones under data/06_models", data)]
    return [CheckResult("disk", "ok", detail, data=data)]


@register_check("memory")
def check_memory(ctx: DoctorContext) -> list[CheckResult]:
    """Total and available memory against the estimated training footprint."""
    import psutil

    memory = psutil.virtual_memory()
    needs = run_needs(ctx)
    if needs is None:
        return [CheckResult("memory", "warn", f"{_gib(memory.available)} available of "
                            f"{_gib(memory.total)}; need unknown", "see the policy row")]
    need = needs[0]["memory"]
    data = {"total": memory.total, "available": memory.available, "need": need}
    detail = (f"{_gib(memory.available)} available of {_gib(memory.total)}; training needs "
              f"≈{_gib(need)} (P={policy_parameters(ctx)[0] / 1e6:.1f}M parameters x "
              f"{RAM_BYTES_PER_PARAM} B + 1 GiB)")
    if memory.total < need:
        return [CheckResult("memory", "missing", detail, "a machine with more memory, or a "
                            "smaller base_model", data)]
    if memory.available < need:
        return [CheckResult("memory", "warn", detail, "close other processes first", data)]
    return [CheckResult("memory", "ok", detail, data=data)]
