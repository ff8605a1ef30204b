"""The records that pass between stages: the contracts of the pipeline.

Every stage reads and writes these pydantic models and nothing else is shared implicitly.
Each record carries a ``schema_version``; a record written under another major version is
refused with a clear message instead of being half-understood.

Tabular catalog entries (Parquet via polars) store one record per row: scalar fields as
columns, nested fields (schemas, message lists, dicts) as JSON strings. ``to_frame`` and
``from_frame`` do that mapping, and ``from_frame`` quarantines rows that fail validation
instead of crashing the reading stage.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SCHEMA_VERSION = "1.0"


class Record(BaseModel):
    """Base of every contract record: strict keys, JSON round-trip, schema version."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: str = Field(
        SCHEMA_VERSION, description="Version of the record schema this row was written under."
    )

    @field_validator("schema_version")
    @classmethod
    def _same_major_version(cls, value: str) -> str:
        if value.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"record schema version {value!r} is not readable by this release "
                f"(reads {SCHEMA_VERSION.split('.')[0]}.x); re-run the stage that wrote it"
            )
        return value

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> "Record":
        return cls.model_validate_json(text)


# --------------------------------------------------------------------------------------- tools


class ToolSpec(Record):
    """One callable tool, normalised to strict JSON Schema (Draft 2020-12)."""

    tool_id: str = Field(
        description="Unique id, namespaced by source: 'mcp:<server>/<name>', "
        "'file:<file>/<name>', 'synthetic:<domain>/<name>' or 'env:<environment>/<name>'."
    )
    name: str = Field(description="Function name shown to the model (^[A-Za-z0-9_.-]{1,64}$).")
    description: str = Field(description="What the tool does, as the model will read it.")
    parameters: dict[str, Any] = Field(
        description="JSON Schema (Draft 2020-12) of the arguments; always an object schema."
    )
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema of the result when the source declares one."
    )
    source: Literal["mcp", "file", "synthetic", "environment"] = Field(
        description="Where the tool came from ('environment': a real-execution environment's own tool)."
    )
    source_ref: str = Field(
        description="Provenance: MCP server name, file path (+ index) or evolution lineage."
    )
    category: str | None = Field(None, description="Top-level category of the tool taxonomy.")
    domain: str | None = Field(None, description="Application domain within the category.")
    fixes: list[str] = Field(
        default_factory=list, description="Every repair the normaliser applied to the raw spec."
    )
    merged_from: list[str] = Field(
        default_factory=list,
        description="Provenance of duplicates merged into this tool (their source refs).",
    )
    evolution: list[str] = Field(
        default_factory=list,
        description="Evol operations applied to synthetic tools, oldest first (e.g. 'depth:add_constraint').",
    )

    def as_openai_tool(self) -> dict[str, Any]:
        """The OpenAI function-calling form Hugging Face chat templates consume."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class QuarantineRecord(Record):
    """An input a stage could not use, kept with the precise reason instead of vanishing."""

    stage: str = Field(description="Pipeline stage that refused the input (e.g. 'tool_repo').")
    step: str = Field(description="Step inside the stage (e.g. 'ingest', 'normalise', 'evolve').")
    source: str = Field(description="Kind of origin (file, mcp, synthetic, catalog …).")
    source_ref: str = Field(description="Where exactly: file path and index, server name, row id.")
    reason: str = Field(description="Why it was refused, precise enough to fix the input.")
    original: str = Field(description="The input as received (JSON or text; cut at 64 KiB).")


# ------------------------------------------------------------------------------ conversations


class ToolCall(Record):
    """A call the assistant made to one of its tools."""

    id: str = Field(description="Call id linking the call to its tool result message.")
    name: str = Field(description="Tool name as offered to the agent.")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Parsed arguments (empty when they did not parse)."
    )
    raw_arguments: str | None = Field(
        None, description="Arguments text as the model wrote it, kept when it was not valid JSON."
    )


class Message(Record):
    """One chat message in the OpenAI / Hugging Face chat format."""

    role: Literal["system", "user", "assistant", "tool"] = Field(description="Speaker.")
    content: str | None = Field(None, description="Text; may be empty for pure tool-call turns.")
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="Tool calls of an assistant turn."
    )
    tool_call_id: str | None = Field(None, description="For role 'tool': the call answered.")
    name: str | None = Field(None, description="For role 'tool': the tool that answered.")


# ------------------------------------------------------------------------------ agents, tasks


class Agent(Record):
    """A synthesised agent: a system prompt plus the tool bundle it may use."""

    agent_id: str = Field(description="Unique id.")
    category: str = Field(description="Category of the bundle's main domain.")
    domain: str = Field(description="Main domain of the bundle.")
    system_prompt: str = Field(description="Role, policies, constraints and tone of the agent.")
    tool_ids: list[str] = Field(description="Tools of the bundle (tool_repository ids).")
    distractor_tool_ids: list[str] = Field(
        default_factory=list, description="Subset of tool_ids from other domains, never needed."
    )
    environment: str = Field(
        "simulated", description="World the tools run in: 'simulated', 'sqlite' or 'filesystem'."
    )
    seed: int = Field(description="Seed the agent was sampled with.")


class StatePredicate(Record):
    """A check over the final environment state, e.g. an order exists with status 'cancelled'."""

    path: str = Field(description="Collection or resource path in the state snapshot.")
    op: Literal["exists", "absent", "equals", "count_equals", "contains"] = Field(
        description="Comparison applied at the path."
    )
    value: Any = Field(None, description="Expected value for equals / count_equals / contains.")
    field: str | None = Field(None, description="Field of the resource compared, if any.")


class ExpectedCall(Record):
    """A tool call the rubric expects (arguments partially specified)."""

    name: str = Field(description="Tool name.")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Arguments that must match exactly; others are free."
    )


class TaskRubric(Record):
    """How a task is judged: state, facts, tool-use pattern, checkpoints, difficulty."""

    success_criteria: list[str] = Field(
        default_factory=list, description="Human-readable criteria, one sentence each."
    )
    state_predicates: list[StatePredicate] = Field(
        default_factory=list, description="Predicates the final state must satisfy."
    )
    required_facts: list[str] = Field(
        default_factory=list, description="Facts (strings) the final answer must state."
    )
    required_calls: list[ExpectedCall] = Field(
        default_factory=list, description="Calls that must appear."
    )
    forbidden_calls: list[str] = Field(
        default_factory=list, description="Tool names that must not be called."
    )
    order_constraints: list[tuple[str, str]] = Field(
        default_factory=list, description="(before, after) pairs of tool names."
    )
    checkpoints: list[str] = Field(
        default_factory=list, description="Intermediate milestones a grader checks in order."
    )
    expected_outcome: Literal["complete", "ask_user", "refuse_unsupported"] = Field(
        "complete", description="What a good agent ends with."
    )
    difficulty: Literal["easy", "medium", "hard"] = Field(description="Difficulty label.")


class Task(Record):
    """A user goal for one agent, with the rubric it is judged by."""

    task_id: str = Field(description="Unique id.")
    agent_id: str = Field(description="Agent this task is written for.")
    kind: Literal[
        "single_call", "chained", "conditional", "error_recovery", "missing_argument", "unsupported"
    ] = Field(description="Shape of the task.")
    request: str = Field(description="The user's opening request.")
    hidden_info: dict[str, Any] = Field(
        default_factory=dict, description="Facts the user simulator reveals only when asked."
    )
    plan: list[ExpectedCall] = Field(
        default_factory=list,
        description="Reference solution: the calls in order. An argument value '$ref:<i>.<field>' "
        "means 'field <field> of the JSON result of plan step <i>' (chained calls).",
    )
    initial_state: dict[str, Any] = Field(
        default_factory=dict,
        description="World the episode starts from: {collection: {resource_id: {field: value}}}.",
    )
    scripted_faults: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Faults the environment must inject for this task (error-recovery tasks): "
        "[{'tool': name, 'call_index': n-th call of that tool (0-based), 'fault': kind}].",
    )
    rubric: TaskRubric = Field(description="How success is judged.")
    seed: int = Field(description="Seed the task was generated with.")


class TrajectoryOutcome(Record):
    """What happened in an episode, as the generator knows it (before any judge)."""

    finished: bool = Field(description="Dialogue ended normally (not cut by limits/errors).")
    end_reason: str = Field(description="Why the dialogue ended (user satisfied, gave up, …).")
    injected_faults: list[str] = Field(
        default_factory=list, description="Environment faults injected (transient error, empty …)."
    )
    agent_imperfections: list[str] = Field(
        default_factory=list,
        description="Imperfections the offline agent injected on purpose (ground truth for judges).",
    )
    agent_corrections: list[str] = Field(
        default_factory=list,
        description="Mistakes the offline agent made on purpose and corrected after the error "
        "(missing_argument, unexpected_argument, unknown_tool, unknown_id); the trajectory is "
        "still correct.",
    )
    errors: list[str] = Field(
        default_factory=list, description="Recorded failures (bad tool-call JSON, timeouts …)."
    )


class Trajectory(Record):
    """A full multi-turn episode between user simulator, agent and tool environment."""

    trajectory_id: str = Field(description="Unique id (stable for a given task and seed).")
    task_id: str = Field(description="Task played.")
    agent_id: str = Field(description="Agent that played it.")
    messages: list[Message] = Field(description="System, user, assistant and tool messages.")
    tools: list[dict[str, Any]] = Field(description="Tools offered, OpenAI function format.")
    initial_state: dict[str, Any] = Field(description="Environment state before the episode.")
    final_state: dict[str, Any] = Field(description="Environment state after the episode.")
    rubric: TaskRubric = Field(
        description="Rubric of the task (copied for self-contained judging).")
    outcome: TrajectoryOutcome = Field(description="What the generator knows happened.")
    persona: str = Field(description="User-simulator persona.")
    environment: str = Field(description="World kind: simulated, sqlite, filesystem.")
    seed: int = Field(description="Episode seed.")
    backend: str = Field(description="LLM backend that played the agent (offline, openai, hf).")
    prompt_tokens: int = Field(0, description="Tokens sent to the agent model, summed.")
    completion_tokens: int = Field(0, description="Tokens produced by the agent model, summed.")
    latency_s: float = Field(0.0, description="Wall time of the episode.")


class SftExample(Record):
    """One training example: a filtered trajectory in the chat format HF templates with tools read."""

    example_id: str = Field(description="Unique id (the trajectory id it came from).")
    trajectory_id: str = Field(description="Source trajectory.")
    agent_id: str = Field(description="Agent of the trajectory (train/validation split key).")
    split: Literal["train", "validation"] = Field(description="Which split the example is in.")
    messages: list[dict[str, Any]] = Field(
        description="OpenAI chat messages: system, user, assistant (with 'tool_calls': "
        "[{'id', 'type': 'function', 'function': {'name', 'arguments': dict}}]) and tool results "
        "('role': 'tool', 'tool_call_id', 'name', 'content'). An assistant message with "
        "'train': false is context only: a refused call the agent corrected next, no labels."
    )
    tools: list[dict[str, Any]] = Field(description="Tools offered, OpenAI function format.")
    judge_score: float = Field(description="Rubric-judge score in [0, 1] the example passed with.")
    domain: str = Field("", description="Main domain of the agent (for balancing and reports).")
    persona: str = Field("", description="User-simulator persona of the dialogue.")


# ----------------------------------------------------------------------------------------- gym


class GymTask(Record):
    """One verifiable problem of the gym."""

    task_id: str = Field(description="Unique id.")
    domain: str = Field(description="Registered gym domain (math, logic, instruction, …).")
    prompt: str = Field(description="What the policy is asked.")
    answer: Any = Field(None, description="Reference answer / verifier data (domain-specific).")
    tags: list[str] = Field(default_factory=list, description="Coverage tags.")
    difficulty: int = Field(1, description="Generator difficulty level (domain-specific scale).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Verifier inputs.")


class GymResult(Record):
    """One verified rollout: binary reward with its reason."""

    task_id: str = Field(description="Task verified.")
    domain: str = Field(description="Its domain.")
    sample_index: int = Field(0, description="Which of the k samples.")
    response: str = Field(description="The policy's text.")
    reward: float = Field(description="1.0 correct, 0.0 not.")
    reason: str = Field(description="Why the verifier decided so.")
    latency_s: float = Field(0.0, description="Verification wall time.")
    details: dict[str, Any] = Field(default_factory=dict, description="Verifier specifics.")


class PreferencePair(Record):
    """Two responses to one prompt, which one is preferred, and who decided (the critic's data)."""

    pair_id: str = Field(description="Unique id.")
    group_id: str = Field(
        description="The gym task or open prompt both responses answer; held-out splits are "
        "made by group, so no prompt is both trained on and measured."
    )
    domain: str = Field(description="Gym domain, or open-prompt category, of the prompt.")
    prompt: str = Field(description="What both responses answer.")
    chosen: str = Field(description="Preferred response.")
    rejected: str = Field(description="Other response.")
    rubrics: list[str] = Field(
        default_factory=list, description="Names of the critic rubrics the preference concerns."
    )
    source: Literal["verifier", "rule", "synthetic", "critic", "human"] = Field(
        description="Who decided: a gym verifier (chosen passed, rejected failed), a "
        "prescriptive rule, a synthesised degradation of the chosen text, the critic, a person."
    )
    reasons: list[str] = Field(default_factory=list, description="Why chosen beats rejected.")
    split: Literal["train", "heldout"] = Field(
        "train", description="'heldout' pairs are never trained on (agreement is measured there)."
    )


class OpenPrompt(Record):
    """A prompt without a verifiable answer (creative writing, open questions, advice …)."""

    prompt_id: str = Field(description="Unique id.")
    category: str = Field(
        description="creative_writing, open_qa, advice or explanation: which rubrics apply."
    )
    persona: str = Field("", description="Who is asking (shapes tone and content).")
    prompt: str = Field(description="The user's message.")
    source: Literal["seed", "generated"] = Field(
        description="A hand-written seed or the generator's expansion of one."
    )


# --------------------------------------------------------------------------- frames <-> records

R = TypeVar("R", bound=Record)

_SCALARS = (str, int, float, bool)


def _is_scalar(annotation: Any) -> bool:
    """True when a field can be a plain column (str/int/float/bool, Literal, or Optional of one)."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return all(isinstance(arg, _SCALARS) for arg in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return len(args) == 1 and _is_scalar(args[0])
    return annotation in _SCALARS


def json_columns(cls: type[Record]) -> list[str]:
    """Fields of ``cls`` stored as JSON strings in a frame."""
    return [name for name, f in cls.model_fields.items() if not _is_scalar(f.annotation)]


def to_rows(records: typing.Iterable[Record]) -> list[dict[str, Any]]:
    """Flatten records into frame rows (nested fields as JSON strings)."""
    rows = []
    for record in records:
        nested = set(json_columns(type(record)))
        data = record.model_dump(mode="json")
        rows.append(
            {k: json.dumps(v, ensure_ascii=False) if k in nested else v for k, v in data.items()}
        )
    return rows


def to_frame(records: typing.Iterable[Record], cls: type[Record]):
    """Records → polars DataFrame with a stable column order (also for an empty list)."""
    import polars as pl

    schema = {
        name: (pl.Utf8 if name in json_columns(cls) else _polars_type(f.annotation))
        for name, f in cls.model_fields.items()
    }
    return pl.DataFrame(to_rows(records), schema=schema, orient="row")


def _polars_type(annotation: Any):
    import polars as pl

    args = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
    base = args[0]
    if typing.get_origin(base) is Literal:
        base = type(typing.get_args(base)[0])
    return {bool: pl.Boolean, int: pl.Int64, float: pl.Float64}.get(base, pl.Utf8)


def from_frame(df, cls: type[R], stage: str) -> tuple[list[R], list[QuarantineRecord]]:
    """Validate each row of ``df`` as ``cls``; rows that fail become quarantine records."""
    nested = set(json_columns(cls))
    good: list[R] = []
    bad: list[QuarantineRecord] = []
    for index, row in enumerate(df.iter_rows(named=True)):
        try:
            data = {k: (json.loads(v) if k in nested and isinstance(v, str) else v) for k, v in row.items()}
            good.append(cls.model_validate(data))
        except (ValidationError, json.JSONDecodeError) as exc:
            bad.append(
                QuarantineRecord(
                    stage=stage,
                    step="read",
                    source="catalog",
                    source_ref=f"{cls.__name__} row {index}",
                    reason=_one_line(exc),
                    original=json.dumps(row, default=str)[:65536],
                )
            )
    return good, bad


def split_valid(df, cls: type[R], stage: str, batch: int = 5000):
    """Keep ``df`` a compact frame: the rows that validate as ``cls``, plus quarantine records for
    the others; validated a batch at a time so memory does not grow with the frame."""
    import polars as pl

    bad: list[QuarantineRecord] = []
    keep = []
    for offset in range(0, df.height, batch):
        _, rejected = from_frame(df.slice(offset, batch), cls, stage)
        rows = {int(r.source_ref.rsplit(" ", 1)[1]) for r in rejected}
        keep += [i not in rows for i in range(min(batch, df.height - offset))]
        for record in rejected:
            record.source_ref = f"{cls.__name__} row {offset + int(record.source_ref.rsplit(' ', 1)[1])}"
        bad += rejected
    return df.filter(pl.Series(keep, dtype=pl.Boolean)) if df.height else df, bad


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<record>'}: {err['msg']}" for err in exc.errors()
        )
    return str(exc)
