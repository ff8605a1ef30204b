"""A dataset that may not exist yet: loads as ``None`` instead of failing.

The filtering stage decontaminates against the gym's tasks *when a gym run has left some*;
the gym runs later in the DAG, so filtering reads them through this wrapper under another
catalog name (one name would make the DAG cyclic). Saves go to the wrapped dataset, so a
stage can also write an output that a later stage merely profits from when it is there
(``sft_evaluation``: rl reuses the figures of sft_model's evaluation, and plays the episodes
itself in a catalog whose SFT stage never evaluated).
"""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset, DatasetError, parse_dataset_definition


class OptionalDataset(AbstractDataset[Any, Any]):
    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        dataset_class, dataset_args = parse_dataset_definition(dict(dataset))
        self._dataset = dataset_class(**dataset_args)
        self.metadata = metadata

    def load(self) -> Any:
        try:
            return self._dataset.load()
        except DatasetError:  # nothing saved yet (no version, no file)
            return None

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}
