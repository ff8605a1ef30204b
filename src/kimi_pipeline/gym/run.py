"""Run the gym on a policy: generate tasks, sample k responses each, verify, score, pick RL prompts.

This is the library behind the ``gym`` stage (the Kedro nodes only move catalog data in and
out), usable as well from a notebook with any policy:

1. ``generate_tasks``: each configured domain draws its tasks per difficulty level from its own
   seeded ``random.Random(f"{seed}:{domain}:{level}")``, so adding a domain or changing one
   count leaves every other domain's tasks unchanged. Repeated prompts (small pools such as the
   coding problems or level-1 safety seeds) are dropped, since a repeat only re-weights a task.
2. ``roll_out``: the policy — any callable ``(prompts, num_samples) -> k texts per prompt``, in
   the stage the SFT model through the ``hf`` backend's batched, KV-cached ``generate`` — writes
   k samples per task; then each domain verifies its responses through ``verify_many`` in
   chunks (the coding sandbox runs a chunk in parallel). A verifier that raises never ends the
   run: its chunk is re-verified one response at a time and the failing response gets reward 0
   with the exception as its reason. A domain named in ``judges`` is verified by a
   ``with_judge(backend)`` copy asking that LLM backend; the registered domain is never changed.
3. ``score``: unbiased pass@k per task, domain, domain × level and tag (``passk.passk_table``),
   and the RL prompts: the tasks whose pass rate (correct / k) lies in the moderate band
   (``passk.moderate``), as K2 keeps only prompts the SFT model sometimes but not always solves.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kimi_pipeline.gym.passk import moderate, passk_table
from kimi_pipeline.gym.registry import (
    DOMAIN_MODULES, Domain, Verification, all_domains, error_line, get_domain,
)
from kimi_pipeline.llm.base import (
    BackendConfig,
    ChatRequest,
    complete_many,
    HFBackendConfig,
    make_backend,
)
from kimi_pipeline.records import GymResult, GymTask

# the policy: chat prompts (OpenAI message lists) and k -> k sampled texts per prompt
Policy = Callable[[list[list[dict[str, str]]], int], list[list[str]]]
Progress = Callable[[int], None]


class BandConfig(BaseModel):
    """The moderate-difficulty band of the RL prompts."""

    model_config = ConfigDict(extra="forbid")

    low: float = Field(0.1, ge=0.0, le=1.0, description="Lowest pass rate (correct/k) kept.")
    high: float = Field(0.9, ge=0.0, le=1.0, description="Highest pass rate (correct/k) kept.")

    @model_validator(mode="after")
    def _ordered(self) -> "BandConfig":
        if self.low > self.high:
            raise ValueError(f"band low ({self.low}) must not exceed high ({self.high})")
        return self


class GymConfig(BaseModel):
    """Everything the gym pipeline reads from ``parameters_gym.yml``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of task generation (each domain and level derives its own).")
    domains: dict[str, list[int]] = Field(
        description="The domains to include, each with its task counts per difficulty level, "
        "lowest level first (e.g. math: [14, 13, 13] for levels 1, 2, 3); a list, so an "
        "environment replaces it whole; [] leaves a domain out. Registered domains: "
        + ", ".join(sorted(DOMAIN_MODULES)) + "."
    )
    samples: int = Field(4, ge=1, description="k: responses sampled from the policy per task.")
    pass_k: list[int] = Field(
        default_factory=lambda: [1], description="The k of the pass@k reported, besides `samples` "
        "itself (each must be <= samples)."
    )
    temperature: float = Field(1.0, ge=0.0, description="Sampling temperature of the policy.")
    max_new_tokens: int = Field(128, ge=1, description="Longest response, in tokens.")
    system_prompt: str | None = Field(
        None, description="A system message put before every task prompt; null for none."
    )
    generation_seed: int = Field(0, description="Seed of the policy's sampling.")
    generation_batch: int = Field(
        32, ge=1, description="Prompts handed to the policy per call (progress granularity; the "
        "hf backend micro-batches within a call up to its max_batch_size)."
    )
    backend: BackendConfig = Field(
        default_factory=lambda: HFBackendConfig(max_batch_size=32),
        description="The policy's LLM backend (kimi_pipeline.llm.base.BackendConfig). kind 'hf' "
        "loads the sft_model folder (the stage sets model_path) and samples with its batched, "
        "KV-cached generate (max_batch_size rows, i.e. max_batch_size // samples prompts, per "
        "forward); another kind (e.g. 'openai' for a vLLM server of the same model) is asked k "
        "chat requests per prompt.",
    )
    band: BandConfig = Field(default_factory=BandConfig, description="RL prompt difficulty band.")
    compare_base_model: bool = Field(
        True, description="Also sample and verify the same tasks with base_model (the checkpoint "
        "SFT started from), so the report shows whether tool SFT cost general skill; doubles "
        "the stage's generation time."
    )
    verify_batch: int = Field(64, ge=1, description="Responses per verify_many call.")
    verify_workers: int | None = Field(
        None, ge=1, description="Parallel workers of domains that verify in a pool (the coding "
        "sandbox); null: two per core."
    )
    sample_size: int = Field(24, ge=0, description="Rollouts in the readable JSONL sample.")
    judges: dict[str, BackendConfig] = Field(
        default_factory=dict, description="Domain name -> the LLM backend of that domain's "
        "judge (kimi_pipeline.llm.base.BackendConfig), e.g. safety: {kind: openai, model: ...}. "
        "A domain not listed is verified by its offline code/rule judge. Only domains with an "
        "LLM judge can be listed: safety, faithfulness, instruction_following."
    )

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        if not any(sum(counts) for counts in value.values()):
            raise ValueError("no tasks: give at least one domain a positive count")
        for name, counts in value.items():
            try:
                levels = get_domain(name).levels
            except KeyError as exc:  # its message names the known domains
                raise ValueError(exc.args[0]) from None
            if len(counts) > len(levels):
                raise ValueError(f"domain {name!r} has {len(levels)} levels {list(levels)}, "
                                 f"got {len(counts)} counts {counts}")
            if any(c < 0 for c in counts):
                raise ValueError(f"domain {name!r}: task counts must be >= 0, got {counts}")
        return value

    @field_validator("judges")
    @classmethod
    def _judged_domains(cls, value: dict[str, BackendConfig]) -> dict[str, BackendConfig]:
        for name in value:
            try:
                domain = get_domain(name)
            except KeyError as exc:  # its message names the known domains
                raise ValueError(exc.args[0]) from None
            if domain.judge_role is None:
                raise ValueError(f"gym domain {name!r} has no LLM judge; judged domains: "
                                 f"{sorted(n for n, d in all_domains().items() if d.judge_role)}")
        return value

    def domain(self, name: str) -> Domain:
        """The registered domain ``name``, or a copy judging through its ``judges`` backend."""
        domain = get_domain(name)
        return domain.with_judge(make_backend(self.judges[name])) if name in self.judges else domain

    def plan(self) -> list[tuple[str, int, int]]:
        """``(domain, level, count)`` for every positive count, in configuration order."""
        return [(name, level, count) for name, counts in self.domains.items()
                for level, count in zip(get_domain(name).levels, counts) if count > 0]

    @model_validator(mode="after")
    def _ks_fit(self) -> "GymConfig":
        too_big = [k for k in self.pass_k if not 1 <= k <= self.samples]
        if too_big:
            raise ValueError(f"pass_k {too_big} must lie in 1..samples ({self.samples})")
        return self

    @property
    def ks(self) -> list[int]:
        """The pass@k reported: ``pass_k`` plus ``samples``, sorted."""
        return sorted({*self.pass_k, self.samples})


