"""Parameter validation at load: each stage's ``parameters_<stage>.yml`` against its pydantic model.

A wrong key or type stops the run before any node starts, with one message naming every bad key
and the file that set it. Literal secrets in parameters are refused too, because kedro-mlflow
logs every parameter to MLflow (and tags the run with some): keys belong in
``conf/local/credentials.yml`` or the environment. A secret is recognised by its key
(``api_key``, ``token`` …) or by its shape anywhere in a string: credentials in a URL
(``https://user:pass@host``, ``?token=…``), a bearer token, an API-key-shaped string, a JWT, a
private key. The message names the key and the kind of secret, never the value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, ValidationError

from kimi_pipeline.agents.evaluate import EvaluationConfig
from kimi_pipeline.agents.synthesis import SynthesisConfig
from kimi_pipeline.critic.run import CriticConfig
from kimi_pipeline.curation.filtering import FilteringConfig
from kimi_pipeline.errors import UserError
from kimi_pipeline.gym.demos import DemoConfig
from kimi_pipeline.gym.run import GymConfig
from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.tools.config import ToolRepoConfig
from kimi_pipeline.training.base_model import BaseModelConfig
from kimi_pipeline.training.sft import SftConfig

# top-level parameter key -> the model validating it (one entry per stage)
STAGE_CONFIGS: dict[str, type[BaseModel]] = {
    "tool_repo": ToolRepoConfig,
    "synthesis": SynthesisConfig,
    "filtering": FilteringConfig,
    "base_model": BaseModelConfig,
    "sft_demos": DemoConfig,
    "sft": SftConfig,
    "sft_evaluation": EvaluationConfig,
    "gym": GymConfig,
    "critic": CriticConfig,
    "rl": RLConfig,
}

_SECRET_KEY = re.compile(
    r"(^|_)(api_?key|access_?key|secret(_?key)?|token|password|passwd|credentials?|authorization)$",
    re.IGNORECASE,
)
# secret shapes searched for inside any string value, each with the words used to name it
_SECRET_SHAPES: list[tuple[str, re.Pattern[str]]] = [
    ("credentials in a URL (user:password@)",
     re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)),
    ("a credential in a URL query",
     re.compile(r"[?&](api[_-]?key|access[_-]?token|token|secret|password|sig|signature)=[^&#\s]+",
                re.IGNORECASE)),
    ("a bearer / basic authorization credential",
     # a 16+ character credential with a digit in it, so prose ("basic understanding") passes
     re.compile(r"\b(bearer|basic)\s+(?=[A-Za-z0-9._~+/\-]{16,})[A-Za-z._~+/\-]*\d", re.IGNORECASE)),
    ("an API-key-shaped string",
     re.compile(r"(?<![A-Za-z0-9])(sk-|sk_|hf_|ghp_|gho_|ghu_|ghs_|ghr_|github_pat_|glpat-|npm_|"
                r"xox[abprs]-|AKIA|ASIA|AIza|pypi-)[A-Za-z0-9_\-]{12,}")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
]


class ParameterError(UserError, ValueError):
    """Parameters do not match their stage's model, or hold a secret; the message names every
    offending key with the file that set it (and never echoes a secret's value)."""


def validate_parameters(
    params: dict[str, Any], sources: dict[str, str] | None = None
) -> dict[str, BaseModel]:
    """Validate every stage section present in ``params``; return the parsed models.

    All problems are collected first (every secret, every wrong key or type in every stage),
    so one run shows everything to fix, in one ``ParameterError`` line.
    """
    sources = sources or {}
    problems = [
        f"parameter '{path}' ({_where(path, sources)}) holds a literal secret ({kind})"
        for path, kind in find_secrets(params)
    ]
    if problems:
        problems[-1] += (
            "; parameters are logged to MLflow, so put secrets in conf/local/credentials.yml or "
            "an environment variable and name the variable instead (e.g. api_key_env: OPENAI_API_KEY)"
        )
    parsed = {}
    for key, model in STAGE_CONFIGS.items():
        if key not in params:
            continue
        try:
            parsed[key] = model.model_validate(params[key] or {})
        except ValidationError as exc:
            for error in exc.errors():
                path = ".".join([key, *(str(p) for p in error["loc"])])
                problems.append(f"parameter '{path}' in {_where(path, sources)}: {error['msg']}")
    if problems:
        head = f"{len(problems)} parameter problems: " if len(problems) > 1 else ""
        raise ParameterError(head + "; ".join(problems))
    return parsed


def find_literal_secrets(value: Any, prefix: str = "") -> Iterable[str]:
    """Dotted paths of values that look like secrets (by key name or by shape)."""
    return [path for path, _ in find_secrets(value, prefix)]


def find_secrets(value: Any, prefix: str = "") -> Iterable[tuple[str, str]]:
    """(dotted path, what kind of secret) for every value that holds one: a non-empty string
    under a secret-like key, or any string containing a secret's shape (URL credentials, a
    bearer token, an API-key-shaped string, a JWT, a private key)."""
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, str) and item and _SECRET_KEY.search(str(key)):
                yield path, f"a value under the secret-like key '{key}'"
            else:
                yield from find_secrets(item, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from find_secrets(item, f"{prefix}[{index}]")
    elif isinstance(value, str):
        kind = secret_kind(value)
        if kind:
            yield prefix, kind


def secret_kind(text: str) -> str | None:
    """What kind of secret ``text`` contains (None when it holds none of the known shapes)."""
    for kind, shape in _SECRET_SHAPES:
        if shape.search(text):
            return kind
    return None


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
