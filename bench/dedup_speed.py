"""Time ``dedup_tools`` on 20k synthetic tools (with planted exact and near duplicates).

Run: ``.venv/bin/python bench/dedup_speed.py [n_tools]``. Prints timings, never asserts.
Numeric libraries are held to 2 threads to mirror a small CI runner.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import DedupConfig
from kimi_pipeline.tools.dedup import dedup_tools

SOURCES = ("mcp", "file", "synthetic")


def make_tools(n: int, seed: int = 0) -> list[ToolSpec]:
    """~80 % distinct tools, ~10 % exact copies, ~10 % renamed one-word paraphrases."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(5000)]
    schemas = [
        {"type": "object", "properties": {f"p{k}": {"type": "string"} for k in range(m)}}
        for m in range(1, 9)
    ]
    tools: list[ToolSpec] = []
    for i in range(n):
        roll = rng.random()
        if tools and roll < 0.1:
            base = rng.choice(tools)
            name, words, params = base.name, base.description.split(), base.parameters
        elif tools and roll < 0.2:
            # Same words under a camelCase name, one description word changed at the end.
            base = rng.choice(tools)
            words = base.description.split()
            words[-1] = rng.choice(vocab)
            head, *rest = base.name.split("_")
            name, params = head + "".join(w.capitalize() for w in rest), base.parameters
        else:
            name = "_".join(rng.sample(vocab, 3))
            words = rng.sample(vocab, rng.randint(15, 40))
            params = rng.choice(schemas)
        source = SOURCES[i % 3]
        tools.append(
            ToolSpec(
                tool_id=f"{source}:bench/{name}#{i}",
                name=name,
                description=" ".join(words),
                parameters=params,
                source=source,
                source_ref=f"bench#{i}",
            )
        )
    return tools


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    tools = make_tools(n)
    config = DedupConfig()
    started = time.perf_counter()
    result = dedup_tools(tools, config, lambda p: json.dumps(p, sort_keys=True))
    elapsed = time.perf_counter() - started
    print(
        f"dedup {n} tools: {elapsed:.2f} s ({n / elapsed:,.0f} tools/s); kept {len(result.tools)}, "
        f"exact merged {result.exact_merged}, near merged {result.near_merged}, "
        f"clusters {len(result.clusters)} (num_perm={config.num_perm}, "
        f"threshold={config.near_duplicate_threshold}, shingle_size={config.shingle_size})"
    )


if __name__ == "__main__":
    main()
