"""Parameters of the curation steps of the filtering stage, validated at load.

One model per step (dedup, decontamination, balance, SFT format) and ``CurationConfig``
grouping them, so the filtering stage's parameter model can embed the whole set under one key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrajectoryDedupConfig(_Strict):
    """Exact and near-duplicate removal over user requests and whole trajectories."""

    request_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Estimated Jaccard of first-user-message shingles at which two requests are "
        "near duplicates (one changed word in a 30-word request scores ~0.8).",
    )
    trajectory_threshold: float = Field(
        0.85,
        gt=0,
        le=1,
        description="Estimated Jaccard of whole-dialogue shingles (every turn but the system "
        "prompt, with tool calls and results) at which two trajectories are near duplicates.",
    )
    num_perm: int = Field(128, ge=16, description="MinHash permutations per signature.")
    shingle_size: int = Field(
        3, ge=1, description="Word n-gram size of the shingles (whole text when shorter)."
    )


class DecontaminationConfig(_Strict):
    """Word n-gram overlap against gym tasks and held-out evaluation prompts."""

    ngram_size: int = Field(
        13,
        ge=2,
        description="A trajectory sharing one word n-gram of this size with a reference is "
        "contaminated (13, as in GPT-3 and most decontamination since).",
    )
    short_ngram_size: int | None = Field(
        8,
        ge=2,
        description="References shorter than ngram_size words are matched on n-grams of this "
        "smaller size instead (short eval prompts); null: such references are not matched.",
    )
    eval_paths: list[str] = Field(
        default_factory=list,
        description="Held-out evaluation files: JSONL with a 'prompt', 'question' or 'text' "
        "field per line, or plain text with one prompt per line.",
    )


class CapConfig(_Strict):
    """Most examples kept per value of one dimension (a tool name, a domain, a persona)."""

    default: int | None = Field(
        None, ge=0, description="Cap for every value not listed in per_value (null: no cap)."
    )
    per_value: dict[str, int] = Field(
        default_factory=dict, description="Caps for particular values, overriding default."
    )

    def limit(self, value: str) -> int | None:
        return self.per_value.get(value, self.default)

    @property
    def active(self) -> bool:
        return self.default is not None or bool(self.per_value)


class BalanceConfig(_Strict):
    """Token-length limits and caps per tool, domain and persona."""

    min_tokens: int = Field(
        16, ge=0, description="Shorter examples (estimated tokens) are dropped as too short."
    )
    max_tokens: int | None = Field(
        4096, ge=1, description="Longer examples are dropped as too long (null: no limit)."
    )
    chars_per_token: float = Field(
        4.0,
        gt=0,
        description="Token estimate when no tokenizer is given: characters / this (the usual "
        "rule of thumb for BPE vocabularies on English and JSON).",
    )
    per_tool: CapConfig = Field(
        default_factory=CapConfig,
        description="Cap per tool name; an example counts once for each tool it calls.",
    )
    per_domain: CapConfig = Field(
        default_factory=CapConfig, description="Cap per agent domain (needs a 'domain' column)."
    )
    per_persona: CapConfig = Field(
        default_factory=CapConfig, description="Cap per user-simulator persona."
    )


class SftFormatConfig(_Strict):
    """Chat-format output and the agent-level train/validation split."""

    validation_fraction: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Share of agents (not examples) whose examples all go to validation.",
    )
    min_validation_agents: int = Field(
        1,
        ge=0,
        description="With few agents the hash rule may pick none: then the agents with the "
        "smallest hashes fill validation up to this many (always leaving one for train).",
    )
    split_seed: int = Field(
        0, description="Salt of the agent hash; change it to re-draw the split."
    )


class CurationConfig(_Strict):
    """All curation steps of the filtering stage."""

    dedup: TrajectoryDedupConfig = Field(
        default_factory=TrajectoryDedupConfig, description="Duplicate removal."
    )
    decontamination: DecontaminationConfig = Field(
        default_factory=DecontaminationConfig, description="Overlap with evaluation data."
    )
    balance: BalanceConfig = Field(default_factory=BalanceConfig, description="Lengths and caps.")
    sft_format: SftFormatConfig = Field(
        default_factory=SftFormatConfig, description="Output format and split."
    )
