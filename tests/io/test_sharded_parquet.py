"""ShardedParquetDataset and OptionalDataset through a Kedro catalog: versioned folders of
shards saved atomically and loaded lazily; a dataset that may not exist yet loads as None."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError

from kimi_pipeline.io.optional import OptionalDataset
from kimi_pipeline.io.sharded_parquet import ShardedParquetDataset

TYPE = "kimi_pipeline.io.sharded_parquet.ShardedParquetDataset"


def catalog(root: Path, **kwargs) -> DataCatalog:
    """A fresh catalog per save, like a fresh ``kedro run`` (one save version per run)."""
    config = {"episodes": {"type": TYPE, "filepath": str(root / "episodes"), "versioned": True}}
    return DataCatalog.from_config(config, **kwargs)


def versions(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "episodes").iterdir())


def test_a_mapping_of_shards_is_saved_one_at_a_time_and_loads_as_one_lazy_frame(tmp_path):
    produced = []

    def shard(i: int):
        def make() -> pl.DataFrame:
            produced.append(i)
            return pl.DataFrame({"id": [i, i + 10]})
        return make

    catalog(tmp_path).save("episodes", {"part-1": shard(1), "part-0": shard(0)})
    assert produced == [0, 1]  # invoked lazily, in shard-name order
    loaded = catalog(tmp_path).load("episodes")
    assert isinstance(loaded, pl.LazyFrame)
    assert loaded.collect()["id"].to_list() == [0, 10, 1, 11]
    (version,) = versions(tmp_path)
    assert sorted(p.name for p in (tmp_path / "episodes" / version / "episodes").iterdir()) == [
        "part-0.parquet", "part-1.parquet"]


def test_exists_only_once_a_version_is_saved_and_load_picks_the_newest(tmp_path):
    assert not catalog(tmp_path).exists("episodes")
    with pytest.raises(DatasetError):
        catalog(tmp_path).load("episodes")
    catalog(tmp_path).save("episodes", pl.DataFrame({"id": [1]}))
    catalog(tmp_path).save("episodes", pl.LazyFrame({"id": [2]}))
    assert catalog(tmp_path).exists("episodes") and len(versions(tmp_path)) == 2
    assert catalog(tmp_path).load("episodes").collect()["id"].to_list() == [2]
    first = versions(tmp_path)[0]
    pinned = catalog(tmp_path, load_versions={"episodes": first}).load("episodes")
    assert pinned.collect()["id"].to_list() == [1]


def test_a_crash_while_saving_leaves_no_visible_version_and_the_next_save_works(tmp_path):
    def crash() -> pl.DataFrame:
        raise RuntimeError("producer died")

    with pytest.raises(DatasetError, match="producer died"):
        catalog(tmp_path).save("episodes", {"a": pl.DataFrame({"id": [1]}), "b": crash})
    assert not catalog(tmp_path).exists("episodes")
    assert not list((tmp_path / "episodes").glob("*/episodes"))  # only a hidden staging folder
    catalog(tmp_path).save("episodes", pl.DataFrame({"id": [3]}))
    assert catalog(tmp_path).load("episodes").collect()["id"].to_list() == [3]


def test_anything_else_is_refused_and_the_dataset_describes_itself(tmp_path):
    dataset = ShardedParquetDataset(str(tmp_path / "episodes"))
    with pytest.raises(DatasetError, match="give a DataFrame or a mapping of shards"):
        dataset.save([1, 2, 3])
    assert dataset._describe() == {"filepath": str(tmp_path / "episodes"), "version": None}
    assert dataset._init_config() == {"type": TYPE, "filepath": str(tmp_path / "episodes")}


def test_an_optional_dataset_loads_none_until_its_dataset_is_saved(tmp_path):
    inner = {"type": TYPE, "filepath": str(tmp_path / "episodes"), "versioned": True}
    optional = OptionalDataset(inner)
    assert optional.load() is None and not optional.exists()
    catalog(tmp_path).save("episodes", pl.DataFrame({"id": [7]}))
    assert optional.exists()
    assert optional.load().collect()["id"].to_list() == [7]
    assert optional._describe()["dataset"]["filepath"] == str(tmp_path / "episodes")
    OptionalDataset(inner).save(pl.DataFrame({"id": [8]}))  # a new version of what it wraps
    assert OptionalDataset(inner).load().collect()["id"].to_list() == [8]
