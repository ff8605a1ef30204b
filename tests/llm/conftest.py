"""Fixtures of the backend tests: one torch thread, the test tokenizer, a random tiny model
saved as a folder."""

from __future__ import annotations

import pytest

from kimi_pipeline.llm.hf_backend import cpu_threads
from tests.llm.test_hf_backend import save, tiny_model
from tests.training import make_tokenizer


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one intra-op thread (and do not fight other processes); a
    module asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    with cpu_threads(1):
        yield


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def random_dir(tokenizer, tmp_path_factory):
    # a wide init so that greedy continuations differ from prompt to prompt
    return save(tiny_model(tokenizer, init=0.5), tokenizer, tmp_path_factory.mktemp("random"))
