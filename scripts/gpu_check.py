"""GPU check of the SFT engine: bf16 ZeRO-2 with each optimizer, tokens/s and MFU per run.

Run on a CUDA machine (never in CI): ``bash scripts/gpu_check.sh``. It trains the same
from-config decoder (default ≈ 0.2 B parameters, or ``--model-path`` for a local checkpoint) on
the newest ``sft_dataset`` of the catalog (or a synthetic tool-use set when there is none) for a
fixed number of steps with every optimizer, through the same ``prepare_run``/``train`` code the
``sft`` stage uses, one DeepSpeed process per GPU, and prints one line per optimizer.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import polars as pl
import torch

from kimi_pipeline.training import sft
from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model

OPTIMIZERS = ["adamw", "deepspeed_fused_adam", "muon", "muonclip", "apex_fused_adam"]


def newest_sft_dataset() -> pl.DataFrame | None:
    versions = sorted(Path("data/05_model_input/sft_dataset.parquet").glob("*/sft_dataset.parquet"))
    return pl.read_parquet(versions[-1]) if versions else None


def synthetic_dataset(n: int = 4000) -> pl.DataFrame:
    tools = [{"type": "function", "function": {
        "name": "lookup_order", "description": "Find an order by id.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"]}}}]
    rows = []
    for i in range(n):
        messages = [
            {"role": "system", "content": "You are an order-desk agent."},
            {"role": "user", "content": f"Where is order o-{i}? " + "Please hurry. " * (i % 40)},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [{
                "id": "c1", "type": "function",
                "function": {"name": "lookup_order", "arguments": {"order_id": f"o-{i}"}}}]},
            {"role": "tool", "tool_call_id": "c1", "name": "lookup_order",
             "content": json.dumps({"order_id": f"o-{i}", "status": "shipped", "eta_days": i % 7})},
            {"role": "assistant", "content": f"Order o-{i} has shipped; it arrives in {i % 7} days."},
        ]
        rows.append({"example_id": f"x{i}", "trajectory_id": f"t{i}", "agent_id": f"a{i % 50}",
                     "split": "validation" if i % 50 == 0 else "train",
                     "messages": json.dumps(messages), "tools": json.dumps(tools),
                     "judge_score": 1.0, "domain": "orders", "persona": "terse"})
    return pl.DataFrame(rows)


def base_model_config(args) -> BaseModelConfig:
    """``--model-path`` as a folder source, else a ≈0.2 B decoder built from config."""
    if args.model_path:
        return BaseModelConfig(source="folder", path=args.model_path, chat_template="own",
                               dtype="bfloat16")
    return BaseModelConfig(source="config", dtype="bfloat16", from_config={
        "vocab_size": 32000, "hidden_size": 1024, "intermediate_size": 2816, "num_layers": 12,
        "num_heads": 16, "num_kv_heads": 16, "max_position_embeddings": args.seq_len})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", default=None, help="Local HF checkpoint (default: build).")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device; this check is for GPU machines", file=sys.stderr)
        return 2
    data = newest_sft_dataset()
    data = data if data is not None else synthetic_dataset()
    base = save_base_model(base_model_config(args), data,
                           Path(tempfile.mkdtemp(prefix="gpu_check_base_")))
    print(f"{'optimizer':24} {'tokens/s':>12} {'MFU':>7} {'final loss':>11} {'peak MB':>9}")
    for name in args.optimizers.split(","):
        if name == "apex_fused_adam" and importlib.util.find_spec("apex") is None:
            print(f"{name:24} skipped: apex is not installed (build it from source to include it)")
            continue
        config = sft.SftConfig.model_validate({
            "train": {"seq_len": args.seq_len, "micro_batch_size": args.micro_batch,
                      "max_steps": args.steps, "epochs": 100, "warmup_steps": 3,
                      "eval_every": args.steps, "checkpoint_every": 10**6},
            "optimizer": {"name": name, "lr": 2e-4},
            "engine": {"deepspeed_config": "conf/gpu/deepspeed/zero2_bf16.json",
                       "num_processes": torch.cuda.device_count()},
            "runs_dir": tempfile.mkdtemp(prefix="gpu_check_"), "resume": False, "progress": False,
        })
        try:
            result = sft.train(sft.prepare_run(data, base, config), config)
        except Exception as exc:  # one optimizer failing must not hide the others' figures
            print(f"{name:24} failed: {exc}".splitlines()[0])
            continue
        steady = result["metrics"][1:] or result["metrics"]
        tps = sum(r["tokens_per_s"] for r in steady) / len(steady)
        mfu = sum(r["mfu"] for r in steady) / len(steady)
        peak = max(r["peak_memory_mb"] for r in result["metrics"])
        print(f"{name:24} {tps:12.0f} {mfu:7.1%} {steady[-1]['loss']:11.4f} {peak:9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
