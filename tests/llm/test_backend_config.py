"""A backend block of the parameters is a union keyed on ``kind``: each kind takes only its own
fields, so a misplaced field or an unknown kind fails at load with its name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kimi_pipeline.llm.base import HFBackendConfig, OfflineBackendConfig, backend_config


def test_a_backend_block_takes_only_the_fields_of_its_kind():
    assert isinstance(backend_config({}), OfflineBackendConfig)  # no kind: offline, as before
    assert isinstance(backend_config({"kind": "hf", "max_batch_size": 4}), HFBackendConfig)
    with pytest.raises(ValidationError, match=r"openai\.max_batch_size"):
        backend_config({"kind": "openai", "max_batch_size": 4})  # an hf field on an endpoint
    with pytest.raises(ValidationError, match="kind must be one of: offline, openai, hf"):
        backend_config({"kind": "vllm"})
