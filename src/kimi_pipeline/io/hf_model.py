"""A versioned Hugging Face model folder (model + tokenizer + metadata) as a Kedro dataset.

``save`` takes either a ``ModelFolder`` (a training run already wrote the checkpoint somewhere,
e.g. its run directory: the folder is copied in) or a mapping ``{"model": ..., "tokenizer": ...,
"metadata": {...}}`` of live objects (written with ``ModelFolder.save``). Either way the files go
to a hidden temp folder next to the target and are renamed into place only once complete and
checked (``config.json`` and weights present): a crash never leaves a half-written version that
a later ``load`` would pick as the newest, and the temp folder is removed on failure.

``load`` returns a ``ModelFolder`` for the resolved version and reads no weights: a large
checkpoint is handed over as a path, and the consumer chooses how to load it. ``load_args``
become the folder's default ``from_pretrained`` arguments (e.g. ``dtype: bfloat16``).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.io.core import DatasetError, Version

from kimi_pipeline.io.versioned_folder import VersionedFolderDataset, staging_folder
from kimi_pipeline.model_folder import ModelFolder, replace_folder

_OBJECT_KEYS = {"model", "tokenizer", "metadata"}


class HFModelDataset(VersionedFolderDataset[Any, ModelFolder]):
    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(filepath, version, metadata)
        self._load_args = dict(load_args or {})

    def load(self) -> ModelFolder:
        folder = ModelFolder(Path(self._get_load_path()), load_args=self._load_args)
        _check(folder, "load")
        return folder

    def save(self, data: ModelFolder | Mapping[str, Any]) -> None:
        target = Path(self._get_save_path())
        staging = staging_folder(target)
        try:
            _write(data, staging)
            _check(ModelFolder(staging), "save")
            replace_folder(staging, target)
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            self._remove_empty_version_folder(target.parent)
            if isinstance(exc, Exception) and not isinstance(exc, DatasetError):
                raise DatasetError(f"could not save a model folder to {target}: {exc}") from exc
            raise

    def _remove_empty_version_folder(self, folder: Path) -> None:
        if self._version and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "load_args": self._load_args}


def _write(data: Any, staging: Path) -> None:
    if isinstance(data, ModelFolder):
        _check(data, "copy from")
        staging.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data.path, staging)  # follows symlinks (HF cache snapshots are links)
    elif isinstance(data, Mapping):
        unknown = set(data) - _OBJECT_KEYS
        if unknown or "model" not in data:
            raise DatasetError(
                f"a model mapping needs 'model' and may have 'tokenizer', 'metadata'; "
                f"got keys {sorted(data)}"
            )
        ModelFolder.save(data["model"], data.get("tokenizer"), staging, data.get("metadata"))
    else:
        raise DatasetError(
            f"cannot save {type(data).__name__}; give a ModelFolder or "
            "{'model': ..., 'tokenizer': ..., 'metadata': {...}}"
        )


def _check(folder: ModelFolder, action: str) -> None:
    missing = folder.missing()
    if missing:
        raise DatasetError(
            f"cannot {action} {folder.path}: not a Hugging Face model folder, missing "
            + "; ".join(missing)
        )
