"""Assemble the tool repository from its three sources: MCP servers, spec files, evolution.

Every candidate, whatever its source, goes through the same normaliser (``normalize``), so a
synthetic tool written by an LLM is held to the same standard as a harvested one. Then exact
and near duplicates are merged (provenance kept), real tools are placed in the taxonomy by
embedding similarity, and the 2-D map of real vs synthetic tools is computed.
"""

from __future__ import annotations

import json
import logging
import random
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from kimi_pipeline.errors import SourceFailedError
from kimi_pipeline.records import QuarantineRecord, ToolSpec
from kimi_pipeline.tools.config import MapConfig, NormaliseConfig, ToolRepoConfig
from kimi_pipeline.tools.dedup import dedup_tools
from kimi_pipeline.tools.embed import make_embedder, nearest, project_2d, tool_text
from kimi_pipeline.tools.normalize import SpecRejected, canonical_schema_key, normalise_tool
from kimi_pipeline.tools.taxonomy import load_taxonomy

STAGE = "tool_repo"
ORIGINAL_LIMIT = 65_536
UNCATEGORISED = "uncategorised"

log = logging.getLogger(__name__)


def quarantine(step: str, source: str, ref: str, reason: str, original: Any) -> QuarantineRecord:
    text = original if isinstance(original, str) else json.dumps(original, default=str)
    return QuarantineRecord(
        stage=STAGE, step=step, source=source, source_ref=ref, reason=reason,
        original=text[:ORIGINAL_LIMIT],
    )


def tools_from_mcp(harvested: Iterable[Any], limits: NormaliseConfig):
    """Harvested MCP tools (``HarvestedTool``) → (ToolSpecs, quarantine records)."""
    tools, rejected, taken = [], [], set()
    for item in harvested:
        raw = item.raw
        ref = f"{item.server}/{raw.get('name', '?')}"
        pre_shape = {
            "name": raw.get("name"),
            "description": raw.get("description"),
            "parameters": raw.get("inputSchema"),
            "output_schema": raw.get("outputSchema"),
        }
        try:
            norm = normalise_tool(pre_shape, limits)
        except SpecRejected as exc:
            rejected.append(quarantine("normalise", "mcp", ref, str(exc), raw))
            continue
        tools.append(norm.to_spec(f"mcp:{item.server}", taken, "mcp", ref))
    return tools, rejected


def failed_servers(servers: Iterable[Any], required: bool = False) -> list[QuarantineRecord]:
    """Each failed MCP server (``ServerReport``) as one warning line and one quarantine row.

    With ``required`` the first failure stops the run instead (``SourceFailedError``).
    """
    rows = []
    for server in servers:
        if server.ok:
            continue
        command = shlex.join(server.command)
        line = (f"MCP server '{server.name}' failed ({server.error}); {server.tools} tools "
                f"harvested; command: {command}")
        if required:
            raise SourceFailedError(f"{line}; stopping because tool_repo.require_all_sources is true")
        log.warning("%s; quarantined, the run goes on with the other sources", line)
        original = {"command": server.command, "tools": server.tools, "pages": server.pages}
        rows.append(quarantine("harvest", "mcp", server.name, server.error or "failed", original))
    return rows


def tools_from_evolution(result: Any, limits: NormaliseConfig):
    """An ``EvolutionResult`` → (ToolSpecs, quarantine records incl. eliminated candidates)."""
    rejected = [
        quarantine("evolve", "synthetic", f"{r.op}", r.reason, r.candidate) for r in result.rejected
    ]
    tools, taken = [], set()
    for candidate in result.tools:
        ref = candidate.get("lineage") or f"{candidate.get('domain')}/{candidate.get('name')}"
        try:
            norm = normalise_tool(candidate, limits)
        except SpecRejected as exc:
            rejected.append(quarantine("normalise", "synthetic", ref, str(exc), candidate))
            continue
        tools.append(norm.to_spec(
            f"synthetic:{candidate['domain']}", taken, "synthetic", ref,
            category=candidate.get("category"), domain=candidate.get("domain"),
            evolution=list(candidate.get("evolution", [])),
        ))
    return tools, rejected


@dataclass
class RepositoryBuild:
    tools: list[ToolSpec]
    map_rows: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def build_repository(sources: list[list[ToolSpec]], config: ToolRepoConfig) -> RepositoryBuild:
    """Dedup all sources, categorise real tools, and compute the map."""
    every = [tool for source in sources for tool in source]
    deduped = dedup_tools(every, config.dedup, canonical_schema_key)
    tools = deduped.tools
    embedder = make_embedder(config.map.embedder, config.map.batch_size)
    domains = [d for c in load_taxonomy() for d in c.domains]
    real = [i for i, t in enumerate(tools) if t.domain is None]
    real_vectors, similarities = _categorise(tools, real, domains, embedder, config.map)
    map_rows = _map(tools, real, real_vectors, embedder, config.map)
    stats = {
        "candidates": len(every),
        "exact_duplicates_merged": deduped.exact_merged,
        "near_duplicates_merged": deduped.near_merged,
        "largest_duplicate_clusters": sorted(deduped.clusters, key=len, reverse=True)[:10],
        "real_tools_categorised": len(real),
        "category_similarity_floor": config.map.min_category_similarity,
        "real_tools_uncategorised": int((similarities < config.map.min_category_similarity).sum()),
    }
    return RepositoryBuild(tools=tools, map_rows=map_rows, stats=stats)


def _categorise(
    tools: list[ToolSpec], real: list[int], domains, embedder, config: MapConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Give each real tool the taxonomy domain nearest in embedding space, when it is at least
    ``min_category_similarity`` similar; otherwise 'uncategorised'. Returns the tools' vectors
    and their best similarities."""
    if not real:
        return np.zeros((0, 1)), np.zeros(0)
    anchors = embedder.encode([f"{d.title}: {d.description}" for d in domains])
    vectors = embedder.encode([tool_text(tools[i].name, tools[i].description) for i in real])
    best, similarity = nearest(vectors, anchors)
    for i, d, sim in zip(real, best, similarity):
        close = sim >= config.min_category_similarity
        category, domain = (domains[d].category, domains[d].slug) if close else (UNCATEGORISED,) * 2
        tools[i] = tools[i].model_copy(update={"category": category, "domain": domain})
    return vectors, similarity


def _map(tools, real, real_vectors, embedder, config: MapConfig) -> list[dict[str, Any]]:
    """2-D coordinates for a seeded sample of real tools (all of them when they fit in half
    the points) and of synthetic ones; the projection never sees more than max_points."""
    rng = random.Random(0)
    shown = sorted(rng.sample(range(len(real)), min(len(real), config.max_points // 2)))
    real_set = set(real)
    synthetic = [i for i in range(len(tools)) if i not in real_set]
    room = config.max_points - len(shown)
    sample = sorted(rng.sample(synthetic, min(room, len(synthetic))))
    vectors = [real_vectors[shown]] if shown else []
    if sample:
        vectors.append(embedder.encode([tool_text(tools[i].name, tools[i].description) for i in sample]))
    if not vectors:
        return []
    xy = project_2d(np.vstack(vectors), config.projection)
    return [
        {"tool_id": tools[i].tool_id, "source": tools[i].source, "category": tools[i].category,
         "x": float(x), "y": float(y)}
        for i, (x, y) in zip([real[k] for k in shown] + sample, xy)
    ]
