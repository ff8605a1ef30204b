"""HFModelDataset: versioned save/load through a Kedro catalog, atomic saves, lazy loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from kedro.io import DataCatalog
from kedro.io.core import DatasetError
from transformers import LlamaConfig, LlamaForCausalLM

from kimi_pipeline.io.hf_model import HFModelDataset
from kimi_pipeline.model_folder import ModelFolder
from kimi_pipeline.training.tokenizer import train_tokenizer

TYPE = "kimi_pipeline.io.hf_model.HFModelDataset"
TEXTS = ["the order desk cancels orders", "search orders by customer", "hello world"] * 4


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(TEXTS, vocab_size=300, min_frequency=1)


def tiny_model(tokenizer, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).eval()


def catalog(root: Path, **kwargs) -> DataCatalog:
    """A fresh catalog per save, like a fresh ``kedro run`` (one save version per run)."""
    config = {"sft_model": {"type": TYPE, "filepath": str(root / "sft_model"), "versioned": True}}
    return DataCatalog.from_config(config, **kwargs)


def versions(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "sft_model").glob("*/sft_model"))


def logits(model, tokenizer) -> torch.Tensor:
    ids = torch.tensor([tokenizer("search orders by customer")["input_ids"]])
    with torch.no_grad():
        return model(ids).logits


def test_round_trip_through_catalog_is_lazy_and_exact(tmp_path, tokenizer):
    model = tiny_model(tokenizer)
    catalog(tmp_path).save(
        "sft_model", {"model": model, "tokenizer": tokenizer, "metadata": {"data": "v1"}}
    )
    folder = catalog(tmp_path).load("sft_model")
    assert isinstance(folder, ModelFolder)  # a handle, no weights read
    assert folder.metadata() == {"data": "v1"}
    assert folder.config().hidden_size == 32
    assert (folder.path / "model.safetensors").is_file()
    reloaded = folder.load_model().eval()
    torch.testing.assert_close(logits(reloaded, tokenizer), logits(model, tokenizer))
    loaded_tok = folder.load_tokenizer()
    assert loaded_tok("hello <|end|>")["input_ids"] == tokenizer("hello <|end|>")["input_ids"]
    assert loaded_tok.chat_template == tokenizer.chat_template


def test_two_saves_give_two_versions_and_load_picks_newest_or_pinned(tmp_path, tokenizer):
    for i in (1, 2):
        catalog(tmp_path).save("sft_model", {"model": tiny_model(tokenizer, seed=i),
                                             "metadata": {"run": i}})
    first, second = versions(tmp_path)
    assert catalog(tmp_path).load("sft_model").metadata() == {"run": 2}
    pinned = catalog(tmp_path, load_versions={"sft_model": first}).load("sft_model")
    assert pinned.metadata() == {"run": 1}
    assert pinned.path.parent.name == first
    direct = HFModelDataset(str(tmp_path / "sft_model"), version=_version(second)).load()
    assert direct.metadata() == {"run": 2}


def _version(load: str):
    from kedro.io.core import Version

    return Version(load=load, save=None)


def test_model_folder_is_copied_with_extra_files(tmp_path, tokenizer):
    run_dir = tmp_path / "run" / "final"
    model = tiny_model(tokenizer)
    source = ModelFolder.save(model, tokenizer, run_dir, metadata={"steps": 3})
    (run_dir / "training_summary.json").write_text(json.dumps({"loss": 1.5}))
    catalog(tmp_path).save("sft_model", source)
    folder = catalog(tmp_path).load("sft_model")
    assert folder.path != source.path and source.missing() == []  # a copy; source untouched
    assert json.loads((folder.path / "training_summary.json").read_text()) == {"loss": 1.5}
    assert folder.metadata() == {"steps": 3}
    reloaded = folder.load_model().eval()
    torch.testing.assert_close(logits(reloaded, tokenizer), logits(model, tokenizer))


class CrashingModel:
    """Writes a complete-looking folder, then fails: the save must still not be visible."""

    def __init__(self, model):
        self.model = model

    def save_pretrained(self, path, **kwargs):
        self.model.save_pretrained(path, **kwargs)
        raise OSError("disk full")


def test_crash_during_save_leaves_no_visible_version(tmp_path, tokenizer):
    catalog(tmp_path).save("sft_model", {"model": tiny_model(tokenizer), "metadata": {"ok": 1}})
    with pytest.raises(DatasetError, match="disk full"):
        catalog(tmp_path).save("sft_model", {"model": CrashingModel(tiny_model(tokenizer))})
    assert len(versions(tmp_path)) == 1
    assert len(list((tmp_path / "sft_model").iterdir())) == 1  # no empty version, no temp folder
    assert catalog(tmp_path).load("sft_model").metadata() == {"ok": 1}


def test_crash_while_copying_leaves_no_visible_version(tmp_path, tokenizer):
    source = ModelFolder.save(tiny_model(tokenizer), tokenizer, tmp_path / "run")
    os.mkfifo(source.path / "zz_pipe")  # copytree cannot copy a named pipe: fails after the weights
    with pytest.raises(DatasetError, match="zz_pipe"):
        catalog(tmp_path).save("sft_model", source)
    assert not (tmp_path / "sft_model").exists() or not any((tmp_path / "sft_model").iterdir())
    assert not catalog(tmp_path).exists("sft_model")


def test_incomplete_source_folder_is_refused_with_reason(tmp_path, tokenizer):
    run_dir = tmp_path / "run"
    tokenizer.save_pretrained(str(run_dir))  # tokenizer only: no config.json, no weights
    with pytest.raises(DatasetError, match="config.json.*weights"):
        catalog(tmp_path).save("sft_model", ModelFolder(run_dir))
    assert versions(tmp_path) == []


def test_load_of_a_folder_without_weights_fails_clearly(tmp_path, tokenizer):
    broken = tmp_path / "sft_model" / "2024-01-01T00.00.00.000Z" / "sft_model"
    tiny_model(tokenizer).config.save_pretrained(str(broken))
    with pytest.raises(DatasetError, match="missing weights"):
        catalog(tmp_path).load("sft_model")


def test_mapping_with_unknown_keys_is_refused(tmp_path, tokenizer):
    with pytest.raises(DatasetError, match="'model'"):
        catalog(tmp_path).save("sft_model", {"modle": tiny_model(tokenizer)})
    assert versions(tmp_path) == []


def test_load_args_become_from_pretrained_defaults(tmp_path, tokenizer):
    path = str(tmp_path / "m")
    HFModelDataset(path).save({"model": tiny_model(tokenizer)})
    folder = HFModelDataset(path, load_args={"dtype": torch.float64}).load()
    assert next(folder.load_model().parameters()).dtype == torch.float64
    assert next(folder.load_model(dtype=torch.float32).parameters()).dtype == torch.float32


def test_unversioned_save_replaces_the_previous_folder(tmp_path, tokenizer):
    dataset = HFModelDataset(str(tmp_path / "m"))
    dataset.save({"model": tiny_model(tokenizer), "metadata": {"run": 1}})
    dataset.save({"model": tiny_model(tokenizer), "metadata": {"run": 2}})
    assert dataset.load().metadata() == {"run": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_load_hands_over_the_folder_without_reading_weights(tmp_path, tokenizer):
    catalog(tmp_path).save("sft_model", {"model": tiny_model(tokenizer)})
    weights = next((tmp_path / "sft_model").glob("*/sft_model/model.safetensors"))
    weights.write_bytes(b"not a safetensors file")  # only a reader of the weights would notice
    folder = catalog(tmp_path).load("sft_model")
    assert folder.path == weights.parent
    with pytest.raises(Exception, match="(?i)header|safetensors|deserializ"):  # noqa: B017
        folder.load_model()
