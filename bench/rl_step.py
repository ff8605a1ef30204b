"""Seconds per RL step, our loop against TRL's ``GRPOTrainer``: same model, prompts, K, lengths.

Measured. One step = draw P prompts → sample K completions each → rewards → one optimizer
update. Ours is ``PolicyTrainer.iterate()`` of the worker ``rl.loop.build_worker`` builds from an
``RLSpec`` (DeepSpeed ZeRO-0 engine, KV-cached ``llm.decode`` sampler, gym verifier rewards),
timed around the call; its ``rollout_s`` / ``reward_s`` / ``train_s`` are the loop's own timers.
TRL's step is timed by a ``TrainerCallback`` from ``on_step_begin`` to ``on_step_end``; its
rollout is the time in ``GRPOTrainer._generate`` (prompt templating + ``model.generate`` +
decoding), its reward the time in ``_calculate_rewards``, its train the rest of the step
(padding, advantages, forward/backward per micro-batch, clipping, optimizer). The first
``--warmup`` steps of each side are dropped, the next ``--steps`` averaged.

Same for both sides:
* model: ``--model`` folder, ``--smollm`` (the newest SFT model of the catalog,
  ``data/06_models/sft_model/<version>/sft_model``), or by default a tiny Llama
  (hidden 256, 4 layers, 4 heads; ``base_model.save_base_model``, source ``config``, with a
  tokenizer trained on math conversations); loaded fp32 with ``sdpa`` attention, all layers
  trained (``trainable_layers: null``);
* prompts: ``--pool`` math gym tasks of ``--level`` (cheap deterministic verifier), as single
  user turns; P per step (ours: the k1.5 prompt sampler; TRL: its shuffled ``RepeatSampler``);
* K samples per prompt at temperature 1.0 (pure sampling), at most L new tokens, the same stop
  ids (our backend's: eos, the model's ``generation_config`` eos, end-of-turn tokens);
  ``--no-stop`` decodes every row to L on both sides (ours: no stop ids; TRL:
  ``min_new_tokens = L``). Without it rows stop when the model ends its turn: our sampler drops
  finished rows, ``generate`` keeps decoding the batch until its last row ends — the mean
  completion tokens of each side are printed, compare them before comparing times;
* reward: ``get_domain("math").verify`` (ours through the reward router);
* loss: ``--objective grpo`` (default; token-mean clipped surrogate, ε 0.2, group-std
  advantages) against TRL ``loss_type="dapo"`` (the same token-mean aggregation, ``beta=0``: no
  reference model); ``--objective k1.5`` runs our default loss against the same TRL line. π_old
  is the detached log-probs of the update's own forward on both sides (one update per step);
* one optimizer step per P×K completions in ``--micro-batches`` M micro-batches (TRL:
  ``per_device_train_batch_size = P·K/M``, ``gradient_accumulation_steps = M``, so
  ``steps_per_generation = M`` and ``generation_batch_size = P·K``: one generation per step);
  our registry's ``adamw`` (lr 1e-6, constant after one warm-up step) handed to TRL too,
  gradient clipping 1.0; ``--dtype bf16``: our ``train.autocast: bf16``, TRL ``bf16=True``;
* processes: each side in its own subprocess with the workers' environment
  (``launch.worker_env``: ``ALLOCATOR_ENV`` malloc settings, ``DS_ACCELERATOR=cpu``,
  ``TORCHDYNAMO_DISABLE=1``) and ``OMP_NUM_THREADS=--threads``; ours also gets the one-rank
  process-group variables (gloo), TRL not (accelerate would wrap its model in a one-process DDP).
  On a shared 2-core machine use ``--threads 1``: with another process on a core, two threads
  run several times slower on both sides (measured ×13 on the tiny model).

Trained tokens are the real (non-pad) prompt + completion tokens of the step's P×K rows;
train tokens/s = trained tokens / train s; MFU = that × our ``flops_per_token`` ÷ the matmul
peak our worker measured (``trainer.flops_per_token`` / ``peak_flops``), for both sides. These
are model FLOPs (the LM head at every position, as MFU is usually defined): ours computes logits
only at completion positions, so on SmolLM2 (a 28 M-weight head in 135 M) its MFU can read above
100 % — compare the two sides' columns, not either against 100 %. The peak each process
measured is printed as a load check: the machine may be shared, compare ratios from one run.
Prints a table and one ``JSON:`` line (``--json FILE`` also writes it); never asserts.
Install TRL: ``pip install -e '.[bench]'`` (checked with trl 1.16.0, transformers 5.25,
torch 2.13). Run (≈1 minute on the tiny model, ≈3 minutes ``--smollm --steps 1``, one thread)::

    .venv/bin/python bench/rl_step.py [--smollm | --model FOLDER] [--prompts 4] [--samples 4]
        [--max-tokens 64] [--steps 3] [--warmup 1] [--micro-batches 1] [--dtype float32]
        [--objective grpo] [--no-stop] [--threads 2] [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

SFT_GLOB = "data/06_models/sft_model/*/sft_model"
TINY = {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688, "num_layers": 4,
        "num_heads": 4, "num_kv_heads": 4, "max_position_embeddings": 2048}

# --------------------------------------------------------------------------- set-up


def math_tasks(n: int, level: int, seed: int) -> list:
    from kimi_pipeline.gym.registry import get_domain

    return get_domain("math").generate(random.Random(seed), n, level)


def tiny_model(folder: Path, seed: int) -> Path:
    """The tiny Llama, its tokenizer trained on math conversations (all levels)."""
    import polars as pl

    from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model

    tasks = [t for level in (1, 2, 3) for t in math_tasks(300, level, seed + 1000)]
    frame = pl.DataFrame([{
        "example_id": f"ex{i:05d}", "split": "train", "tools": "[]",
        "messages": json.dumps([{"role": "user", "content": t.prompt}, {
            "role": "assistant", "content": f"Working it out step by step, the result is "
                                            f"\\boxed{{{t.answer}}}."}])}
        for i, t in enumerate(tasks)])
    return save_base_model(BaseModelConfig(source="config", from_config=TINY), frame,
                           folder).path


def model_folder(args, runs_dir: Path) -> tuple[Path, str]:
    if args.smollm:
        found = sorted(glob.glob(str(ROOT / SFT_GLOB)))
        if not found:
            sys.exit(f"--smollm: no SFT model under {ROOT / SFT_GLOB}")
        return Path(found[-1]), "SFT model " + os.path.relpath(found[-1], ROOT)
    if args.model:
        return Path(args.model), args.model
    return tiny_model(runs_dir / "tiny_model", args.seed), "tiny Llama (hidden 256, 4 layers)"


def worker_environment(kind: str, threads: int) -> dict[str, str]:
    """``launch.worker_env`` (ALLOCATOR_ENV, DS_ACCELERATOR=cpu, TORCHDYNAMO_DISABLE) for both;
    the process-group variables only for ours: with them accelerate would wrap TRL's model in
    a one-process DDP (an extra graph traversal and all-reduce per step) that a plain run has
    not."""
    from kimi_pipeline.training.engine import EngineConfig
    from kimi_pipeline.training.launch import free_port, worker_env

    env = worker_env(EngineConfig(), cuda=False)
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(var, None)
    if kind == "ours":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
                   WORLD_SIZE="1", LOCAL_RANK="0")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               CUDA_VISIBLE_DEVICES="", PYTHONPATH=os.pathsep.join(filter(None, [
                   str(ROOT / "src"), os.environ.get("PYTHONPATH")])))
    return env


def run_worker(kind: str, spec: dict, folder: Path, threads: int, timeout: float) -> dict:
    path = folder / f"{kind}-spec.json"
    path.write_text(json.dumps(spec))
    log = folder / f"{kind}.log"
    with log.open("w") as handle:
        try:
            code = subprocess.call([sys.executable, __file__, "--worker", kind, str(path)],
                                   env=worker_environment(kind, threads), cwd=ROOT, stdout=handle,
                                   stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            code = "timeout"
    out = folder / f"{kind}-result.json"
    if code == "timeout" and out.exists():  # the steps it finished
        print(f"{kind}: stopped after {timeout:.0f} s (--timeout)", file=sys.stderr)
    elif code != 0 or not out.exists():
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        raise RuntimeError(f"{kind} worker failed ({code}); {log}:\n{tail}")
    return json.loads(out.read_text())


# --------------------------------------------------------------------------- our side


def rl_spec(spec: dict):
    from kimi_pipeline.rl.config import RLConfig
    from kimi_pipeline.rl.loop import RLSpec
    from kimi_pipeline.training.engine import EngineConfig, load_deepspeed_config

    config = RLConfig.model_validate({
        "train": {"iterations": spec["steps"], "samples": spec["samples"],
                  "micro_batches": spec["micro_batches"], "old_logprobs": "trainer",
                  "trainable_layers": None, "seed": spec["seed"],
                  "autocast": "bf16" if spec["dtype"] == "bf16" else "none"},
        "objective": {"name": spec["objective"]},
        "optimizer": {"name": "adamw", "lr": spec["lr"]},
        "engine": {"deepspeed_config": "conf/base/deepspeed/zero0.json"},
        "pool": {"open_prompts": 0},
        "sampler": {"prompts_per_iteration": spec["prompts"], "source_shares": {"verifier": 1.0}},
        "temperature": {"start": 1.0, "end": 1.0},
        "budget": {"max_tokens": {"default": spec["max_tokens"]}, "truncation_penalty": 0.0},
        "ptx": {"weight": 0.0}, "critic": {"refresh_every": 0},
        "runs_dir": spec["dir"], "resume": False, "progress": False, "samples_logged": 0,
    })
    deepspeed = load_deepspeed_config(EngineConfig(deepspeed_config=config.engine.deepspeed_config),
                                      ROOT)
    (Path(spec["dir"]) / "ours").mkdir(parents=True, exist_ok=True)
    return RLSpec(run_dir=str(Path(spec["dir"]) / "ours"), initial_model=spec["model"],
                  prompts=spec["prompts_file"], config=config, deepspeed=deepspeed)


def ours_worker(spec: dict) -> None:
    import torch.distributed as dist

    from kimi_pipeline.rl.loop import build_worker

    trainer = build_worker(rl_spec(spec)).trainer
    stop_ids = list(trainer.backend.stop_ids)  # TRL gets the same
    if spec["no_stop"]:
        trainer.backend.stop_ids = []
    steps = []
    for _ in range(spec["steps"]):
        tick = time.perf_counter()
        metrics = trainer.iterate()
        step_s = time.perf_counter() - tick
        samples = trainer.samples  # one segment each: prompt (mask 0) + response (mask 1)
        tokens = sum(len(seg.token_ids) for s in samples for seg in s.segments)
        completion = sum(s.policy_tokens for s in samples)
        steps.append({"step_s": step_s, "rollout_s": metrics["rollout_s"],
                      "reward_s": metrics["reward_s"], "train_s": metrics["train_s"],
                      "trained_tokens": tokens, "rows": len(samples),
                      "prompt_tokens": tokens - completion, "completion_tokens": completion,
                      "reward": metrics["reward/task"], "loss": metrics["loss"]})
        print(f"step {len(steps)}: {steps[-1]}", flush=True)
        Path(spec["out"]).write_text(json.dumps({  # after every step: a timeout keeps them
            "steps": steps, "flops_per_token": trainer.flops_per_token,
            "peak": trainer.peak_flops, "stop_ids": stop_ids}))
    dist.destroy_process_group()


# --------------------------------------------------------------------------- TRL side


def trl_worker(spec: dict) -> None:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from kimi_pipeline.gym.registry import get_domain
    from kimi_pipeline.records import GymTask
    from kimi_pipeline.training.loop import seed_everything
    from kimi_pipeline.training.model import load_model, measure_peak_flops
    from kimi_pipeline.training.optim import OptimizerConfig, prepare_optimizer
    from kimi_pipeline.training.tokenizer import load_tokenizer

    seed_everything(spec["seed"])
    tokenizer = load_tokenizer(spec["model"])
    model = load_model(spec["model"], "sdpa", dtype=torch.float32)
    model.generation_config.eos_token_id = spec["stop_ids"]  # TRL stops at these + tokenizer eos
    rows = [json.loads(line) for line in Path(spec["prompts_file"]).read_text().splitlines()]
    dataset = Dataset.from_list([{"prompt": r["messages"], "task": json.dumps(r["item"])}
                                 for r in rows])
    math = get_domain("math")

    def verifier(completions, task, **_):
        return [math.verify(GymTask.model_validate_json(t), c[0]["content"]).reward
                for c, t in zip(completions, task, strict=True)]

    setup = prepare_optimizer(model, OptimizerConfig(name="adamw", lr=spec["lr"]), 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(setup.optimizer, lambda s: min(1.0, (s + 1) / 2))
    micro = spec["prompts"] * spec["samples"] // spec["micro_batches"]
    config = GRPOConfig(
        output_dir=spec["dir"], per_device_train_batch_size=micro,
        gradient_accumulation_steps=spec["micro_batches"], num_generations=spec["samples"],
        max_completion_length=spec["max_tokens"], temperature=1.0, top_p=1.0, top_k=0,
        beta=0.0, epsilon=0.2, loss_type="dapo", scale_rewards="group", learning_rate=spec["lr"],
        max_grad_norm=1.0, max_steps=spec["steps"], use_cpu=True, bf16=spec["dtype"] == "bf16",
        fp16=False, gradient_checkpointing=False, use_vllm=False, report_to=[],
        logging_strategy="no", save_strategy="no", eval_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, seed=spec["seed"], log_completions=False,
        generation_kwargs={"min_new_tokens": spec["max_tokens"]} if spec["no_stop"] else None,
    )
    current = {"rollout_s": 0.0, "reward_s": 0.0, "prompt_tokens": 0, "completion_tokens": 0,
               "rows": 0}
    steps: list[dict] = []
    peak = measure_peak_flops(torch.bfloat16 if spec["dtype"] == "bf16" else torch.float32)

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            current.update(dict.fromkeys(current, 0))
            self.tick = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step_s = time.perf_counter() - self.tick
            tokens = current["prompt_tokens"] + current["completion_tokens"]
            steps.append({**current, "step_s": step_s, "trained_tokens": tokens,
                          "train_s": step_s - current["rollout_s"] - current["reward_s"]})
            print(f"step {len(steps)}: {steps[-1]}", flush=True)
            Path(spec["out"]).write_text(json.dumps({"steps": steps, "peak": peak,
                                                     "eos_token_ids": trainer.eos_token_ids}))

    trainer = GRPOTrainer(model=model, reward_funcs=verifier, args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[StepTimer()],
                          optimizers=(setup.optimizer, scheduler))

    def timed(method, key):
        def wrapper(*a, **kw):
            tick = time.perf_counter()
            out = method(*a, **kw)
            current[key] += time.perf_counter() - tick
            if key == "rollout_s":  # prompt_ids, completion_ids, ...
                current["prompt_tokens"] += sum(len(ids) for ids in out[0])
                current["completion_tokens"] += sum(len(ids) for ids in out[1])
                current["rows"] += len(out[1])
            return out
        return wrapper

    trainer._generate = timed(trainer._generate, "rollout_s")
    trainer._calculate_rewards = timed(trainer._calculate_rewards, "reward_s")
    trainer.train()


# --------------------------------------------------------------------------- report


def summarise(raw: dict, warmup: int, flops: float, peak: float) -> dict:
    steps = raw["steps"][warmup:] or raw["steps"][-1:]  # a timed-out side: its warm-up step
    n = max(1, len(steps))

    def mean(key):
        return sum(s[key] for s in steps) / n

    train_s, tokens = sum(s["train_s"] for s in steps), sum(s["trained_tokens"] for s in steps)
    rate = tokens / train_s if train_s else float("nan")
    return {"step_s": mean("step_s"), "rollout_s": mean("rollout_s"),
            "reward_s": mean("reward_s"), "train_s": mean("train_s"),
            "other_s": mean("step_s") - mean("rollout_s") - mean("reward_s") - mean("train_s"),
            "generated_tokens": mean("completion_tokens"),
            "completion_mean": sum(s["completion_tokens"] for s in steps)
            / max(1, sum(s["rows"] for s in steps)),
            "prompt_mean": sum(s["prompt_tokens"] for s in steps)
            / max(1, sum(s["rows"] for s in steps)),
            "rows": mean("rows"), "trained_tokens": mean("trained_tokens"),
            "train_tok_s": rate, "mfu": rate * flops / peak,
            "gen_tok_s": mean("completion_tokens") / max(mean("rollout_s"), 1e-9),
            "peak_measured": raw["peak"], "measured_steps": len(raw["steps"][warmup:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", help="save_pretrained folder (default: the tiny Llama)")
    model.add_argument("--smollm", action="store_true", help="the newest SFT model (SmolLM2)")
    parser.add_argument("--prompts", type=int, default=4, help="P: prompts per step")
    parser.add_argument("--samples", type=int, default=4, help="K: completions per prompt")
    parser.add_argument("--max-tokens", type=int, default=64, help="L: most new tokens")
    parser.add_argument("--steps", type=int, default=3, help="measured steps per side")
    parser.add_argument("--warmup", type=int, default=1, help="steps dropped first")
    parser.add_argument("--micro-batches", type=int, default=1, help="M per optimizer step")
    parser.add_argument("--dtype", choices=["float32", "bf16"], default="float32")
    parser.add_argument("--objective", choices=["grpo", "k1.5"], default="grpo")
    parser.add_argument("--no-stop", action="store_true", help="decode every row to L")
    parser.add_argument("--level", type=int, default=1, choices=[1, 2, 3], help="math level")
    parser.add_argument("--pool", type=int, default=64, help="prompts in the pool")
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600, help="seconds per side at most")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the run folder")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.worker[1]).read_text())
        (ours_worker if args.worker[0] == "ours" else trl_worker)(spec)
        return
    if (args.prompts * args.samples) % args.micro_batches:
        sys.exit("--micro-batches must divide prompts × samples (TRL's micro-batch size)")
    os.chdir(ROOT)
    import torch

    from kimi_pipeline.rl.prompts import gym_prompt

    runs_dir = Path(tempfile.mkdtemp(prefix="rl_step_bench_"))
    path, described = model_folder(args, runs_dir)
    prompts_file = runs_dir / "prompts.jsonl"
    prompts_file.write_text("".join(
        json.dumps(gym_prompt(t, None, None).as_dict()) + "\n"
        for t in math_tasks(args.pool, args.level, args.seed)))
    spec = {"model": str(path), "prompts_file": str(prompts_file), "dir": str(runs_dir),
            "prompts": args.prompts, "samples": args.samples, "max_tokens": args.max_tokens,
            "steps": args.warmup + args.steps, "micro_batches": args.micro_batches,
            "dtype": args.dtype, "objective": args.objective, "no_stop": args.no_stop,
            "lr": args.lr, "seed": args.seed}
    print(f"model: {described}; P {args.prompts} × K {args.samples}, L {args.max_tokens}, "
          f"M {args.micro_batches}; {args.warmup} warm-up + {args.steps} measured steps; "
          f"{args.dtype}; CPU {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads",
          flush=True)
    results = {}
    try:
        for kind in ("ours", "trl"):
            tick = time.perf_counter()
            print(f"… {kind}", file=sys.stderr, flush=True)
            side = {**spec, "out": str(runs_dir / f"{kind}-result.json")}
            if kind == "trl":
                side["stop_ids"] = results["ours"]["stop_ids"]
            results[kind] = run_worker(kind, side, runs_dir, args.threads, args.timeout)
            print(f"  {kind} done in {time.perf_counter() - tick:.0f} s", file=sys.stderr)
    finally:
        if not args.keep:
            shutil.rmtree(runs_dir, ignore_errors=True)
    report(args, results, described)


def report(args, results: dict, described: str) -> None:
    import torch

    flops, peak = results["ours"]["flops_per_token"], results["ours"]["peak"]
    rows = {k: summarise(r, args.warmup, flops, peak) for k, r in results.items()}
    ratio = rows["ours"]["step_s"] / rows["trl"]["step_s"]
    stop = "every row to L (--no-stop)" if args.no_stop else "rows stop at end of turn"
    print(f"\nFLOPs per token {flops / 1e6:.1f} M; MFU against our worker's {args.dtype} matmul "
          f"peak {peak / 1e9:,.0f} GFLOP/s; generation: {stop}; objective ours {args.objective} "
          f"vs TRL dapo (beta 0)")
    header = (f"{'side':<5} {'s/step':>7} {'rollout':>8} {'reward':>7} {'train':>7} {'other':>6} "
              f"{'gen tok':>7} {'compl':>6} {'prompt':>6} {'gen/s':>6} {'trained':>7} "
              f"{'train/s':>8} {'MFU':>6} {'peak GF':>7}")
    print(header + "\n" + "-" * len(header))
    for kind, r in rows.items():
        print(f"{kind:<5} {r['step_s']:>7.2f} {r['rollout_s']:>8.2f} {r['reward_s']:>7.3f} "
              f"{r['train_s']:>7.2f} {r['other_s']:>6.2f} {r['generated_tokens']:>7.0f} "
              f"{r['completion_mean']:>6.1f} {r['prompt_mean']:>6.1f} {r['gen_tok_s']:>6.0f} "
              f"{r['trained_tokens']:>7.0f} {r['train_tok_s']:>8.0f} {r['mfu']:>6.1%} "
              f"{r['peak_measured'] / 1e9:>7,.0f}")
    ours, trl = rows["ours"], rows["trl"]
    print(f"\nours / TRL s/step: {ratio:.2f} (target ≤ 0.7); rollout "
          f"{ours['rollout_s'] / trl['rollout_s']:.2f}, "
          f"train {ours['train_s'] / trl['train_s']:.2f}")
    print("columns: seconds per step (mean of measured steps) and its rollout / reward / train "
          "split ('other': ours outside the three timers, e.g. prompt draw); gen tok = completion "
          "tokens per step, compl / prompt = mean tokens per row; trained = real prompt + "
          "completion tokens per step; train/s = trained / train s")
    command = [".venv/bin/python", "bench/rl_step.py", *sys.argv[1:]]
    print("reproduce: " + shlex.join(command))
    record = {"bench": "rl_step", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "model": described,
              "cpu_capability": torch.backends.cpu.get_cpu_capability(), "dtype": args.dtype,
              "prompts": args.prompts, "samples": args.samples, "max_tokens": args.max_tokens,
              "micro_batches": args.micro_batches, "objective": args.objective,
              "no_stop": args.no_stop, "threads": args.threads, "flops_per_token": flops,
              "peak_flops": peak, "ratio_step_s": ratio, **{k: v for k, v in rows.items()}}
    print("JSON: " + json.dumps(record))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
