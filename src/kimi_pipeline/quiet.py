"""Quiet start: the known library warnings that every run printed, each handled at its source.

* Our ``${env_or:…}`` resolver and kedro-mlflow's ``km.random_name`` are registered with
  OmegaConf's current ``register_resolver`` before Kedro's config loader or the kedro-mlflow
  hook would register them with the deprecated ``register_new_resolver``.
* Kedro's config loader itself still registers its ``globals``/``runtime_params`` resolvers
  the deprecated way; that one deprecation is filtered, for that module only.
* MLflow warns at import that kedro-mlflow's ``KedroPipelineModel.predict`` has no type hints;
  that one message is filtered. MLflow raises it inside its own ``catch_warnings`` (which
  replaces the process's warning filters), so it is dropped where Kedro routes warnings: a
  filter on the ``py.warnings`` logger. Every other warning still shows.

The filters must be in place before Kedro loads its plugins (kedro-mlflow imports MLflow's model
code), so ``filter_library_warnings`` is a ``kedro.init`` entry point (pyproject.toml), which
``kedro`` runs first; the package's ``__init__`` installs them too for library use.
* Kedro's note on ``--pipeline`` is avoided by the project's ``run`` (``kimi_pipeline.cli``).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import Any

from omegaconf import OmegaConf


def env_or(name: str, default: Any = None) -> Any:
    """``${env_or:NAME,default}``: the environment variable NAME, else ``default`` (which
    OmegaConf may already have parsed, e.g. an int)."""
    return os.environ.get(name, default)


def register_resolvers() -> None:
    """Register the project's resolvers (and kedro-mlflow's) the current OmegaConf way."""
    if not OmegaConf.has_resolver("env_or"):
        OmegaConf.register_resolver("env_or", env_or)
    if not OmegaConf.has_resolver("km.random_name"):
        from kedro_mlflow.config.resolvers import resolve_random_name

        OmegaConf.register_resolver("km.random_name", resolve_random_name, use_cache=True)


_KNOWN = [
    (r".*register_new_resolver\(\) is deprecated", r"kedro\.config\.omegaconf_config"),
    (r".*Add type hints to the `predict` method", r""),
]


def filter_library_warnings() -> None:
    """Ignore exactly the known library warnings that cannot be fixed from this project."""
    for message, module in _KNOWN:
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=module)
    captured = logging.getLogger("py.warnings")
    if not any(isinstance(f, KnownWarnings) for f in captured.filters):
        captured.addFilter(KnownWarnings())


class KnownWarnings(logging.Filter):
    """Drops the log records of the known library warnings (Kedro logs warnings)."""

    _pattern = re.compile("|".join(f"(?:{message})" for message, _ in _KNOWN), re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self._pattern.search(record.getMessage())
