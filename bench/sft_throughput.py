"""Trained tokens/s of our SFT step against TRL's ``SFTTrainer``: same model, data, batch, run.

Measured. Real (non-padding) tokens trained per second of step time, steady state: the first
``--warmup`` optimizer steps are dropped and the rate is Σ tokens / Σ step seconds over the
next ``--steps``. Step time is forward + backward + clipping + optimizer + LR-scheduler step:
ours is the ``step_s`` the training loop logs per step (``training/loop.py``), TRL's is timed
by a ``TrainerCallback`` from ``on_step_begin`` to ``on_step_end`` (its batch collation and
logging are left out, as our logging is). Tokens are counted the same way on both sides: input
ids that are not the tokenizer's pad id. MFU = tokens/s × FLOPs per token (``training/model.py
flops_per_token``: 6·N plus per-example causal attention) ÷ the matmul peak (``measure_peak_
flops``, fp32, bf16 for ``-bf16`` lines) measured in the line's own process just before it
trains — the load of a shared machine changes by several times within minutes, so a peak
measured once at the start does not describe a run ten minutes later. A ``best¼`` column
(mean rate of the fastest quarter of the steps) is printed beside the mean: it is what each side
reaches when the machine leaves it alone, and its ratio is the steadier one.

Same for both sides:
* model: a tiny Llama (hidden 256, 4 layers, 4 heads, vocab 4096), built once
  by ``base_model.save_base_model`` (source ``config``: ``build_model``, seeded) with the tokenizer it
  trains; TRL loads that same initial folder (``attn_implementation="sdpa"``), fp32;
* data: the ``train`` split of the newest ``sft_dataset`` of the catalog when there is one,
  otherwise a synthetic tool-use set (tools, tool calls as JSON, tool results, follow-ups;
  lengths log-uniform over ~100–1,500 tokens, so a good part is truncated to the row length);
  the same chat template with assistant-only labels (``{% generation %}`` markers: ours through
  ``render_with_mask``, TRL through ``assistant_only_loss=True``); examples longer than the row
  keep their start on both sides;
* rows of ``--seq-len`` 512, ``--batch`` 8 rows per optimizer step, packing on for both.
  Ours: best-fit decreasing packing, position ids restarting per example, attention block
  diagonal (no cross-example attention). TRL ``bfd``: best-fit decreasing too, but without
  FlashAttention on CPU its padding-free collator concatenates the 8 rows into one ~4,000-token
  row — attention cost grows with that length. TRL ``wrapped`` is printed as a second peer line:
  fixed 512-token rows cut across examples, and attention leaks across examples;
* optimizer and schedule: our registry's ``adamw`` (``torch.optim.AdamW``, fused CPU kernel, no
  decay on norms) and our warm-up + cosine ``LambdaLR``, handed to TRL as ``optimizers=``, with
  gradient clipping 1.0; same seed; TRL's own defaults that would differ are switched off
  (``gradient_checkpointing=False``, ``bf16=False`` unless the line says bf16);
* processes: every line runs in its own subprocess with the allocator variables
  (``launch.ALLOCATOR_ENV``) and the same ``OMP_NUM_THREADS`` (``--threads``).

Lines (``--lines``; default all but ``profile``):
``trl-bfd``, ``trl-wrapped``, ``trl-bfd-bf16`` — TRL; ``ours-z2``, ``ours-z0`` … — our real path
(``prepare_run`` + ``train``: DeepSpeed worker, ZeRO stage 0 or 2), ``-nolog`` adds
``train.max_logit_every: 0`` (no max-attention-logit recording), ``-bf16`` adds ``train.autocast:
bf16``; ``loop-z0-nolog`` etc. — a copy of our train step in this file (same DeepSpeed engine and
rows) with time split into batch/forward/backward/grad-norm/optimizer/max-logit read;
``plain-nolog`` — the same step without DeepSpeed (module, torch AdamW, clip_grad_norm_), the
ceiling of the loop on this model; ``profile`` — ``torch.profiler`` over a few steps of
``loop-z0`` with max-logit recording on, top operators by self CPU time.

Loss: mean training loss over the measured steps (and over the last 10) per line. Both sides
start from the same weights with the same schedule; the rows differ (packing differs), so equal
"within noise" means close curves, not equal numbers. The table also prints each side's data
(examples, real tokens, label tokens) to show they trained on the same tokens.

Install TRL (not a project dependency): ``pip install -e '.[bench]'`` or
``.venv/bin/pip install trl accelerate datasets`` — checked with trl 1.16, accelerate 1.15,
datasets 5.2 against transformers 5.24 and torch 2.13 (pip check clean).

Run (≈10 minutes on 2 shared cores; noisy ±25%: compare ratios from one run)::

    .venv/bin/python bench/sft_throughput.py [--steps 30] [--warmup 3] [--lines ...]
        [--examples 700] [--threads 2] [--lr 1e-3] [--data sft_dataset.parquet]

Prints a table; never asserts. ``--keep`` keeps the run folders (in a temp folder otherwise).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
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

DEFAULT_LINES = ["trl-bfd", "ours-z2", "trl-wrapped", "ours-z2-nolog", "ours-z0",
                 "ours-z0-nolog", "loop-z0-nolog", "plain-nolog", "ours-z0-nolog-bf16",
                 "trl-bfd-bf16"]
CATALOG_GLOB = "data/05_model_input/sft_dataset.parquet/*/sft_dataset.parquet"

# --------------------------------------------------------------------------- synthetic data

WORDS = (
    "the order account customer delivery payment refund invoice shipment status address "
    "please check update cancel confirm request available schedule booking flight hotel "
    "weather forecast city price total balance transfer card number date time week month "
    "today tomorrow yesterday report summary details item product stock warehouse support "
    "ticket issue problem resolved pending approved declined because since after before "
    "with without about from into over under between again also only still just already "
    "customer's your our their this that these those will would could should can may might "
    "need want find show list give send make take get look see know think help tell ask "
    "new old first last next previous same other each every some any many more most less "
    "quick small large high low early late open closed active inactive valid invalid "
    "email phone name user manager team region store branch code reference id note"
).split()

DOMAINS = {
    "orders": [("search_orders", ["customer", "status", "limit"]),
               ("get_order", ["order_id"]), ("cancel_order", ["order_id", "reason"]),
               ("refund_order", ["order_id", "amount", "reason"])],
    "travel": [("search_flights", ["origin", "destination", "date"]),
               ("book_flight", ["flight_id", "passenger"]), ("get_weather", ["city", "date"])],
    "banking": [("get_balance", ["account_id"]), ("list_transactions", ["account_id", "since"]),
                ("transfer", ["from_account", "to_account", "amount"])],
    "support": [("search_tickets", ["query", "status"]), ("get_ticket", ["ticket_id"]),
                ("update_ticket", ["ticket_id", "status", "note"]),
                ("escalate", ["ticket_id", "team"])],
}


def _sentence(rng: random.Random, low: int = 5, high: int = 16) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + rng.choice([".", ".", "?", "!"])


def _text(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng) for _ in range(sentences))


def _tools(domain: str, offered: list[tuple[str, list[str]]]) -> list[dict]:
    return [{"type": "function", "function": {
        "name": name, "description": f"{name.replace('_', ' ').capitalize()}.",
        "parameters": {"type": "object",
                       "properties": {p: {"type": "string", "description": p.replace("_", " ")}
                                      for p in params},
                       "required": params[:1]}}} for name, params in offered]


def _value(rng: random.Random, key: str) -> str | int | float:
    if key.endswith("id") or key in ("order_id", "ticket_id"):
        return f"{key[:2]}-{rng.randint(100, 99999)}"
    if key in ("amount", "limit"):
        return round(rng.uniform(1, 900), 2) if key == "amount" else rng.randint(1, 20)
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def _result(rng: random.Random, records: int) -> str:
    keys = rng.sample(WORDS, 4)
    rows = [{k: _value(rng, k) for k in keys} | {"id": f"r-{rng.randint(1, 10**6)}"}
            for _ in range(records)]
    return json.dumps({"results": rows, "count": records})


def synthetic_conversation(rng: random.Random, target_chars: int) -> tuple[list[dict], list]:
    """A tool-use conversation of about ``target_chars`` rendered characters."""
    domain = rng.choice(sorted(DOMAINS))
    offered = DOMAINS[domain]
    if target_chars < 1500:  # short conversations offer one or two tools
        offered = rng.sample(offered, rng.randint(1, 2))
    tools = _tools(domain, offered)
    small = target_chars < 900
    messages = [{"role": "system", "content": f"You are a {domain} assistant."
                 + ("" if small else " " + _text(rng, rng.randint(1, 3)))},
                {"role": "user", "content": _text(rng, 1 if small else rng.randint(1, 3))}]
    size = len(json.dumps(tools)) + sum(len(m["content"]) for m in messages)
    call = 0
    while size < target_chars:
        name, params = rng.choice(offered)
        call += 1
        arguments = json.dumps({p: _value(rng, p) for p in params if rng.random() < 0.8})
        turn = {"role": "assistant", "content": _text(rng, rng.randint(0, 0 if small else 2))
                or None,
                "tool_calls": [{"id": f"c{call}", "type": "function",
                                "function": {"name": name, "arguments": arguments}}]}
        result = _result(rng, 1 if small else rng.randint(1, 4))
        answer = _text(rng, 1 if small else rng.randint(1, 4))
        messages += [turn, {"role": "tool", "tool_call_id": f"c{call}", "name": name,
                            "content": result},
                     {"role": "assistant", "content": answer}]
        size += len(arguments) + len(result) + len(answer) + len(turn["content"] or "") + 60
        if size < target_chars:
            follow = {"role": "user", "content": _text(rng, rng.randint(1, 2))}
            messages.append(follow)
            size += len(follow["content"])
    if messages[-1]["role"] != "assistant":
        messages.append({"role": "assistant", "content": _text(rng, 2)})
    return messages, tools


def synthetic_frame(examples: int, validation: int, seed: int = 0, chars_per_token: float = 3.0):
    """``sft_dataset``-shaped frame: lengths log-uniform over ~100–1,500 tokens."""
    import polars as pl

    rng = random.Random(seed)
    rows = []
    for i in range(examples + validation):
        tokens = math.exp(rng.uniform(math.log(100), math.log(1500)))
        messages, tools = synthetic_conversation(rng, int(tokens * chars_per_token))
        rows.append({"example_id": f"ex{i:05d}", "split": "validation" if i >= examples
                     else "train", "messages": json.dumps(messages), "tools": json.dumps(tools)})
    return pl.DataFrame(rows)


def load_frame(args):
    import polars as pl

    path = args.data
    if path is None:
        found = sorted(glob.glob(str(ROOT / CATALOG_GLOB)))
        path = found[-1] if found else None
    if path:
        frame = pl.read_parquet(path).sort("example_id")
        frame = pl.concat([frame.filter(pl.col("split") == "train").head(args.examples),
                           frame.filter(pl.col("split") == "validation").head(64)])
        return frame, f"{path} (first {args.examples} train examples)"
    return synthetic(args)


def synthetic(args):
    frame = synthetic_frame(args.examples, max(8, args.examples // 20), args.seed)
    return frame, f"synthetic tool-use, {args.examples} train examples (seed {args.seed})"


# --------------------------------------------------------------------------- our side


def sft_config(args, runs_dir: Path, stage: int, max_logit_every: int, autocast: str):
    from kimi_pipeline.training.sft import SftConfig

    return SftConfig.model_validate({
        "train": {"seq_len": args.seq_len, "micro_batch_size": args.batch, "accumulation": 1,
                  "epochs": 50.0, "max_steps": args.warmup + args.steps,
                  "warmup_steps": args.lr_warmup, "eval_every": 10**6, "eval_rows": 8,
                  "checkpoint_every": 10**6, "max_logit_every": max_logit_every,
                  "autocast": autocast, "seed": args.seed},
        "optimizer": {"name": "adamw", "lr": args.lr},
        "engine": {"deepspeed_config": f"conf/base/deepspeed/zero{stage}.json",
                   "num_processes": 1},
        "runs_dir": str(runs_dir), "resume": False, "progress": False,
    })


def base_model(frame, runs_dir: Path):
    """The bench's tiny Llama (hidden 256, 4 layers, vocab 4096) with a tokenizer trained on
    the frame, built once per bench run and shared by every line of ours."""
    from kimi_pipeline.training.base_model import BaseModelConfig, save_base_model

    sizes = {"vocab_size": 4096, "hidden_size": 256, "intermediate_size": 688, "num_layers": 4,
             "num_heads": 4, "num_kv_heads": 4, "max_position_embeddings": 2048}
    return save_base_model(BaseModelConfig(source="config", from_config=sizes), frame,
                           runs_dir / "base_model")


def parse_line(name: str) -> dict:
    parts = name.split("-")
    return {"kind": parts[0],
            "stage": next((int(p[1:]) for p in parts if p[:1] == "z" and p[1:].isdigit()), 0),
            "max_logit_every": 0 if "nolog" in parts else 1,
            "autocast": "bf16" if "bf16" in parts else "none",
            "strategy": "wrapped" if "wrapped" in parts else "bfd"}


def worker_environment() -> dict[str, str]:
    from kimi_pipeline.training.engine import EngineConfig
    from kimi_pipeline.training.launch import free_port, worker_env

    env = worker_env(EngineConfig(), cuda=False)  # allocator vars, DS_ACCELERATOR, OMP threads
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), RANK="0",
               WORLD_SIZE="1", LOCAL_RANK="0")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_ours(args, frame, runs_dir: Path, line: dict) -> dict:
    from kimi_pipeline.training import sft

    config = sft_config(args, runs_dir, line["stage"], line["max_logit_every"], line["autocast"])
    prepared = sft.prepare_run(frame, base_model(frame, runs_dir), config, root=ROOT)
    result = sft.train(prepared, config)
    rows = [r for r in result["metrics"] if "loss" in r]
    measured = rows[args.warmup: args.warmup + args.steps]
    return {"tokens": [r["tokens"] for r in measured], "step_s": [r["step_s"] for r in measured],
            "loss": [r["loss"] for r in measured], "first_loss": rows[0]["loss"],
            "flops_per_token": result["flops_per_token"], "peak": result["peak_flops"],
            "worker_mfu": sum(r["mfu"] for r in measured) / max(1, len(measured)),
            "data": data_stats(prepared), "prepared": prepared}


def data_stats(prepared) -> dict:
    train = prepared.packing["train"]
    return {"examples": train["examples"], "real_tokens": train["real_tokens"],
            "label_tokens": train["label_tokens"], "rows": train["rows"],
            "dropped": train.get("dropped_without_labels", 0)}


# --------------------------------------------------------------------------- TRL side


def run_trl(args, frame, runs_dir: Path, prepared, line: dict) -> dict:
    """Run TRL in its own process (same allocator env and threads as our worker)."""
    folder = runs_dir / f"trl-{line['strategy']}-{line['autocast']}"
    folder.mkdir(parents=True, exist_ok=True)
    train = frame.filter(frame["split"] == "train").sort("example_id")
    data = folder / "train.jsonl"
    with data.open("w") as handle:
        for messages, tools in zip(train["messages"], train["tools"], strict=True):
            messages = messages if isinstance(messages, str) else json.dumps(messages)
            tools = tools if isinstance(tools, str) else json.dumps(tools)
            handle.write(json.dumps({"messages": messages, "tools": tools}) + "\n")
    spec = {"tokenizer": prepared.spec.tokenizer, "initial_model": prepared.spec.initial_model,
            "data": str(data), "out": str(folder / "result.json"), "dir": str(folder),
            "strategy": line["strategy"], "bf16": line["autocast"] == "bf16",
            "train": prepared.spec.train.model_dump(mode="json"),
            "optimizer": prepared.spec.optimizer.model_dump(mode="json"),
            "warmup": args.warmup, "steps": args.steps}
    return _worker("trl", spec, folder)


def _worker(kind: str, spec: dict, folder: Path) -> dict:
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    log = folder / "worker.log"
    with log.open("w") as handle:
        code = subprocess.call([sys.executable, __file__, "--worker", kind, str(path)],
                               env=worker_environment(), stdout=handle, stderr=subprocess.STDOUT)
    out = Path(spec["out"])
    if code != 0 or not out.exists():
        tail = "".join(log.read_text().splitlines(keepends=True)[-25:])
        raise RuntimeError(f"{kind} worker failed ({code}); {log}:\n{tail}")
    return json.loads(out.read_text())


def trl_worker(spec: dict) -> None:
    import torch
    from datasets import Dataset, Features, Json, List, Value
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from kimi_pipeline.training.loop import TrainConfig, schedule, seed_everything
    from kimi_pipeline.training.model import load_model
    from kimi_pipeline.training.optim import OptimizerConfig, prepare_optimizer
    from kimi_pipeline.training.tokenizer import load_tokenizer

    train_cfg = TrainConfig.model_validate(spec["train"])
    seed_everything(train_cfg.seed)
    tokenizer = load_tokenizer(spec["tokenizer"])
    model = load_model(spec["initial_model"], "sdpa", dtype=torch.float32)
    rows = [json.loads(line) for line in Path(spec["data"]).read_text().splitlines()]
    dataset = Dataset.from_dict(
        {"messages": [json.loads(r["messages"]) for r in rows], "tools": [r["tools"] for r in rows]},
        features=Features({"messages": List(Json()), "tools": Value("string")}),
    )
    steps = spec["warmup"] + spec["steps"]
    setup = prepare_optimizer(model, OptimizerConfig.model_validate(spec["optimizer"]), 0)
    scheduler = schedule(train_cfg, steps)(setup.optimizer)
    pad = tokenizer.pad_token_id
    timing: dict[str, list[float]] = {"step_s": [], "tokens": [], "loss": [], "labels": []}

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.tick = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            timing["step_s"].append(time.perf_counter() - self.tick)

    class CountingSFTTrainer(SFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            timing["tokens"].append(int((inputs["input_ids"] != pad).sum()))
            timing["labels"].append(int((inputs["labels"] != -100).sum()))
            loss = super().training_step(model, inputs, num_items_in_batch)
            timing["loss"].append(float(loss))
            return loss

    config = SFTConfig(
        output_dir=spec["dir"], max_length=train_cfg.seq_len,
        per_device_train_batch_size=train_cfg.micro_batch_size, gradient_accumulation_steps=1,
        packing=True, packing_strategy=spec["strategy"], assistant_only_loss=True,
        max_steps=steps, logging_steps=1, report_to=[], use_cpu=True,
        bf16=spec["bf16"], fp16=False, gradient_checkpointing=False,
        max_grad_norm=train_cfg.max_grad_norm, seed=train_cfg.seed, data_seed=train_cfg.seed,
        save_strategy="no", eval_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
    )
    trainer = CountingSFTTrainer(model=model, args=config, train_dataset=dataset,
                                 processing_class=tokenizer, optimizers=(setup.optimizer, scheduler),
                                 callbacks=[StepTimer()])
    prepared = trainer.train_dataset
    kept = (sum(len(x) for x in prepared["seq_lengths"]) if "seq_lengths" in
            prepared.column_names else len(rows))
    data = {"examples": kept, "rows": len(prepared),
            "real_tokens": int(sum(len(ids) for ids in prepared["input_ids"])),
            "label_tokens": int(sum(sum(x != -100 for x in lab) for lab in prepared["labels"]))}
    from kimi_pipeline.training.model import measure_peak_flops

    peak = measure_peak_flops(torch.bfloat16 if spec["bf16"] else torch.float32)
    trainer.train()
    warm = spec["warmup"]
    result = {"tokens": timing["tokens"][warm:], "step_s": timing["step_s"][warm:],
              "loss": timing["loss"][warm:], "first_loss": timing["loss"][0], "data": data,
              "peak": peak}
    Path(spec["out"]).write_text(json.dumps(result))


# --------------------------------------------------------------------------- our step, timed


def run_loop(args, runs_dir: Path, prepared, line: dict, plain: bool = False,
             profile: bool = False) -> dict:
    folder = runs_dir / (("plain" if plain else "profile" if profile else "loop")
                         + f"-z{line['stage']}-{line['max_logit_every']}-{line['autocast']}")
    folder.mkdir(parents=True, exist_ok=True)
    spec = json.loads(prepared.spec.model_dump_json())
    spec["train"]["max_logit_every"] = line["max_logit_every"]
    spec["train"]["autocast"] = line["autocast"]
    spec["deepspeed"].setdefault("zero_optimization", {})["stage"] = line["stage"]
    spec["run_dir"] = str(folder)
    return _worker("loop", {"run": spec, "out": str(folder / "result.json"), "plain": plain,
                            "profile": profile, "warmup": args.warmup,
                            "steps": 6 if profile else args.steps}, folder)


def loop_worker(spec: dict) -> None:
    """A copy of ``Trainer.train_step`` with timers between its phases (diagnosis only)."""
    from contextlib import nullcontext

    import torch

    from kimi_pipeline.training import engine as ds_engine
    from kimi_pipeline.training.launch import RunSpec
    from kimi_pipeline.training.loop import (
        RowOrder, next_token_loss, schedule, seed_everything, total_steps,
    )
    from kimi_pipeline.training.model import load_model
    from kimi_pipeline.training.optim import prepare_optimizer
    from kimi_pipeline.training.qk_clip import max_logit_stats, record_max_logits
    from kimi_pipeline.training.tokenizer import load_tokenizer

    run = RunSpec.model_validate(spec["run"])
    cfg = run.train
    seed_everything(cfg.seed)
    pad = load_tokenizer(run.tokenizer).pad_token_id
    model = load_model(run.initial_model, run.attn_implementation)
    rows = torch.load(run.train_data)
    steps = spec["warmup"] + spec["steps"]
    order = RowOrder(len(rows["input_ids"]), cfg.micro_batch_size, cfg.seed)
    if spec["plain"]:
        setup = prepare_optimizer(model, run.optimizer, 0)
        optimizer, module = setup.optimizer, model
        lr_scheduler = schedule(cfg, total_steps(cfg, len(rows["input_ids"]), 1))(optimizer)
    else:
        ds_engine.init_distributed()
        setup = prepare_optimizer(model, run.optimizer, ds_engine.zero_stage(run.deepspeed))
        config = ds_engine.resolve_deepspeed_config(run.deepspeed, cfg.micro_batch_size, 1,
                                                    cfg.max_grad_norm, setup.ds_config)
        engine, lr_scheduler = ds_engine.initialize(
            model, config, setup.optimizer, setup.model_parameters,
            schedule(cfg, total_steps(cfg, len(rows["input_ids"]), 1)))
        module = engine.module
    module.train()
    phases = ["batch", "forward", "backward", "grad_norm", "optimizer", "max_logit", "item"]
    timing: dict[str, list[float]] = {p: [] for p in phases} | {"tokens": [], "loss": []}

    def autocast():
        if cfg.autocast == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return nullcontext()

    def one_step(step: int) -> None:
        record = cfg.max_logit_every > 0 and step % cfg.max_logit_every == 0
        ticks = [time.perf_counter()]
        index = torch.tensor(order.micro_batch(step, 0, 1))
        batch = {k: rows[k][index].long() for k in ("input_ids", "labels", "position_ids")}
        ticks.append(time.perf_counter())
        with record_max_logits(module) if record else nullcontext():
            with autocast():
                loss = next_token_loss(module if spec["plain"] else engine, batch,
                                       cfg.logits_on_labels_only)
            ticks.append(time.perf_counter())
            if spec["plain"]:
                loss.backward()
            else:
                engine.backward(loss)
            ticks.append(time.perf_counter())
            if spec["plain"]:
                torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.max_grad_norm)
            elif engine.zero_optimization_stage() == 0:
                grads = [p.grad for p in module.parameters() if p.grad is not None]
                float(torch.nn.utils.get_total_norm(grads))
            ticks.append(time.perf_counter())
            if spec["plain"]:
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            else:
                engine.step()
            ticks.append(time.perf_counter())
            if record:
                max_logit_stats(module)
            ticks.append(time.perf_counter())
        value = loss.item()
        tokens = int((batch["input_ids"] != pad).sum())
        ticks.append(time.perf_counter())
        if step >= spec["warmup"]:
            for name, a, b in zip(phases, ticks, ticks[1:]):
                timing[name].append(b - a)
            timing["tokens"].append(tokens)
            timing["loss"].append(value)

    from kimi_pipeline.training.model import measure_peak_flops

    timing["peak"] = measure_peak_flops(torch.bfloat16 if cfg.autocast == "bf16" else torch.float32)
    for step in range(spec["warmup"]):
        one_step(step)
    if spec["profile"]:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for step in range(spec["warmup"], steps):
                one_step(step)
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25,
                                          max_name_column_width=60)
        timing["profile"] = table
    else:
        for step in range(spec["warmup"], steps):
            one_step(step)
    timing["step_s"] = [sum(v) for v in zip(*(timing[p] for p in phases))]
    Path(spec["out"]).write_text(json.dumps(timing))


# --------------------------------------------------------------------------- report


def summarise(name: str, raw: dict, flops_per_token: float) -> dict:
    seconds, tokens = sum(raw["step_s"]), sum(raw["tokens"])
    rate = tokens / seconds if seconds else float("nan")
    rates = sorted((t / s for t, s in zip(raw["tokens"], raw["step_s"]) if s), reverse=True)
    best = rates[: max(1, len(rates) // 4)]
    row = {"name": name, "tok_s": rate, "step_s": seconds / max(1, len(raw["step_s"])),
           "best": sum(best) / len(best) if best else float("nan"),
           "row_tokens": tokens / max(1, len(raw["tokens"])),
           "loss": sum(raw["loss"]) / max(1, len(raw["loss"])),
           "loss_last": sum(raw["loss"][-10:]) / max(1, len(raw["loss"][-10:])),
           "first_loss": raw.get("first_loss", float("nan")),
           "peak": raw.get("peak", float("nan")),
           "mfu": rate * flops_per_token / raw.get("peak", float("nan"))}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", nargs="+", default=DEFAULT_LINES)
    parser.add_argument("--steps", type=int, default=30, help="measured optimizer steps")
    parser.add_argument("--warmup", type=int, default=3, help="steps run before measuring")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8, help="packed rows per optimizer step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-warmup", type=int, default=10, help="LR warm-up steps")
    parser.add_argument("--examples", type=int, default=700, help="synthetic train examples")
    parser.add_argument("--data", default=None, help="sft_dataset parquet (default: catalog)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(Path(args.worker[1]).read_text())
        (trl_worker if args.worker[0] == "trl" else loop_worker)(spec)
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    os.chdir(ROOT)

    import torch

    from kimi_pipeline.training.launch import ALLOCATOR_ENV
    from kimi_pipeline.training.model import measure_peak_flops

    torch.set_num_threads(args.threads)
    frame, source = load_frame(args)
    from kimi_pipeline.training import sft

    runs_dir = Path(tempfile.mkdtemp(prefix="sft_bench_"))
    base = sft_config(args, runs_dir, 0, 0, "none")
    try:
        prepared = sft.prepare_run(frame, base_model(frame, runs_dir), base, root=ROOT)
    except ValueError as exc:  # e.g. the catalog's conversations do not fit the row length
        print(f"not usable at seq_len {args.seq_len}: {source}: {exc}; using synthetic data")
        frame, source = synthetic(args)
        shutil.rmtree(runs_dir / "base_model", ignore_errors=True)  # its tokenizer fits frame
        prepared = sft.prepare_run(frame, base_model(frame, runs_dir), base, root=ROOT)
    peaks = {"fp32": measure_peak_flops(torch.float32, seconds=2.0),
             "bf16": measure_peak_flops(torch.bfloat16, seconds=2.0)}
    print(f"data: {source}; seq {args.seq_len} × batch {args.batch}; {args.warmup} warm-up + "
          f"{args.steps} measured steps; OMP threads {args.threads}; allocator env "
          f"{' '.join(f'{k}={v}' for k, v in ALLOCATOR_ENV.items())}")
    print(f"peak matmul at start (n=2048, {args.threads} threads): fp32 {peaks['fp32'] / 1e9:,.0f} "
          f"GFLOP/s, bf16 {peaks['bf16'] / 1e9:,.0f} GFLOP/s")
    if args.keep:
        print(f"run folders: {runs_dir}")
    ours_data = data_stats(prepared)
    flops = None
    results: dict[str, dict] = {}
    trl_data: dict[str, dict] = {}
    profile_table = None
    for name in args.lines:
        line = parse_line(name)
        start = time.perf_counter()
        print(f"… {name}", file=sys.stderr, flush=True)
        try:
            if line["kind"] == "ours":
                raw = run_ours(args, frame, runs_dir, line)
                flops = raw["flops_per_token"]
            elif line["kind"] == "trl":
                raw = run_trl(args, frame, runs_dir, prepared, line)
                trl_data[line["strategy"]] = raw["data"]
            elif line["kind"] in ("loop", "plain", "profile"):
                raw = run_loop(args, runs_dir, prepared, line, plain=line["kind"] == "plain",
                               profile=line["kind"] == "profile")
                if "profile" in raw:
                    profile_table = raw["profile"]
            else:
                print(f"unknown line {name!r}", file=sys.stderr)
                continue
        except Exception as exc:  # report and go on with the other lines
            print(f"{name}: failed: {exc}", file=sys.stderr)
            continue
        results[name] = raw
        print(f"  {name} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    if flops is None:
        from kimi_pipeline.training.model import flops_per_token, load_model

        model = load_model(prepared.spec.initial_model, "sdpa")
        flops = flops_per_token(model, prepared.spec.context_tokens)
    print_report(args, results, flops, peaks, ours_data, trl_data, profile_table)
    if not args.keep:
        shutil.rmtree(runs_dir, ignore_errors=True)


def print_report(args, results, flops, peaks, ours_data, trl_data, profile_table) -> None:
    print(f"\nFLOPs per token (6·N + per-example causal attention): {flops / 1e6:.1f} M")
    print(f"data ours: {ours_data['examples']} examples, {ours_data['real_tokens']:,} tokens, "
          f"{ours_data['label_tokens']:,} label tokens, {ours_data['rows']} rows of "
          f"{args.seq_len}, {ours_data['dropped']} dropped (no label within a row)")
    for strategy, data in trl_data.items():
        print(f"data TRL {strategy}: {data['examples']} examples, {data['real_tokens']:,} tokens, "
              f"{data['label_tokens']:,} label tokens, {data['rows']} rows")
    rows = [summarise(n, r, flops) for n, r in results.items()]
    reference = next((r for r in rows if r["name"] == "trl-bfd"), None)
    print("\ntokens/s = real (non-pad) tokens per second of step time, steps "
          f"{args.warmup + 1}–{args.warmup + args.steps}; 'best¼' = mean rate of the fastest "
          "quarter of steps (least disturbed by other load); MFU against the matmul peak "
          "measured in the line's own process just before it trained (fp32, bf16 for -bf16)")
    header = (f"{'line':<22} {'tokens/s':>9} {'× trl-bfd':>9} {'best¼':>7} {'×':>6} "
              f"{'step s':>7} {'tok/step':>8} {'loss':>7} {'last10':>7} {'step1':>6} "
              f"{'peak GF':>7} {'MFU':>6}")
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = row["tok_s"] / reference["tok_s"] if reference else float("nan")
        best = row["best"] / reference["best"] if reference else float("nan")
        print(f"{row['name']:<22} {row['tok_s']:>9,.0f} {ratio:>8.2f}× {row['best']:>7,.0f} "
              f"{best:>5.2f}× {row['step_s']:>7.3f} {row['row_tokens']:>8,.0f} "
              f"{row['loss']:>7.3f} {row['loss_last']:>7.3f} {row['first_loss']:>6.2f} "
              f"{row['peak'] / 1e9:>7,.0f} {row['mfu']:>6.1%}")
    phases = ["batch", "forward", "backward", "grad_norm", "optimizer", "max_logit", "item"]
    split = {n: r for n, r in results.items() if n.split("-")[0] in ("loop", "plain")}
    if split:
        print("\nstep time split (ms per step, mean over measured steps):")
        print(f"{'line':<22} " + " ".join(f"{p:>9}" for p in phases))
        for name, raw in split.items():
            print(f"{name:<22} " + " ".join(
                f"{1000 * sum(raw[p]) / max(1, len(raw[p])):>9.1f}" for p in phases))
    for name, raw in results.items():
        if name.startswith("ours"):
            print(f"{name}: MFU logged by our loop (mean of per-step values) "
                  f"{raw['worker_mfu']:.1%}")
    if profile_table:
        print("\ntorch.profiler, our step (loop-z0, max-logit recording on):")
        print(profile_table)
    command = [".venv/bin/python", "bench/sft_throughput.py", "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--examples", str(args.examples), "--threads",
               str(args.threads), "--lr", str(args.lr), "--lines", *args.lines]
    print("\nreproduce: " + shlex.join(command))


if __name__ == "__main__":
    main()
