"""Score model folders on the first tool call of held-out SFT examples (``agents/first_calls.py``).

A minute per model on 2 cores (48 calls, SmolLM2-135M, fp32), against ~2.5 min per model for the sft
stage's episode evaluation, and steadier: use it to compare SFT settings, then confirm with
``kedro run --pipeline=sft``. Each ``--model`` is ``name=folder``; the default compares the
newest ``base_model`` and ``sft_model`` of the catalog on the newest ``sft_dataset``.

    python scripts/first_calls.py                      # base_model vs sft_model, 48 calls
    python scripts/first_calls.py --model a=data/06_models/sft_runs/<run>/final --n 96
    python scripts/first_calls.py --enforcer           # calls decoded under the enforcer
"""

from __future__ import annotations

import argparse
import glob
import json

import polars as pl

from kimi_pipeline.agents.first_calls import first_call_cases, score_first_calls
from kimi_pipeline.llm.base import HFBackendConfig, make_backend


def newest(pattern: str) -> str:
    found = sorted(glob.glob(pattern))
    if not found:
        raise SystemExit(f"nothing matches {pattern}: run `kedro run --pipeline=sft` first")
    return found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", default=[], help="name=model folder")
    parser.add_argument("--n", type=int, default=48, help="validation calls scored")
    parser.add_argument("--dtype", default="auto", help="auto | float32 | bfloat16")
    parser.add_argument("--processes", type=int, default=2, help="sampling processes (CPU)")
    parser.add_argument("--enforcer", action="store_true",
                        help="decode calls under the tool-call enforcer (llm/enforcer.py)")
    args = parser.parse_args()
    models = dict(m.split("=", 1) for m in args.model) or {
        "base_model": newest("data/06_models/base_model/*/base_model"),
        "sft_model": newest("data/06_models/sft_model/*/sft_model"),
    }
    dataset = pl.read_parquet(newest("data/05_model_input/sft_dataset.parquet/*/*.parquet"))
    cases = first_call_cases(dataset, args.n)
    for name, folder in models.items():
        backend = make_backend(HFBackendConfig(
            kind="hf", model_path=folder, dtype=args.dtype, max_batch_size=max(len(cases), 1),
            cpu_threads=1, cpu_processes=args.processes, tool_call_enforcer=args.enforcer))
        summary, _ = score_first_calls(backend, cases)
        print(json.dumps({"model": name, **summary}))


if __name__ == "__main__":
    main()
