"""A versioned folder of Parquet shards: large stage outputs that never sit whole in memory.

``save`` takes a polars DataFrame, or a mapping ``{shard_name: DataFrame | () -> DataFrame}``
whose callables are invoked one at a time (Kedro's lazy-saving idiom), so a producer that has
checkpointed its shards to disk can hand them over without loading them all. Shards are written
to a hidden temp folder and renamed into place at the end: a crash never leaves a half-written
version that a later run would mistake for the newest. ``load`` returns a ``polars.LazyFrame``
over all shards, so consumers stream too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
from kedro.io.core import DatasetError, Version

from kimi_pipeline.io.versioned_folder import VersionedFolderDataset, staging_folder

Shard = pl.DataFrame | Callable[[], pl.DataFrame]


class ShardedParquetDataset(VersionedFolderDataset[Any, pl.LazyFrame]):
    def __init__(self, filepath: str, version: Version | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        # declared, not inherited: Kedro records a dataset's arguments from its class's own
        # ``__init__`` signature (``to_config``)
        super().__init__(filepath, version, metadata)

    def load(self) -> pl.LazyFrame:
        folder = Path(self._get_load_path())
        shards = sorted(folder.glob("*.parquet"))
        if not shards:
            raise DatasetError(f"no Parquet shards in {folder}")
        return pl.scan_parquet(shards)

    def save(self, data: pl.DataFrame | pl.LazyFrame | Mapping[str, Shard]) -> None:
        folder = Path(self._get_save_path())
        staging = staging_folder(folder)
        staging.mkdir(parents=True)
        for name, shard in _shards(data):
            frame = shard() if callable(shard) else shard
            frame.write_parquet(staging / f"{name}.parquet")
        staging.rename(folder)


def _shards(data: Any):
    if isinstance(data, pl.LazyFrame):
        data = data.collect()
    if isinstance(data, pl.DataFrame):
        return [("part-00000", data)]
    if isinstance(data, Mapping):
        return sorted(data.items())
    raise DatasetError(
        f"cannot save {type(data).__name__}; give a DataFrame or a mapping of shards")
