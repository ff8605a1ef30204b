"""Time the curation steps of the filtering stage on 100k trajectories (2 cores).

Run: ``.venv/bin/python bench/filtering_throughput.py [trajectories_glob] [n_rows]``.
Default input: the newest synthesis run under ``data/03_primary/trajectories``. The real
trajectories are replicated with perturbations until ``n_rows`` (100k) exist: the first copy
is the original; each later copy gets new trajectory and agent ids and, chosen per row,
is left as is (15 %: exact duplicates), has one word of its request changed (25 %: near
duplicates) or has half the words of every message replaced (60 %: distinct). A fake
``judge_score`` is uniform in [0, 1]. The held-out references are 200 real requests (so some
rows are contaminated) and 1,800 random sentences. Prints seconds and rows/s per step and the
peak RSS; never asserts. Polars and numpy are held to 2 threads and, where the machine has
more, the process to 2 CPUs.
"""

from __future__ import annotations

import glob
import os
import random
import resource
import sys
import time

os.environ.setdefault("POLARS_MAX_THREADS", "2")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 2:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])

import numpy as np  # noqa: E402
import orjson  # noqa: E402
import polars as pl  # noqa: E402

from kimi_pipeline.curation.balance import balance  # noqa: E402
from kimi_pipeline.curation.config import (  # noqa: E402
    BalanceConfig,
    CapConfig,
    DecontaminationConfig,
    SftFormatConfig,
    TrajectoryDedupConfig,
)
from kimi_pipeline.curation.decontaminate import ReferenceIndex, decontaminate  # noqa: E402
from kimi_pipeline.curation.dedup import dedup  # noqa: E402
from kimi_pipeline.curation.messages import ensure_parsed  # noqa: E402
from kimi_pipeline.curation.sft_format import to_sft_examples  # noqa: E402

DEFAULT_GLOB = "data/03_primary/trajectories/*/trajectories/*.parquet"
VOCAB = [f"w{k}" for k in range(20_000)]


def newest_run(pattern: str) -> list[str]:
    files = sorted(glob.glob(pattern))
    if not files:
        sys.exit(f"no trajectories match {pattern}")
    run = max({os.path.dirname(os.path.dirname(f)) for f in files})
    return [f for f in files if f.startswith(run)]


def _rewrite(messages: list[dict], change, rng: random.Random) -> str:
    for message in messages:
        if message.get("content"):
            message["content"] = change(message["content"], rng)
    return orjson.dumps(messages).decode()


def _one_word(text: str, rng: random.Random) -> str:
    words = text.split()
    words[rng.randrange(len(words))] = rng.choice(VOCAB)
    return " ".join(words)


def _half_words(text: str, rng: random.Random) -> str:
    return " ".join(rng.choice(VOCAB) if rng.random() < 0.5 else w for w in text.split())


def _perturb(text: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.15:
        return text
    messages = orjson.loads(text)
    if roll < 0.40:
        user = next(m for m in messages if m["role"] == "user")
        user["content"] = _one_word(user["content"], rng)
        return orjson.dumps(messages).decode()
    return _rewrite(messages, _half_words, rng)


def build(real: pl.DataFrame, n_rows: int, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    copies = [real]
    for k in range(1, -(-n_rows // real.height)):
        copies.append(
            real.with_columns(
                pl.col("trajectory_id") + f"~r{k}",
                pl.col("agent_id") + f"~r{k}",
                pl.Series(
                    "messages", [_perturb(t, rng) for t in real["messages"]], dtype=pl.String
                ),
            )
        )
    frame = pl.concat(copies).head(n_rows)
    scores = np.random.default_rng(seed).random(frame.height)
    return frame.with_columns(judge_score=pl.Series(scores))


def references(real: pl.DataFrame, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    parsed, _ = ensure_parsed(real.sample(200, seed=seed))
    held_out = [(f"eval:{k}", text) for k, text in enumerate(parsed["_cur_request"])]
    noise = [(f"noise:{k}", " ".join(rng.sample(VOCAB, 20))) for k in range(1800)]
    return held_out + noise


def timed(name: str, rows: int, fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - start
    kept = out[0].height if isinstance(out, tuple) else out.height
    why = ""
    if isinstance(out, tuple) and out[1].height:
        kinds = out[1]["reason"].str.extract(r"^(\w+)").value_counts(sort=True)
        why = "  removed: " + ", ".join(f"{k} {c:,}" for k, c in kinds.iter_rows())
    print(
        f"{name:<14} {rows:>8,} in  {kept:>8,} out  {seconds:6.2f} s  "
        f"{rows / seconds:>10,.0f} rows/s{why}"
    )
    return out, seconds


def main() -> None:
    pattern = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_GLOB
    n_rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    real = pl.read_parquet(newest_run(pattern))
    frame = build(real, n_rows)
    refs = references(real)
    print(
        f"{frame.height:,} trajectories ({real.height:,} real), {len(refs):,} references, "
        f"{pl.thread_pool_size()} polars threads, {len(os.sched_getaffinity(0))} CPUs"
    )
    balance_config = BalanceConfig(
        per_tool=CapConfig(default=1500), per_persona=CapConfig(default=8000)
    )
    total = 0.0
    (parsed, _), s = timed("parse", frame.height, ensure_parsed, frame)
    total += s
    (kept, _), s = timed("dedup", parsed.height, dedup, parsed, TrajectoryDedupConfig())
    total += s
    config = DecontaminationConfig()
    (kept, _), s = timed(
        "decontaminate",
        kept.height,
        lambda f: decontaminate(f, ReferenceIndex.build(refs, config), config),
        kept,
    )
    total += s
    (kept, _), s = timed("balance", kept.height, balance, kept, balance_config)
    total += s
    examples, s = timed("sft_format", kept.height, to_sft_examples, kept, SftFormatConfig())
    total += s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{'total':<14} {frame.height:>8,} in  {examples.height:>8,} out  {total:6.2f} s  "
        f"{frame.height / total:>10,.0f} rows/s   peak RSS {peak:,.0f} MiB"
    )
    whole_stage(frame.drop("judge_score"))


def whole_stage(frame: pl.DataFrame) -> None:
    """The stage as the pipeline runs it: rule judge (2 processes) + format checks + curation."""
    from kimi_pipeline.curation.filtering import FilteringConfig, filter_trajectories

    agents = frame.select("agent_id", pl.lit("bench").alias("domain")).unique("agent_id")
    start = time.perf_counter()
    result = filter_trajectories(frame.lazy(), agents, None, FilteringConfig(workers=2))
    seconds = time.perf_counter() - start
    print(f"{'whole stage':<14} {frame.height:>8,} in  {result.examples.height:>8,} out  "
          f"{seconds:6.2f} s  {frame.height / seconds:>10,.0f} rows/s   funnel {result.funnel}")


if __name__ == "__main__":
    main()
