"""A handle on a Hugging Face ``save_pretrained`` folder: model, tokenizer, our metadata.

Stages hand models to each other as folders, never as live objects: a checkpoint can be far
larger than memory, so whoever receives a ``ModelFolder`` decides whether and how to load the
weights (``load_model(dtype=..., device_map=...)``), or just passes the path on to DeepSpeed or
an inference engine. The folder is the one Hugging Face writes (``config.json``, safetensors
weights, tokenizer files), plus an optional ``kimi_metadata.json`` (what trained it, on which
data version) and whatever else a training run puts there (``training_summary.json``, plots).

Library code: no Kedro here; ``kimi_pipeline.io.hf_model`` versions these folders in the catalog.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

METADATA_FILE = "kimi_metadata.json"
CONFIG_FILE = "config.json"
# Any one of these means the folder holds weights (single file or sharded, safetensors or torch).
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class ModelFolder:
    """A model folder on disk; nothing is read until a ``load_*`` method is called."""

    path: Path
    # Default keyword arguments of ``load_model`` (e.g. ``{"dtype": "bfloat16"}``).
    load_args: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def load_model(self, **kwargs: Any):
        """``AutoModelForCausalLM.from_pretrained`` on the folder; kwargs override ``load_args``."""
        return AutoModelForCausalLM.from_pretrained(str(self.path), **{**self.load_args, **kwargs})

    def load_tokenizer(self, **kwargs: Any):
        return AutoTokenizer.from_pretrained(str(self.path), **kwargs)

    def config(self):
        """The model config alone (architecture, sizes), without touching the weights."""
        return AutoConfig.from_pretrained(str(self.path))

    def metadata(self) -> dict[str, Any]:
        """The contents of ``kimi_metadata.json``; empty when the folder has none."""
        file = self.path / METADATA_FILE
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    def weights_identity(self) -> str:
        """What identifies the weights: the digest ``kimi_metadata.json`` records (base_model,
        a fitted critic), else a SHA-256 of the weight files' bytes (~1 s per GB): two
        trainings of one architecture write files of equal names and sizes."""
        recorded = self.metadata().get("weights_digest")
        return recorded or self.files_digest()

    def files_digest(self) -> str:
        """A content hash of the folder's weight files (names and bytes)."""
        sha = hashlib.sha256()
        for path in sorted(self.path.iterdir()):
            if path.is_file() and (path.name in WEIGHT_FILES
                                   or path.suffix in (".safetensors", ".bin")):
                sha.update(path.name.encode())
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        sha.update(block)
        return "files:" + sha.hexdigest()[:16]

    def missing(self) -> list[str]:
        """What the folder lacks to be loadable as a model; empty when complete."""
        if not self.path.is_dir():
            return [f"the folder {self.path} itself"]
        problems = []
        if not (self.path / CONFIG_FILE).is_file():
            problems.append(CONFIG_FILE)
        if not any((self.path / name).is_file() for name in WEIGHT_FILES):
            problems.append("weights (one of " + ", ".join(WEIGHT_FILES) + ")")
        return problems

    @classmethod
    def save(
        cls,
        model: Any,
        tokenizer: Any | None,
        path: str | Path,
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelFolder:
        """Write model (safetensors), tokenizer (when given) and metadata into ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(path))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(path))
        if metadata is not None:
            text = json.dumps(dict(metadata), indent=2, sort_keys=True, default=str)
            (path / METADATA_FILE).write_text(text + "\n", encoding="utf-8")
        return cls(path)


def replace_folder(staging: Path, target: Path) -> None:
    """Rename a finished folder into place; an existing target is swapped out, then removed."""
    if not target.exists():
        staging.rename(target)
        return
    old = target.parent / f".{target.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    staging.rename(target)
    shutil.rmtree(old)
