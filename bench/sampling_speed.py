"""Sampled tokens/s of our sampler (``llm.decode``) against transformers' ``model.generate``.

The gym, the SFT evaluation and RL sample from the policy through ``HFBackend.run_batch``; at
the gym's batch (32 prompts x k=4 samples per call, decoded as 64 rows in each of two
processes; here 150-300-token chat prompts, 128 new tokens, temperature 1.0) ``generate``
decodes ~40-100 tokens/s on 2 CPU cores in fp32. This measures, on the same model, prompts, k,
budget, dtype and torch thread count, per line:

- ``generate-static`` / ``generate-dynamic``: ``model.generate`` (``num_return_sequences=k``,
  pure temperature sampling, stop at the end-of-turn ids) with a static / the default cache;
- ``kimi``: ``Sampler.sample`` (fast Llama path: one prefill per prompt, fused weights,
  in-place cache, finished rows dropped); ``kimi-2proc``: the same, the prompts split over two
  processes of one thread each (``llm.forked``; two cores whatever ``--threads`` says, so
  compare it with the lines at 2 threads); ``kimi-hf``: the same loop through the model's own
  forward (the fallback for other architectures); ``kimi-bf16``: the fast path on a bf16 copy
  (an extra line only: CPUs without AMX / AVX512-BF16 run bf16 far slower than fp32).

Sampled tokens are the tokens each row produced up to and including its stop token, within its
budget (what the gym receives). ``tok/s`` = sampled tokens / wall seconds of the call; ``x gen``
= that rate over ``generate-static``'s rate at the same thread count. Samples differ between
lines (different random streams), so rows stop at different steps; ``--no-stop`` decodes every
row to its budget for an exact like-for-like count. Prefill / decode split: the sampler's own
timers; for ``generate``, prefill is the time of the same call with one new token. Each line
first runs a 4-token warm-up call (allocations, weight fusion), then ``--repeats`` timed calls
(best kept). The machine may be shared: rerun and compare ratios from one run.

    python bench/sampling_speed.py [--model FOLDER] [--prompts 32] [--samples 4]
        [--max-new-tokens 128] [--threads 2] [--dtype float32] [--temperature 1.0]
        [--lines generate-static kimi kimi-2proc] [--repeats 1] [--no-stop]
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from kimi_pipeline.llm.decode import Sampler
from kimi_pipeline.llm.hf_backend import END_OF_TURN

LINES = ("generate-static", "generate-dynamic", "kimi", "kimi-2proc", "kimi-hf", "kimi-bf16")
TOOLS = [
    {"name": "search_orders", "description": "Find a customer's orders by name or date range.",
     "parameters": {"customer": "string", "since": "date (optional)"}},
    {"name": "refund", "description": "Refund an order in full or in part.",
     "parameters": {"order_id": "string", "amount": "number (optional)", "reason": "string"}},
    {"name": "python", "description": "Run a short Python snippet and return its stdout.",
     "parameters": {"code": "string"}},
]
TASKS = [
    "Ana says her order from last Tuesday arrived broken. Find it and refund the broken item.",
    "Compute the sum of the first 200 prime numbers and explain how you checked it.",
    ("A train leaves at 14:05 and arrives at 17:50 after two stops of 12 minutes each. How "
     "long was it actually moving? Show the steps."),
    "Björn wants to know which of his three orders this year were delivered late and why.",
    ("Write a function that returns the longest palindromic substring of a string, test it "
     "on three examples, and report the results."),
    "Solve for x: 3(x - 4) + 2 = 5x - 18. Then check the answer by substitution.",
    ("Omar was charged twice for order 5512. Refund the duplicate charge and tell him when "
     "the money will arrive."),
    ("List the steps to convert 37.5 degrees Celsius to Fahrenheit and give the result to "
     "one decimal place."),
]


def chat_prompts(tokenizer, n: int) -> list[list[int]]:
    """``n`` gym-like prompts: an agent system prompt with tools, a few turns of history for
    some, then the task; ~150-300 tokens each with SmolLM2's template."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        tools = TOOLS[: 1 + i % 3]
        system = ("You are a careful assistant that solves the user's task step by step. You "
                  "can call these tools by writing a JSON object {\"name\": ..., \"arguments\": "
                  "...} on its own line:\n" + "\n".join(json.dumps(t) for t in tools)
                  + "\nThink before you act, call one tool at a time, and wait for its result "
                  "before you call the next one. Never invent results. Answer with the final "
                  "result on the last line.")
        messages = [{"role": "system", "content": system}]
        if i % 2:
            messages += [{"role": "user", "content": "Hello, I have a question."},
                         {"role": "assistant", "content": "Of course, what do you need?"}]
        messages.append({"role": "user", "content": TASKS[rng.randrange(len(TASKS))]})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        out.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return out


def stop_ids(tokenizer, model) -> list[int]:
    vocab = tokenizer.get_vocab()
    ids = {tokenizer.eos_token_id, *[vocab[t] for t in END_OF_TURN if t in vocab]}
    eos = model.generation_config.eos_token_id
    ids |= set(eos if isinstance(eos, list) else [eos])
    return sorted(i for i in ids if isinstance(i, int))


def cut(tokens: list[int], stops: set[int], budget: int) -> int:
    """Tokens a row produced: up to and including its first stop token, within budget."""
    tokens = tokens[:budget]
    return next((i + 1 for i, t in enumerate(tokens) if t in stops), len(tokens))


