"""The base of our versioned Kedro datasets whose every version is a folder.

A model checkpoint (``hf_model.py``) and a set of Parquet shards (``sharded_parquet.py``) are
both folders. Both datasets write a version to a hidden staging folder next to its target and
rename it into place only once complete, so a crash never leaves a half-written version that a
later ``load`` would take for the newest. What they share lives here: the versioned path (a
version exists when its path does), ``_exists`` (the version to load is a folder),
``_describe`` (file path and version) and ``staging_folder``.
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


class VersionedFolderDataset(AbstractVersionedDataset[_DI, _DO]):
    """A versioned dataset stored as one folder per version (subclasses load and save it)."""

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            filepath=PurePosixPath(filepath), version=version,
            exists_function=lambda p: Path(p).exists(),
        )
        self.metadata = metadata

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_dir()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "version": self._version}


def staging_folder(target: Path) -> Path:
    """The hidden folder next to ``target`` that a version is written to first; anything a
    crashed save left there is removed."""
    staging = target.parent / f".{target.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    return staging
