"""What every doctor check reads and returns: the run's configuration and one table row.

``DoctorContext`` carries the project, its merged parameters (each stage section validated on
its own, so a bad stage leaves the others checkable), the MLflow settings and the doctor's time
limit; ``CheckResult`` is one row of the table (``ok`` / ``warn`` / ``missing`` with the fix).
``walk`` visits every entry of the nested parameters, which is how checks find the settings
they are about wherever a stage declares them (every ``optimizer``, every ``engine``).
The checks themselves are in ``doctor_checks.py``; nothing here imports Kedro.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "warn", "missing"]


@dataclass
class CheckResult:
    """One row of the doctor's table."""

    check: str  # the registry name, or name:item for one of several rows (mcp:time)
    status: Status  # ok / warn / missing
    detail: str  # what will be used and why
    fix: str = ""  # what to do about a warn / missing row (empty when ok)
    data: dict[str, Any] = field(default_factory=dict)  # machine-readable facts for --json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DoctorContext:
    """What every check may read: the project, its merged configuration, the time limit."""

    project_path: Path  # the Kedro project root (relative config paths are resolved from it)
    env: str  # the Kedro environment read over base (local by default)
    params: dict[str, Any]  # merged parameters, as the run's config loader returns them
    mlflow: dict[str, Any] = field(default_factory=dict)  # merged mlflow.yml
    timeout_s: float = 20.0  # cap on every wait: MCP start-up and calls, HTTP probes
    sources: dict[str, str] = field(default_factory=dict)  # dotted parameter -> file setting it
    config_errors: list[str] = field(default_factory=list)  # config sections that failed to load
    stages: dict[str, Any] = field(default_factory=dict)  # validated stage models by key
    problems: str | None = None  # validate_parameters' message when a stage is invalid
    cache: dict[str, Any] = field(default_factory=dict)  # values shared between checks

    def resolved(self) -> dict[str, Any]:
        """Parameters with every default filled in: each valid stage's dumped model, the raw
        section for a stage that does not validate (or has no model)."""
        return {**self.params, **{key: m.model_dump() for key, m in self.stages.items()}}


def make_context(project_path: Path, env: str, params: dict[str, Any], **extra: Any
                 ) -> DoctorContext:
    """A context with each stage section validated on its own (a bad stage leaves the others
    usable) and ``validate_parameters``' one-line message for the config row."""
    from kimi_pipeline.config import STAGE_CONFIGS, validate_parameters

    ctx = DoctorContext(project_path=Path(project_path), env=env, params=params, **extra)
    for key, model in STAGE_CONFIGS.items():
        try:
            ctx.stages[key] = model.model_validate(params.get(key) or {})
        except ValueError:
            pass
    try:
        validate_parameters(params, ctx.sources)
    except ValueError as exc:
        ctx.problems = str(exc)
    return ctx


def walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any, Any]]:
    """(dotted path, key, value, parent) for every entry of nested dicts and lists."""
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        here = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        yield here, str(key), item, value
        yield from walk(item, here)
