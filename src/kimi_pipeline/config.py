"""Parameter validation at load: each stage's ``parameters_<stage>.yml`` against its pydantic model.

A wrong key or type stops the run before any node starts, with one message naming the key and
the file that set it. Literal secrets in parameters are refused too, because kedro-mlflow logs
every parameter to MLflow: keys belong in ``conf/local/credentials.yml`` or the environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from kimi_pipeline.agents.evaluate import EvaluationConfig
from kimi_pipeline.agents.synthesis import SynthesisConfig
from kimi_pipeline.curation.filtering import FilteringConfig
from kimi_pipeline.gym.run import GymConfig
from kimi_pipeline.tools.config import ToolRepoConfig
from kimi_pipeline.training.base_model import BaseModelConfig
from kimi_pipeline.training.sft import SftConfig

# top-level parameter key -> the model validating it (one entry per stage)
STAGE_CONFIGS: dict[str, type[BaseModel]] = {
    "tool_repo": ToolRepoConfig,
    "synthesis": SynthesisConfig,
    "filtering": FilteringConfig,
    "base_model": BaseModelConfig,
    "sft": SftConfig,
    "sft_evaluation": EvaluationConfig,
    "gym": GymConfig,
}

_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|access_?key|secret(_?key)?|token|password|passwd|credentials?|authorization)$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(r"^(sk-|sk_|hf_|ghp_|gho_|github_pat_|xox[abp]-|AKIA)[A-Za-z0-9_\-]{12,}")


class ParameterError(ValueError):
    """A parameter file does not match its stage's model; the message names key and file."""


def validate_parameters(
    params: dict[str, Any], sources: dict[str, str] | None = None
) -> dict[str, BaseModel]:
    """Validate every stage section present in ``params``; return the parsed models."""
    sources = sources or {}
    secrets = list(find_literal_secrets(params))
    if secrets:
        path = secrets[0]
        raise ParameterError(
            f"parameter '{path}' ({_where(path, sources)}) holds a literal secret; parameters are "
            "logged to MLflow, so put secrets in conf/local/credentials.yml or an environment "
            "variable and name the variable instead (e.g. api_key_env: OPENAI_API_KEY)"
        )
    parsed = {}
    for key, model in STAGE_CONFIGS.items():
        if key not in params:
            continue
        try:
            parsed[key] = model.model_validate(params[key] or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            path = ".".join([key, *(str(p) for p in error["loc"])])
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise ParameterError(
                f"parameter '{path}' in {_where(path, sources)}: {error['msg']}{more}"
            ) from None
    return parsed


def find_literal_secrets(value: Any, prefix: str = "") -> Iterable[str]:
    """Dotted paths of values that look like secrets (by key name or by shape)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, str) and item and _SECRET_KEY.search(str(key)):
                yield path
            else:
                yield from find_literal_secrets(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_literal_secrets(item, f"{prefix}[{index}]")
    elif isinstance(value, str) and _SECRET_VALUE.match(value):
        yield prefix


def parameter_sources(conf_dirs: list[Path]) -> dict[str, str]:
    """Map every dotted parameter path to the file that sets it (later dirs win)."""
    sources: dict[str, str] = {}
    for conf_dir in conf_dirs:
        for path in sorted(conf_dir.glob("**/parameters*.y*ml")):
            data = yaml.safe_load(path.read_text()) or {}
            for dotted in _dotted_paths(data):
                sources[dotted] = str(path)
    return sources


def _dotted_paths(value: Any, prefix: str = "") -> Iterable[str]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _dotted_paths(item, f"{prefix}.{key}" if prefix else str(key))


def _where(path: str, sources: dict[str, str]) -> str:
    """The file that set ``path`` or, for a missing key, the closest parent that exists."""
    parts = re.sub(r"\[\d+\]", "", path).split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in sources:
            return sources[candidate]
        parts.pop()
    return "the run's parameters"
