"""The critic's rubrics as configuration: what a good answer to a subjective prompt looks like.

The critic compares two answers under a set of rubrics. K2 uses three kinds:

- **core** rubrics state the assistant's basic values (clear and relevant, fluent and engaging,
  objective and grounded); the critic weighs them;
- **prescriptive** rubrics forbid specific reward hacks (opening with praise of the user,
  explaining why one's own answer is good); each is decided in code by a rule of
  ``critic/rules.py``, and a mandatory one loses the comparison on its own;
- **human** rubrics are written by annotators for a context (a prompt category or gym domain).

Rubrics live in ``conf/base/critic_rubrics.yml`` (or a parameters mapping) and are validated
when loaded: a typo in a key, a missing field or a rule that does not exist stops the run
with one line naming the file, the rubric and the key, instead of silently judging with a
rubric that means something else.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from kimi_pipeline.critic.rules import RULES
from kimi_pipeline.errors import UserError

DEFAULT_RUBRICS_FILE = Path("conf/base/critic_rubrics.yml")  # relative to the project root
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


class RubricError(UserError, ValueError):
    """The rubric configuration is invalid; the one-line message names file, rubric and key."""


class CriticRubric(BaseModel):
    """One criterion the critic judges a pair of answers by."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        description="Stable snake_case id (e.g. 'clarity_relevance'); preference pairs cite it."
    )
    title: str = Field(description="Short human-readable title, e.g. 'Clarity & Relevance'.")
    description: str = Field(
        description="What the critic reads: the behaviour the rubric rewards, in plain words."
    )
    kind: Literal["core", "prescriptive", "human"] = Field(
        description="'core': basic values the critic weighs; 'prescriptive': a forbidden "
        "behaviour decided in code by a rule; 'human': written by annotators for a context."
    )
    weight: float = Field(
        1.0, ge=0, description="Relative weight of the rubric when the critic aggregates verdicts."
    )
    mandatory: bool = Field(
        False, description="A violation loses the comparison, whatever the other rubrics say."
    )
    rule: str | None = Field(
        None, description="Name of the registered rule (critic/rules.py) that decides this rubric "
        "in code; required for prescriptive rubrics, optional otherwise."
    )
    contexts: list[str] = Field(
        default_factory=list, description="Open-prompt categories or gym domains the rubric "
        "applies to; empty means every context."
    )

    @field_validator("name")
    @classmethod
    def _snake_case_name(cls, value: str) -> str:
        if not _SNAKE_CASE.match(value):
            raise ValueError(f"rubric name {value!r} is not snake_case (e.g. 'clarity_relevance')")
        return value

    @field_validator("rule")
    @classmethod
    def _registered_rule(cls, value: str | None) -> str | None:
        if value is not None and value not in RULES:
            raise ValueError(f"unknown rule {value!r}; registered rules: {sorted(RULES)}")
        return value

    @model_validator(mode="after")
    def _prescriptive_needs_rule(self) -> "CriticRubric":
        if self.kind == "prescriptive" and self.rule is None:
            raise ValueError(
                f"prescriptive rubric {self.name!r} needs a 'rule' (one of {sorted(RULES)})"
            )
        return self

    def applies_to(self, context: str) -> bool:
        """True when the rubric judges answers in ``context`` (a category or gym domain)."""
        return not self.contexts or context in self.contexts


class RubricSet(BaseModel):
    """Every rubric the critic knows, checked as a whole."""

    model_config = ConfigDict(extra="forbid")

    rubrics: list[CriticRubric] = Field(description="The rubrics, in the order they are shown.")

    @model_validator(mode="after")
    def _coherent(self) -> "RubricSet":
        repeated = sorted(n for n, c in Counter(r.name for r in self.rubrics).items() if c > 1)
        if repeated:
            raise ValueError(f"duplicate rubric name(s) {repeated}; names must be unique")
        if not any(r.kind == "core" for r in self.rubrics):
            raise ValueError("no core rubric; the critic needs at least one kind: core rubric")
        if not any(r.weight > 0 for r in self.rubrics):
            raise ValueError("every rubric weight is 0; at least one must be positive")
        return self

    @property
    def names(self) -> list[str]:
        """Rubric names in order."""
        return [r.name for r in self.rubrics]

    def get(self, name: str) -> CriticRubric:
        """The rubric called ``name`` (``KeyError`` naming the known ones otherwise)."""
        for rubric in self.rubrics:
            if rubric.name == name:
                return rubric
        raise KeyError(f"no rubric {name!r}; known: {self.names}")

    def for_context(self, context: str) -> list[CriticRubric]:
        """The rubrics that apply to answers in ``context`` (category or gym domain)."""
        return [r for r in self.rubrics if r.applies_to(context)]

    def with_rules(self, context: str | None = None) -> list[CriticRubric]:
        """The rubrics decided in code (those with a rule), optionally for one context."""
        chosen = self.rubrics if context is None else self.for_context(context)
        return [r for r in chosen if r.rule]


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise RubricError(f"critic rubrics file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise RubricError(f"critic rubrics file {path} is not valid YAML{where}") from None


def _rubric_label(data: Any, index: int) -> str:
    """'rubric 'name' (#index)' when the entry has a name, else 'rubric #index'."""
    entries = data.get("rubrics") if isinstance(data, Mapping) else None
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"rubric {name!r} (#{index})" if isinstance(name, str) else f"rubric #{index}"


def _describe(error: Mapping[str, Any], data: Any) -> str:
    """One validation error as 'where: what', naming the rubric and the key."""
    loc = list(error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (allowed: " + ", ".join(CriticRubric.model_fields) + ")"
        if len(loc) < 3:
            message = "unknown top-level key (allowed: rubrics)"
    elif error["type"] == "missing":
        message = "missing required key"
    if len(loc) >= 2 and loc[0] == "rubrics" and isinstance(loc[1], int):
        key = f" key {'.'.join(map(str, loc[2:]))!r}" if len(loc) > 2 else ""
        return f"{_rubric_label(data, loc[1])}{key}: {message}"
    key = f"key {'.'.join(map(str, loc))!r}: " if loc else ""
    return f"{key}{message}"


def load_rubrics(data: Mapping[str, Any] | str | Path) -> RubricSet:
    """Validated rubrics from a mapping (e.g. parameters) or a YAML file path.

    Every problem is reported in one ``RubricError`` (a ``ValueError``) line that names the
    file, the rubric (by name, else by index) and the offending key.
    """
    source = "critic rubrics"
    if isinstance(data, (str, Path)):
        source = f"critic rubrics file {data}"
        data = _read_yaml(Path(data))
    if not isinstance(data, Mapping):
        raise RubricError(f"{source}: expected a mapping with a 'rubrics' list, got "
                          f"{type(data).__name__}")
    try:
        return RubricSet.model_validate(dict(data))
    except ValidationError as exc:
        problems = [_describe(error, data) for error in exc.errors()]
        raise RubricError(" ".join(f"{source}: {'; '.join(problems)}".split())) from None