def left_pad(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        mask[row, width - len(prompt):] = 1
    return ids, mask


def run_generate(model, prompts, args, stops: list[int], cache: str, budget: int) -> dict:
    pad = stops[0] if stops else (model.generation_config.pad_token_id or 0)
    ids, mask = left_pad(prompts, pad)
    sample = args.temperature > 0
    options = {"max_new_tokens": budget, "do_sample": sample,
               "num_return_sequences": args.samples, "eos_token_id": stops or None,
               "pad_token_id": pad, "use_cache": True,
               "cache_implementation": "static" if cache == "static" else None}
    if sample:
        options.update(temperature=args.temperature, top_k=0, top_p=1.0)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, **options)
    seconds = time.perf_counter() - start
    stop_set = set(stops)
    tokens = sum(cut(row, stop_set, budget) for row in out[:, ids.shape[1]:].tolist())
    return {"tokens": tokens, "seconds": seconds, "steps": out.shape[1] - ids.shape[1]}


def time_generate(model, prompts, args, stops, cache: str) -> dict:
    run_generate(model, prompts, args, stops, cache, 4)
    best = min((run_generate(model, prompts, args, stops, cache, args.max_new_tokens)
                for _ in range(args.repeats)), key=lambda r: r["seconds"] / max(r["tokens"], 1))
    prefill = run_generate(model, prompts, args, stops, cache, 1)["seconds"]
    return {**best, "prefill_s": prefill, "decode_s": best["seconds"] - prefill}


def run_kimi(sampler: Sampler, prompts, args, stops: list[int], budget: int) -> dict:
    before = (sampler.stats.prefill_s, sampler.stats.decode_s)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    rows = sampler.sample(prompts, budget, stop_ids=stops, temperature=args.temperature,
                          k=args.samples, generator=generator)
    seconds = time.perf_counter() - start
    return {"tokens": sum(len(r.token_ids) for r in rows), "seconds": seconds,
            "steps": max(len(r.token_ids) for r in rows),
            "prefill_s": sampler.stats.prefill_s - before[0],
            "decode_s": sampler.stats.decode_s - before[1]}


def time_kimi(model, prompts, args, stops, fast: bool = True, processes: int = 1) -> dict:
    sampler = Sampler(model, fast=fast, processes=processes)
    start = time.perf_counter()
    run_kimi(sampler, prompts, args, stops, 4)  # also builds the fused weights once
    warm = time.perf_counter() - start
    best = min((run_kimi(sampler, prompts, args, stops, args.max_new_tokens)
                for _ in range(args.repeats)), key=lambda r: r["seconds"] / max(r["tokens"], 1))
    return {**best, "warmup_s": warm, "path": sampler.path}


def measure(line: str, models: dict, prompts, args, stops) -> dict:
    if line.startswith("generate-"):
        return time_generate(models["main"], prompts, args, stops, line.split("-")[1])
    if line == "kimi-bf16":
        if "bf16" not in models:
            models["bf16"] = AutoModelForCausalLM.from_pretrained(
                args.model, dtype=torch.bfloat16).eval()
        return time_kimi(models["bf16"], prompts, args, stops)
    if line == "kimi-2proc":
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return time_kimi(models["main"], prompts, args, stops, processes=2)
        finally:
            torch.set_num_threads(before)
    return time_kimi(models["main"], prompts, args, stops, fast=line == "kimi")


def newest_base_model() -> str:
    """The newest ``base_model`` version written by ``kedro run --pipeline=sft``."""
    folders = sorted(glob.glob("data/06_models/base_model/*/base_model"))
    if not folders:
        raise SystemExit("no base_model in data/06_models: run `kedro run --pipeline=sft "
                         "--to-nodes=sft.prepare_base_model` first, or pass --model FOLDER")
    return folders[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="save_pretrained folder; default: the "
                        "newest base_model of the catalog (SmolLM2-135M-Instruct on base)")
    parser.add_argument("--prompts", type=int, default=32, help="the gym's call: 32 prompts")
    parser.add_argument("--samples", type=int, default=4, help="k samples per prompt")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[2])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--lines", nargs="+", default=["generate-static", "kimi", "kimi-2proc"],
                        choices=LINES)
    parser.add_argument("--repeats", type=int, default=1, help="timed calls per line (best)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-stop", action="store_true", help="decode every row to budget")
    args = parser.parse_args()
    args.model = args.model or newest_base_model()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    dtype = getattr(torch, args.dtype)
    models = {"main": AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval()}
    prompts = chat_prompts(tokenizer, args.prompts)
    stops = [] if args.no_stop else stop_ids(tokenizer, models["main"])
    print(f"model {args.model} ({args.dtype}), {args.prompts} prompts x k={args.samples}, "
          f"prompt tokens {min(map(len, prompts))}-{max(map(len, prompts))}, "
          f"{args.max_new_tokens} new tokens, T={args.temperature}, "
          f"stops {stops or 'off'}, cpu {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'threads':>7} {'line':18} {'tokens':>6} {'steps':>5} {'seconds':>8} {'tok/s':>7} "
          f"{'x gen':>6} {'prefill s':>9} {'decode s':>8} {'decode tok/s':>12}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        reference = None
        for line in args.lines:
            r = measure(line, models, prompts, args, stops)
            rate = r["tokens"] / r["seconds"]
            reference = rate if line == "generate-static" else reference
            ratio = f"{rate / reference:6.2f}" if reference else f"{'-':>6}"
            print(f"{threads:7d} {line:18} {r['tokens']:6d} {r['steps']:5d} {r['seconds']:8.2f} "
                  f"{rate:7.1f} {ratio} {r['prefill_s']:9.2f} {r['decode_s']:8.2f} "
                  f"{r['tokens'] / max(r['decode_s'], 1e-9):12.1f}", flush=True)


if __name__ == "__main__":
    main()