# --------------------------------------------------------------------------- 1. tasks


def generate_tasks(config: GymConfig) -> list[GymTask]:
    """Every configured domain's tasks, level by level, without repeated ids or prompts."""
    tasks: list[GymTask] = []
    seen_ids: set[str] = set()
    seen_prompts: set[tuple[str, str]] = set()
    for name, level, count in config.plan():
        for task in get_domain(name).generate(random.Random(f"{config.seed}:{name}:{level}"),
                                              count, level):
            key = (task.domain, task.prompt)
            if task.task_id in seen_ids or key in seen_prompts:
                continue
            seen_ids.add(task.task_id)
            seen_prompts.add(key)
            tasks.append(task)
    return tasks


# --------------------------------------------------------------------------- 2. rollouts


def chat_prompt(task: GymTask, system_prompt: str | None) -> list[dict[str, str]]:
    """The messages the policy reads for one task."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return [*messages, {"role": "user", "content": task.prompt}]


@dataclass
class Rollouts:
    """Verified samples and what producing them cost."""

    results: list[GymResult]
    stats: dict[str, Any] = field(default_factory=dict)


def sample_responses(tasks: Sequence[GymTask], policy: Policy, config: GymConfig,
                     progress: Progress | None = None) -> list[list[str]]:
    """k responses per task from ``policy``, asked ``generation_batch`` prompts at a time."""
    out: list[list[str]] = []
    for start in range(0, len(tasks), config.generation_batch):
        chunk = tasks[start:start + config.generation_batch]
        replies = policy([chat_prompt(t, config.system_prompt) for t in chunk], config.samples)
        if len(replies) != len(chunk) or any(len(r) != config.samples for r in replies):
            raise ValueError(f"the policy returned {[len(r) for r in replies]} samples for "
                             f"{len(chunk)} prompts; expected {config.samples} each")
        out += [[text if isinstance(text, str) else "" for text in r] for r in replies]
        if progress:
            progress(len(chunk))
    return out


def _json_safe(details: Any) -> dict[str, Any]:
    """Verifier details as plain JSON (they are stored as a JSON column)."""
    if not isinstance(details, dict):
        return {"value": str(details)}
    return json.loads(json.dumps(details, default=str))


def verify_safely(domain: Domain, pairs: list[tuple[GymTask, str]],
                  max_workers: int | None = None) -> list[Verification]:
    """``domain.verify_many(pairs)``; if it raises, each pair alone, a raising one scoring 0."""
    try:
        out = domain.verify_many(pairs, max_workers)
        if len(out) != len(pairs):
            raise ValueError(f"verify_many returned {len(out)} verdicts for {len(pairs)} responses")
        return list(out)
    except Exception:  # fall back to one at a time to blame only the responses that fail
        verdicts = []
        for task, response in pairs:
            try:
                verdicts.append(domain.verify(task, response))
            except Exception as exc:
                verdicts.append(Verification(0.0, f"verifier error: {error_line(exc)}",
                                             {"verifier_error": True}))
        return verdicts


def verify_responses(tasks: Sequence[GymTask], responses: Sequence[Sequence[str]],
                     config: GymConfig, progress: Progress | None = None) -> list[GymResult]:
    """GymResult rows (task order, then sample order) from each domain's verifier.

    ``latency_s`` is the wall time of the ``verify_many`` call that judged the response divided
    by the responses in it (the sandbox verifies a chunk in parallel, so per-response wall time
    is not observable there; the mean over a domain is exact either way).
    """
    by_domain: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, task in enumerate(tasks):
        by_domain[task.domain] += [(i, s) for s in range(len(responses[i]))]
    verdicts: dict[tuple[int, int], tuple[Verification, float]] = {}
    for name, slots in by_domain.items():
        try:
            domain = config.domain(name)
        except KeyError as exc:
            for slot in slots:
                verdicts[slot] = (Verification(0.0, f"unknown domain: {exc.args[0]}"), 0.0)
            continue
        for start in range(0, len(slots), config.verify_batch):
            chunk = slots[start:start + config.verify_batch]
            t0 = time.perf_counter()
            out = verify_safely(domain, [(tasks[i], responses[i][s]) for i, s in chunk],
                                config.verify_workers)
            each = (time.perf_counter() - t0) / len(chunk)
            verdicts.update({slot: (v, each) for slot, v in zip(chunk, out)})
            if progress:
                progress(len(chunk))
    results = []
    for i, task in enumerate(tasks):
        for s, response in enumerate(responses[i]):
            v, latency = verdicts[(i, s)]
            results.append(GymResult(
                task_id=task.task_id, domain=task.domain, sample_index=s, response=response,
                reward=float(v.reward), reason=str(v.reason) or "(no reason given)",
                latency_s=round(latency, 6), details=_json_safe(v.details),
            ))
    return results


def roll_out(tasks: Sequence[GymTask], policy: Policy, config: GymConfig,
             generated: Progress | None = None, verified: Progress | None = None) -> Rollouts:
    """Sample k responses per task and verify them; ``stats`` has the wall times and sizes."""
    t0 = time.perf_counter()
    responses = sample_responses(tasks, policy, config, generated)
    t1 = time.perf_counter()
    results = verify_responses(tasks, responses, config, verified)
    t2 = time.perf_counter()
    texts = [r for rs in responses for r in rs]
    return Rollouts(results, {
        "tasks": len(tasks), "responses": len(texts), "samples_per_task": config.samples,
        "generation_s": round(t1 - t0, 3), "verification_s": round(t2 - t1, 3),
        "responses_per_s": round(len(texts) / (t1 - t0), 3) if t1 > t0 else None,
        "mean_response_chars": round(sum(map(len, texts)) / len(texts), 1) if texts else 0.0,
        "empty_responses": sum(not t.strip() for t in texts),
        "backend": policy.stats() if callable(getattr(policy, "stats", None)) else {},
    })


# --------------------------------------------------------------------------- the policy


class BackendPolicy:
    """A ``Policy`` over an ``llm`` backend.

    A backend with a batched ``generate`` (the ``hf`` backend) samples the k responses of a
    chunk of prompts in one call; any other backend gets k chat requests per prompt with
    distinct seeds, run concurrently through ``complete_many``.
    """

    def __init__(self, backend: Any, config: GymConfig):
        self.backend, self.config, self.calls, self.errors = backend, config, 0, 0

    def __call__(self, prompts: list[list[dict[str, str]]], k: int) -> list[list[str]]:
        self.calls += 1  # a new seed per call, so chunks do not share their random stream
        seed = self.config.generation_seed + 7919 * self.calls
        if callable(getattr(self.backend, "generate", None)):
            return self.backend.generate(prompts, num_samples=k,
                                         temperature=self.config.temperature,
                                         max_new_tokens=self.config.max_new_tokens, seed=seed)
        requests = [ChatRequest(role="gym_policy", messages=p, temperature=self.config.temperature,
                                max_tokens=self.config.max_new_tokens, seed=seed + s)
                    for p in prompts for s in range(k)]
        replies = complete_many(self.backend, requests)
        self.errors += sum(r.error is not None for r in replies)  # a failed call is an empty text
        texts = [r.content or "" for r in replies]
        return [texts[i * k:(i + 1) * k] for i in range(len(prompts))]

    def stats(self) -> dict[str, Any]:
        """The backend's own counters (the hf backend: tokens, generate time, overflows)."""
        stats = getattr(self.backend, "stats", None)
        out = {"policy_calls": self.calls, "request_errors": self.errors}
        if stats is not None and hasattr(stats, "as_dict"):
            out.update((k, v) for k, v in stats.as_dict().items() if k != "batch_sizes")
        if out.get("generate_s"):
            out["completion_tokens_per_s"] = round(out["completion_tokens"] / out["generate_s"], 1)
        return out


