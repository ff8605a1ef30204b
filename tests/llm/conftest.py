"""Fixtures of the backend tests: the test tokenizer and a random tiny model saved as a folder."""

from __future__ import annotations

import pytest

from tests.llm.test_hf_backend import save, tiny_model
from tests.training import make_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def random_dir(tokenizer, tmp_path_factory):
    # a wide init so that greedy continuations differ from prompt to prompt
    return save(tiny_model(tokenizer, init=0.5), tokenizer, tmp_path_factory.mktemp("random"))
