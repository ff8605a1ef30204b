"""Run a training job in its own processes: the run spec, the launcher, and the worker entry point.

The Kedro node never trains in its own process. It writes a ``RunSpec`` (JSON: where the
initial model, tokenizer and packed data are, every config, the run folder) and starts
``python -m kimi_pipeline.training.launch SPEC`` — one process directly, or the DeepSpeed
launcher for several processes or nodes (hostfile from config) — then reads the result
folder back. The DAG is the same at every scale, a crash of a worker never takes the Kedro
session with it, and the allocator settings that matter for speed (measured on 2 CPU cores:
glibc returning freed tensor memory every step cost ≈30%) are set before the workers start.

The worker (``main``) initialises the process group, loads the model the same way for our
small model and a real checkpoint, builds the optimizer and LR schedule, wraps them in a
DeepSpeed engine, resumes from the newest checkpoint of the run folder if there is one, trains,
and writes ``final/`` (a ``save_pretrained`` folder with the tokenizer) and ``result.json``.
Once a run has finished, ``launch`` deletes its ``checkpoints/``: they exist to resume an
unfinished run, a finished one is reused from ``final/``, and with optimizer state they weigh
3× the model each (SmolLM2-135M trained whole: 1.6 GB per checkpoint; a full disk is the crash
they would otherwise cause sooner or later).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.procs import supervised
from kimi_pipeline.training.engine import EngineConfig
from kimi_pipeline.training.loop import TrainConfig
from kimi_pipeline.training.optim import OptimizerConfig

# measured ≈30% of SFT speed on CPU: stop glibc from returning (and re-faulting) freed tensor
# memory every step
ALLOCATOR_ENV = {
    "MALLOC_MMAP_THRESHOLD_": "8589934592",
    "MALLOC_TRIM_THRESHOLD_": "8589934592",
    "MALLOC_TOP_PAD_": "1073741824",
}


class RunSpec(BaseModel):
    """Everything a training worker needs, written by the node as ``spec.json``."""

    model_config = ConfigDict(extra="forbid")

    run_dir: str = Field(description="Folder of this run: checkpoints, metrics, final model.")
    initial_model: str = Field(description="save_pretrained folder the weights start from.")
    tokenizer: str = Field(description="Tokenizer folder saved with the final model.")
    train_data: str = Field(description="Packed training rows (torch.save of tensors).")
    validation_data: str | None = Field(None, description="Packed validation rows.")
    attn_implementation: str = Field("sdpa_max_logit", description="Attention kernel to load.")
    context_tokens: float = Field(
        description="Mean tokens an attention query sees (mean example length): FLOP count."
    )
    train: TrainConfig
    optimizer: OptimizerConfig
    deepspeed: dict[str, Any] = Field(description="DeepSpeed JSON config before our keys.")
    mlflow_run: dict[str, str] | None = Field(
        None, description="{'tracking_uri', 'run_id'} to log per-step metrics live."
    )
    progress: bool = Field(True, description="Show a progress bar on rank 0.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_env(engine: EngineConfig, cuda: bool) -> dict[str, str]:
    env = {**os.environ, **ALLOCATOR_ENV}
    if not cuda:
        env["DS_ACCELERATOR"] = "cpu"
        # DeepSpeed's Muon compiles its kernel per matrix shape; on CPU that costs a minute
        # or more and never pays back at the sizes a CPU trains, so it runs eagerly
        env.setdefault("TORCHDYNAMO_DISABLE", "1")
        cores = os.cpu_count() or 1
        env.setdefault("OMP_NUM_THREADS", str(max(1, cores // engine.num_processes)))
    return env


def command(spec_path: Path, engine: EngineConfig, port: int,
            module: str = "kimi_pipeline.training.launch") -> list[str]:
    """The worker command: ``module`` (its ``main(spec)`` is the worker) directly for one
    process, else under the DeepSpeed launcher."""
    entry = ["-m", module, str(spec_path)]
    if engine.world_size == 1:
        return [sys.executable, *entry]
    launcher = [sys.executable, "-m", "deepspeed.launcher.runner",
                "--num_gpus", str(engine.num_processes), "--num_nodes", str(engine.num_nodes),
                "--master_port", str(port), "--no_local_rank", *engine.launcher_args]
    if engine.hostfile:
        launcher += ["--hostfile", engine.hostfile]
    return [*launcher, "--module", *entry[1:]]


def _relay_stderr(stream, tail: deque[bytes]) -> None:
    """Copy the workers' stderr to ours as it comes (progress bars redraw in place) and keep
    its last chunks."""
    out = getattr(sys.stderr, "buffer", None)
    for chunk in iter(lambda: stream.read1(4096), b""):
        if out is not None:
            out.write(chunk)
        else:
            sys.stderr.write(chunk.decode(errors="replace"))
        sys.stderr.flush()
        tail.append(chunk)


def _last_lines(data: bytes, count: int) -> str:
    """The last ``count`` non-empty lines of a stderr capture, progress-bar redraws dropped."""
    lines = [line.rsplit("\r", 1)[-1] for line in data.decode(errors="replace").split("\n")]
    return "\n".join([line for line in lines if line.strip()][-count:])


def launch(spec: BaseModel, engine: EngineConfig, log_name: str = "train.log",
           module: str = "kimi_pipeline.training.launch") -> dict[str, Any]:
    """Start the workers of ``module`` on ``spec`` (a spec with a ``run_dir``: SFT's
    ``RunSpec``, RL's ``RLSpec``), wait, and return ``result.json`` (raises on failure)."""
    import torch

    run_dir = Path(spec.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_path = run_dir / "spec.json"
    spec_path.write_text(spec.model_dump_json(indent=2))
    port = engine.master_port or free_port()
    env = worker_env(engine, torch.cuda.is_available())
    if engine.world_size == 1:
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1",
                   LOCAL_RANK="0")
    log_path = run_dir / log_name
    (run_dir / "result.json").unlink(missing_ok=True)
    with log_path.open("a") as log:
        # stdout goes to the log; stderr (progress bars, warnings, a crash's traceback) stays on
        # the terminal and its tail is kept for the error message
        # supervised: the workers (the launcher's too) die with this process, even on SIGKILL
        proc = subprocess.Popen(supervised(command(spec_path, engine, port, module)), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr_tail: deque[bytes] = deque(maxlen=64)
        relay = threading.Thread(target=_relay_stderr, args=(proc.stderr, stderr_tail),
                                 daemon=True)
        relay.start()
        for line in proc.stdout:
            log.write(line.decode(errors="replace"))
        code = proc.wait()
        relay.join(timeout=5)
    result_path = run_dir / "result.json"
    if code != 0 or not result_path.exists():
        tail = "".join(log_path.read_text().splitlines(keepends=True)[-30:])
        errors = _last_lines(b"".join(stderr_tail), 30)
        raise RuntimeError(f"training workers failed (exit code {code}); log {log_path}:\n{tail}"
                           + (f"\nstderr of the workers:\n{errors}" if errors else ""))
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)  # finished: final/ is the model
    return json.loads(result_path.read_text())


def main(spec_path: str) -> None:
    """Worker entry point (one per process)."""
    import torch

    from kimi_pipeline.training import engine as ds_engine
    from kimi_pipeline.training.adapters import attach_lora, merge_lora
    from kimi_pipeline.training.loop import (
        MetricsSink, Trainer, autocast_dtype, freeze_below, schedule, seed_everything, total_steps,
    )
    from kimi_pipeline.training.model import flops_per_token, load_model, measure_peak_flops
    from kimi_pipeline.model_folder import replace_folder
    from kimi_pipeline.training.optim import prepare_optimizer
    from kimi_pipeline.training.tokenizer import load_tokenizer

    spec = RunSpec.model_validate_json(Path(spec_path).read_text())
    run_dir = Path(spec.run_dir)
    ds_engine.init_distributed()
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    seed_everything(spec.train.seed)
    tokenizer = load_tokenizer(spec.tokenizer)
    model = load_model(spec.initial_model, spec.attn_implementation)
    train = torch.load(spec.train_data)
    validation = torch.load(spec.validation_data) if spec.validation_data else None
    steps = total_steps(spec.train, len(train["input_ids"]), world)
    trainable = freeze_below(model, spec.train.trainable_layers)
    lora = spec.train.lora
    # before ZeRO-3 partitions the weights
    flops = flops_per_token(model, spec.context_tokens, adapters=lora is not None)
    if lora is not None:
        model = attach_lora(model, lora)
        trainable, _ = model.get_nb_trainable_parameters()
    setup = prepare_optimizer(model, spec.optimizer, ds_engine.zero_stage(spec.deepspeed))
    config = ds_engine.resolve_deepspeed_config(
        spec.deepspeed, spec.train.micro_batch_size, spec.train.accumulation,
        spec.train.max_grad_norm, setup.ds_config,
    )
    engine, lr_scheduler = ds_engine.initialize(
        model, config, setup.optimizer, setup.model_parameters, schedule(spec.train, steps)
    )
    # the MFU denominator is the peak of the dtype the matmuls run in
    bf16 = config.get("bf16", {}).get("enabled", False)
    matmul_dtype = torch.bfloat16 if bf16 else autocast_dtype(spec.train, engine.device)
    on_gpu = engine.device.type == "cuda"
    peak = measure_peak_flops(matmul_dtype, device=str(engine.device) if on_gpu else "cpu")
    trainer = Trainer(engine, lr_scheduler, spec.train, train, validation, steps, run_dir,
                      MetricsSink(run_dir / "metrics.jsonl", spec.mlflow_run),
                      flops, peak, spec.optimizer.lr, tokenizer.pad_token_id, setup.qk_clip)
    trainer.resume()
    summary = trainer.run(progress=spec.progress)
    state = ds_engine.consolidated_state_dict(engine)
    if rank == 0:
        final, staging = run_dir / "final", run_dir / ".final.tmp"
        if lora is None:
            engine.module.save_pretrained(str(staging), state_dict=state)
        else:  # the checkpoint with the adapters merged in: a plain folder for later stages
            initial = load_model(spec.initial_model, spec.attn_implementation)
            merge_lora(initial, lora, state).save_pretrained(str(staging))
        tokenizer.save_pretrained(str(staging))
        replace_folder(staging, final)
        result = {**summary, "world_size": world, "peak_flops": peak,
                  "matmul_dtype": str(matmul_dtype).removeprefix("torch."),
                  "zero_stage": ds_engine.zero_stage(config), "optimizer": setup.describe(),
                  "flops_per_token": flops, "trainable_parameters": trainable,
                  "final_model": str(final)}
        (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