def make_policy(model_path: str | None, config: GymConfig) -> BackendPolicy:
    """The configured backend as a ``Policy``; ``model_path`` (the SFT model folder) for ``hf``."""
    backend = config.backend
    if backend.kind == "hf":
        backend = backend.model_copy(update={"model_path": str(model_path)})
    return BackendPolicy(make_backend(backend), config)


# --------------------------------------------------------------------------- 3. scores


def _with_tasks(rollouts: pl.DataFrame, tasks: pl.DataFrame) -> pl.DataFrame:
    return rollouts.select("task_id", "domain", "reward").join(
        tasks.select("task_id", "tags", "difficulty"), on="task_id", how="left",
        maintain_order="left")


def score(tasks: pl.DataFrame, rollouts: pl.DataFrame, config: GymConfig
          ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(gym_scores, rl_prompts)`` from GymTask and GymResult frames.

    ``gym_scores`` is one long table: ``scope`` is task, level (``<domain>/L<n>``), domain or
    tag; ``name`` what is scored; ``tasks``, ``samples`` and ``correct`` the counts behind it;
    ``pass_rate`` correct/samples averaged over tasks and ``pass@k`` for every reported k (a
    group's pass@k is the mean over its tasks). ``rl_prompts`` is the GymTask rows whose pass
    rate lies in the band, with a ``pass_rate`` column.
    """
    ks = config.ks
    metrics = ["pass_rate", *[f"pass@{k}" for k in ks]]
    joined = _with_tasks(rollouts, tasks)
    tables = passk_table(joined, k=ks)
    per_task = tables["task"].join(tasks.select("task_id", "difficulty"), on="task_id",
                                   how="left", maintain_order="left")
    sums = [pl.len().alias("tasks"), pl.col("n").sum().alias("samples"),
            pl.col("c").sum().alias("correct")]
    columns = ["scope", "name", "domain", "difficulty", "tasks", "samples", "correct", *metrics]
    task_rows = per_task.select(
        pl.lit("task").alias("scope"), pl.col("task_id").alias("name"), "domain", "difficulty",
        pl.lit(1, pl.UInt32).alias("tasks"), pl.col("n").alias("samples"),
        pl.col("c").alias("correct"), *metrics)
    level_rows = (per_task.group_by("domain", "difficulty")
                  .agg(*sums, *[pl.col(m).mean() for m in metrics])
                  .with_columns(pl.lit("level").alias("scope"),
                                pl.format("{}/L{}", "domain", "difficulty").alias("name")))
    domain_rows = (per_task.group_by("domain").agg(*sums)
                   .join(tables["domain"].drop("tasks"), on="domain")
                   .with_columns(pl.lit("domain").alias("scope"), pl.col("domain").alias("name"),
                                 pl.lit(None, pl.Int64).alias("difficulty")))
    tag_rows = (per_task.explode("tags").drop_nulls("tags").group_by("tags").agg(*sums)
                .join(tables["tag"].drop("tasks").rename({"tag": "tags"}), on="tags")
                .with_columns(pl.lit("tag").alias("scope"), pl.col("tags").alias("name"),
                              pl.lit(None, pl.Utf8).alias("domain"),
                              pl.lit(None, pl.Int64).alias("difficulty")))
    schema = {"scope": pl.Utf8, "name": pl.Utf8, "domain": pl.Utf8, "difficulty": pl.Int64,
              "tasks": pl.Int64, "samples": pl.Int64, "correct": pl.Int64,
              **{m: pl.Float64 for m in metrics}}
    parts = [frame.select(columns).cast(schema) for frame in
             (task_rows, level_rows.sort("domain", "difficulty"), domain_rows.sort("name"),
              tag_rows.sort("name"))]
    scores = pl.concat(parts)
    kept = moderate(per_task, config.band.low, config.band.high).select("task_id", "pass_rate")
    rl_prompts = tasks.join(kept, on="task_id", how="inner", maintain_order="left")
    return scores, rl_prompts

