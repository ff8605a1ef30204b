"""The one environment base, shared by synthesis (episodes) and RL (rollouts).

An environment executes the agent's tool calls against a state. The state is plain JSON:
``{collection: {resource_id: {field: value, ...}}}`` (e.g. ``{"orders": {"ORD-1": {...}}}``);
a task's ``initial_state`` is in this form and so is every ``snapshot()``, which is what rubric
predicates are checked against (``envs.state.check_predicate``).

:class:`ToolEnvironment` is the interface and its step pipeline in one: unknown tool → bad JSON
→ schema (a ``Draft202012Validator`` compiled once per tool, ``compile_tool``) → faults → execute,
with every refusal shaped like a real API's (``error_result``: HTTP status, type, message). An
environment supplies only how it loads a state, executes a valid call and takes a snapshot.
Environments plug in through a registry: ``simulated`` (the world model, any tool spec), and
real-execution ones (``sqlite``, ``filesystem``), imported on first use.
"""

from __future__ import annotations

import json
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.envs.semantics import ToolSemantics, infer_semantics
from kimi_pipeline.records import ToolCall, ToolSpec
from kimi_pipeline.registry import Registry

_CACHE_LIMIT = 100_000  # compiled tools kept before the cache starts over


class FaultConfig(BaseModel):
    """Controlled randomness of tool results (rates per call, drawn from the episode seed)."""

    model_config = ConfigDict(extra="forbid")

    transient_error_rate: float = Field(
        0.05, ge=0, le=1,
        description="Retryable failure (HTTP 503 / timeout-like) instead of a result.",
    )
    partial_result_rate: float = Field(
        0.05, ge=0, le=1, description="A list result cut short and flagged as partial."
    )
    empty_result_rate: float = Field(
        0.03, ge=0, le=1, description="A list / search result that comes back empty."
    )
    edge_case_rate: float = Field(
        0.05, ge=0, le=1,
        description="Valid but unusual results: boundary values, unicode names, missing optional "
        "fields.",
    )


@dataclass
class StepResult:
    """What one tool call returned."""

    content: str  # JSON text the agent reads as the tool message
    ok: bool  # False for any error result (validation, not found, injected fault …)
    error: str | None = None  # error kind: invalid_arguments, not_found, unknown_tool, transient …
    fault: str | None = None  # name of the injected fault, if one was injected


# ------------------------------------------------------------------------------------ results


def _dumps(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, default=str)


def ok_result(payload: Any, fault: str | None = None) -> StepResult:
    return StepResult(content=_dumps(payload), ok=True, fault=fault)


def error_result(
    code: int, kind: str, message: str, fault: str | None = None, **extra: Any
) -> StepResult:
    body = {"code": code, "type": kind, "message": message, **extra}
    return StepResult(content=_dumps({"error": body}), ok=False, error=kind, fault=fault)


# injectable failures: kind -> (HTTP status, retryable, message)
ERROR_FAULTS: dict[str, tuple[int, bool, str]] = {
    "transient": (503, True, "service temporarily unavailable, retry later"),
    "timeout": (504, True, "upstream request timed out"),
    "rate_limit": (429, True, "rate limit exceeded, slow down"),
    "server_error": (500, False, "internal server error"),
    "permission_denied": (403, False, "permission denied for this operation"),
    "not_found": (404, False, "resource not found"),
}
SHAPING_FAULTS = ("partial", "empty", "edge_case")  # faults that alter a result, not replace it


def fault_result(kind: str) -> StepResult:
    code, retryable, message = ERROR_FAULTS.get(kind, (500, False, f"injected fault {kind!r}"))
    extra = {"retry_after_s": 1} if kind == "rate_limit" else {}
    return error_result(code, kind, message, fault=kind, retryable=retryable, **extra)


def invalid_arguments(validator: Draft202012Validator, args: dict[str, Any]) -> StepResult:
    """400 with the most relevant schema violation and its JSON path ($.items[0].qty)."""
    err = best_match(validator.iter_errors(args))
    path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [p for p in err.validator_value if p not in err.instance]
        path += f".{missing[0]}" if missing else ""
    return error_result(400, "invalid_arguments", err.message[:500], path=path)



# ------------------------------------------------------------------------------ compiled tools


@dataclass
class CompiledTool:
    """A tool with everything a call needs precomputed: meaning, validators, defaults."""

    spec: ToolSpec
    semantics: ToolSemantics | None = None
    validator: Draft202012Validator | None = None
    output_validator: Draft202012Validator | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None  # why the simulator cannot run this tool, when it cannot


_COMPILED: dict[str, CompiledTool] = {}


def compile_tool(spec: ToolSpec) -> CompiledTool:
    """Compile once per tool id; episodes are many and short, so this is cached."""
    cached = _COMPILED.get(spec.tool_id)
    if cached is not None and (cached.spec is spec or cached.spec == spec):
        return cached
    if len(_COMPILED) >= _CACHE_LIMIT:
        _COMPILED.clear()
    compiled = _COMPILED[spec.tool_id] = _compile(spec)
    return compiled


