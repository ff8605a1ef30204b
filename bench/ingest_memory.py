"""Benchmark of file ingestion: throughput and peak memory over many small spec files.

Writes N spec files (default 100 000) in a temporary directory, cycling through the
dialects ingest recognises plus messy and broken ones, then streams them through
``ingest_files`` with one lazy loader per file, as Kedro's PartitionedDataset passes them.
Prints records per second and the peak RSS of the process (``ru_maxrss``).  With ``--keep``
the records are also held in a list, as a Kedro node returning them would.

    python bench/ingest_memory.py [-n 100000] [--keep]
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from kimi_pipeline.records import ToolSpec
from kimi_pipeline.tools.config import NormaliseConfig
from kimi_pipeline.tools.ingest import ingest_files


def _schema(i: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": f"Search text number {i}."},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
            "sort": {"type": "string", "enum": ["relevance", "date"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["query"],
    }


def _messy(i: int) -> dict:
    return {
        "query": {"type": "str", "desc": "Search text."},
        "limit": {"type": "int", "default": "10"},
        "since": {"type": "Optional[str]"},
        "required": ["query", "ghost"],
    }


# One writer per file kind: (file suffix, text of the file for index i).
_KINDS = (
    (
        ".json",
        lambda i: json.dumps(
            {"name": f"tool_{i}", "description": "Bare tool.", "parameters": _schema(i)}
        ),
    ),
    (
        ".json",
        lambda i: json.dumps(
            {
                "result": {
                    "tools": [
                        {"name": f"mcp_{i}", "description": "MCP tool.", "inputSchema": _schema(i)}
                    ]
                }
            }
        ),
    ),
    (
        ".json",
        lambda i: json.dumps(
            [
                {
                    "type": "function",
                    "function": {
                        "name": f"fn_{i}",
                        "description": "OpenAI tool.",
                        "parameters": _schema(i),
                    },
                }
            ]
        ),
    ),
    (
        ".json",
        lambda i: json.dumps(
            {"functions": [{"name": f"legacy {i}", "summary": "Legacy.", "parameters": _messy(i)}]}
        ),
    ),
    (
        ".jsonl",
        lambda i: "\n".join(
            json.dumps({"name": f"line_{i}_{k}", "description": "Line.", "parameters": _schema(k)})
            for k in range(2)
        ),
    ),
    (".json", lambda i: '{"name": "broken", "parameters": {,}}'),
    (
        ".json",
        lambda i: json.dumps(
            {
                "name": f"geo_{i}",
                "parameters": {"type": "object", "properties": {"at": {"type": "LatLng"}}},
            }
        ),
    ),
)


def write_files(root: Path, n: int) -> dict[str, Path]:
    paths = {}
    for i in range(n):
        suffix, text = _KINDS[i % len(_KINDS)]
        path = root / f"spec_{i:06d}{suffix}"
        path.write_text(text(i), encoding="utf-8")
        paths[path.name] = path
    return paths


def peak_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="number of spec files")
    parser.add_argument("--keep", action="store_true", help="hold all records in a list")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        paths = write_files(Path(tmp), args.n)
        print(
            f"wrote {args.n} files in {time.perf_counter() - started:.1f}s; "
            f"peak RSS so far {peak_rss_mib():.0f} MiB"
        )
        loaders = {name: functools.partial(path.read_bytes) for name, path in paths.items()}
        kept, specs, quarantined = [], 0, 0
        started = time.perf_counter()
        for record in ingest_files(loaders, NormaliseConfig()):
            if isinstance(record, ToolSpec):
                specs += 1
            else:
                quarantined += 1
            if args.keep:
                kept.append(record)
        elapsed = time.perf_counter() - started
    total = specs + quarantined
    print(
        f"{total} records ({specs} specs, {quarantined} quarantined) in {elapsed:.1f}s: "
        f"{total / elapsed:,.0f} records/s, {specs / elapsed:,.0f} specs/s"
    )
    print(f"peak RSS {peak_rss_mib():.0f} MiB{' (records kept in memory)' if args.keep else ''}")


if __name__ == "__main__":
    main()