def _compile(spec: ToolSpec) -> CompiledTool:
    try:
        props = spec.parameters.get("properties") or {}
        output = (
            spec.output_schema
            if isinstance(spec.output_schema, dict) and spec.output_schema
            else None
        )
        return CompiledTool(
            spec=spec,
            semantics=infer_semantics(spec.name, spec.description, spec.parameters),
            validator=Draft202012Validator(
                spec.parameters, format_checker=Draft202012Validator.FORMAT_CHECKER
            ),
            output_validator=Draft202012Validator(output) if output else None,
            defaults={
                k: s["default"] for k, s in props.items() if isinstance(s, dict) and "default" in s
            },
        )
    except Exception as exc:  # any spec compiles; a broken one answers every call with an error
        return CompiledTool(
            spec=spec, problem=f"cannot simulate tool: {type(exc).__name__}: {exc}"[:500]
        )



# --------------------------------------------------------------------------- the step pipeline


class ToolEnvironment(ABC):
    """Every environment: ``reset(tools, state, seed, faults)``, then ``step(call)`` →
    StepResult per call, ``snapshot()`` for the state, ``close()`` at the end of an episode.

    Subclasses provide ``_load_state``, ``_execute`` and ``snapshot``; the pipeline here checks
    the call, injects faults and turns any internal failure into a ``simulator_error`` result.
    """

    kind = "base"  # the registry name (``register_environment``)

    def __init__(self, faults: FaultConfig | None = None):
        self.faults = faults or FaultConfig()
        self.seed = 0
        self.rng = random.Random(0)
        self.tools: dict[str, CompiledTool] = {}
        self._scripted: dict[tuple[str, int], str] = {}
        self._calls: dict[str, int] = {}

    def reset(
        self,
        tools: list[ToolSpec],
        initial_state: dict[str, Any],
        seed: int,
        scripted_faults: list[dict[str, Any]] | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.tools = {t.name: compile_tool(t) for t in self._bundle(tools)}
        self._scripted = _index_faults(scripted_faults or [])
        self._calls = {}
        self._load_state(initial_state or {})

    def step(self, call: ToolCall) -> StepResult:
        try:
            return self._step(call)
        except Exception as exc:  # the simulator's own failure is a result, never a crash
            return error_result(500, "simulator_error", f"{type(exc).__name__}: {exc}"[:500])

    def close(self) -> None:  # noqa: B027 - nothing to release unless a subclass holds resources
        """Release what the episode holds (a database, a temp dir)."""

    # -- pipeline

    def _step(self, call: ToolCall) -> StepResult:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools))[:300]
            return error_result(
                404, "unknown_tool", f"no tool named {call.name!r}; available: {known}"
            )
        if call.raw_arguments is not None:
            return error_result(400, "invalid_json", _json_problem(call.raw_arguments))
        if tool.problem:
            return error_result(500, "simulator_error", tool.problem)
        if not tool.validator.is_valid(call.arguments):
            return invalid_arguments(tool.validator, call.arguments)
        index = self._calls.get(call.name, 0)  # counts well-formed calls of this tool
        self._calls[call.name] = index + 1
        fault = self._scripted.get((call.name, index)) or self._draw_fault(tool)
        if fault and fault not in SHAPING_FAULTS:
            return fault_result(fault)
        return self._execute(tool, call.arguments, fault)

    def _draw_fault(self, tool: CompiledTool) -> str | None:
        rate = self.faults.transient_error_rate
        return "transient" if rate and self.rng.random() < rate else None

    def _bundle(self, tools: list[ToolSpec]) -> list[ToolSpec]:
        return list(tools)

    @abstractmethod
    def _load_state(self, initial_state: dict[str, Any]) -> None:
        """Build the episode's world from the task's initial state."""

    @abstractmethod
    def _execute(self, tool: CompiledTool, args: dict[str, Any], fault: str | None) -> StepResult:
        """Run one validated call (``fault``: a shaping fault to apply, if any)."""

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """The state in canonical form, as a JSON-serialisable copy."""


def _index_faults(scripted: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """{(tool name, call index): fault}; malformed entries are ignored."""
    index = {}
    for entry in scripted:
        try:
            index[(str(entry["tool"]), int(entry.get("call_index", 0)))] = str(
                entry.get("fault", "transient")
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return index


def _json_problem(raw: str) -> str:
    try:
        json.loads(raw)
        return "arguments must be a JSON object"
    except (json.JSONDecodeError, TypeError) as exc:
        return f"arguments are not valid JSON: {exc}"



# --------------------------------------------------------------- real environments' tasks


def environment_tool(
    kind: str, name: str, description: str, properties: dict[str, Any], required: list[str]
) -> ToolSpec:
    """The spec of a real-execution environment's own tool ('env:<kind>/<name>', strict args)."""
    return ToolSpec(
        tool_id=f"env:{kind}/{name}",
        name=name,
        description=description,
        parameters={"type": "object", "properties": properties, "required": required,
                    "additionalProperties": False},
        source="environment",
        source_ref=f"environment:{kind}",
    )


# where each environment is defined: imported on first use, so worker processes need no setup
ENVIRONMENT_MODULES = {
    "simulated": "kimi_pipeline.envs.world",
    "sqlite": "kimi_pipeline.envs.sqlite_env",
    "filesystem": "kimi_pipeline.envs.filesystem_env",
}
_ENVIRONMENTS: Registry[Callable[[FaultConfig], ToolEnvironment]] = Registry(
    "environment", lazy=ENVIRONMENT_MODULES)
register_environment = _ENVIRONMENTS.register


def make_environment(kind: str, faults: FaultConfig | None = None) -> ToolEnvironment:
    return _ENVIRONMENTS.lookup(kind)(faults or FaultConfig())
