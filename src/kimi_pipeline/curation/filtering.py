"""The filtering funnel: judged, well-formed, unique, uncontaminated, balanced → SFT examples.

Trajectories are judged a batch at a time (in worker processes for the rule judge), so the
judge's cost spreads over the cores and rows never become pydantic objects on the hot path.
Every removal is kept with its step and reason (``rejections``); the funnel counts them.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.curation.balance import balance, with_domains
from kimi_pipeline.curation.config import CurationConfig
from kimi_pipeline.curation.decontaminate import decontaminate, load_references
from kimi_pipeline.curation.dedup import dedup
from kimi_pipeline.curation.sft_format import to_sft_examples
from kimi_pipeline.judge.format_checks import check_format
from kimi_pipeline.judge.quality import ground_truth, judge_agreement
from kimi_pipeline.judge.rubric import JudgeConfig, Verdict, make_judge
from kimi_pipeline.procs import die_with_parent

NEEDED = ["trajectory_id", "agent_id", "messages", "tools", "rubric", "outcome", "final_state",
          "persona", "environment"]


class FilteringConfig(BaseModel):
    """Everything the filtering pipeline reads from ``parameters_filtering.yml``."""

    model_config = ConfigDict(extra="forbid")

    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="The rubric judge.")
    compare_judge: JudgeConfig | None = Field(
        None, description="A second judge (e.g. an LLM judge) whose agreement with the first is reported."
    )
    curation: CurationConfig = Field(default_factory=CurationConfig, description="Curation steps.")
    batch_size: int = Field(2000, ge=1, description="Trajectories judged per batch.")
    workers: int = Field(2, ge=1, description="Processes judging batches (rule judge only).")
    sample_size: int = Field(20, ge=0, description="SFT examples in the readable JSONL sample.")


@dataclass
class FilterResult:
    examples: pl.DataFrame  # records.SftExample rows
    rejections: pl.DataFrame  # trajectory_id, step, reason
    funnel: dict[str, int]
    judge_quality: dict[str, Any]


def malformed(row: dict[str, Any]) -> str | None:
    """Why a trajectory row cannot be judged at all (unparseable nested JSON), else None."""
    for column in ("messages", "tools", "rubric", "outcome", "final_state"):
        try:
            value = json.loads(row[column])
        except (TypeError, ValueError) as exc:
            return f"malformed_record: {column} is not JSON ({exc})"
        if not isinstance(value, list if column in ("messages", "tools") else dict):
            return f"malformed_record: {column} is a {type(value).__name__}"
    return None


def judge_batch(frame: pl.DataFrame, config: JudgeConfig) -> pl.DataFrame:
    """Judge + format checks + ground truth for one batch of trajectory rows."""
    rows = frame.select(NEEDED).to_dicts()
    broken = {i: why for i, row in enumerate(rows) if (why := malformed(row))}
    good = [row for i, row in enumerate(rows) if i not in broken]
    verdicts = iter(make_judge(config).judge_many(good))
    columns: dict[str, list] = {k: [] for k in ("trajectory_id", "judge_passed", "judge_score",
                                                 "judge_failed", "judge_failed_names", "verdict",
                                                 "format_problems", "truly_succeeded", "imperfections")}
    for i, row in enumerate(rows):
        if i in broken:
            values = [row["trajectory_id"], False, 0.0, broken[i], ["malformed_record"],
                      json.dumps({"passed": False, "score": 0.0, "judge": config.kind,
                                  "criteria": [["malformed_record", False, broken[i]]]}),
                      broken[i], False, "[]"]
        else:
            v = next(verdicts)
            values = [row["trajectory_id"], v.passed, float(v.score),
                      "; ".join(f"{c.name}: {c.reason}" for c in v.criteria if not c.passed),
                      [c.name for c in v.criteria if not c.passed], json.dumps(_plain(v)),
                      "; ".join(check_format(row)), ground_truth(row)[0],
                      json.dumps(json.loads(row["outcome"]).get("agent_imperfections", []))]
        for key, value in zip(columns, values):
            columns[key].append(value)
    return pl.DataFrame(columns, schema_overrides={"judge_score": pl.Float64,
                                                   "judge_failed_names": pl.List(pl.Utf8)})


def _plain(verdict: Verdict) -> dict[str, Any]:
    return {"passed": verdict.passed, "score": verdict.score, "judge": verdict.judge,
            "criteria": [[c.name, c.passed, c.reason] for c in verdict.criteria]}


def judge_all(trajectories: pl.LazyFrame, config: FilteringConfig) -> pl.DataFrame:
    total = trajectories.select(pl.len()).collect().item()
    batches = (trajectories.slice(o, config.batch_size).collect()
               for o in range(0, total, config.batch_size))
    if config.workers == 1 or config.judge.kind != "rule" or total <= config.batch_size:
        parts = [judge_batch(b, config.judge) for b in batches]
    else:
        with ProcessPoolExecutor(config.workers, mp_context=get_context("spawn"),
                                 initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            parts = list(pool.map(judge_batch, batches, [config.judge] * (total // config.batch_size + 1)))
    return pl.concat(parts) if parts else pl.DataFrame()


def _verdicts(frame: pl.DataFrame) -> list[Verdict]:
    from kimi_pipeline.judge.llm_judge import CriterionVerdict

    out = []
    for text in frame["verdict"]:
        v = json.loads(text)
        out.append(Verdict(v["passed"], v["score"], [CriterionVerdict(*c) for c in v["criteria"]], v["judge"]))
    return out


def quality(judged: pl.DataFrame, trajectories: pl.LazyFrame, config: FilteringConfig) -> dict[str, Any]:
    """Precision/recall of the judge against the offline agent's ground truth (and agreement)."""
    truth = judged["truly_succeeded"].to_list()
    passed = judged["judge_passed"].to_list()
    tp = sum(p and t for p, t in zip(passed, truth))
    fp = sum(p and not t for p, t in zip(passed, truth))
    fn = sum(t and not p for p, t in zip(passed, truth))
    per_flaw: dict[str, list[int]] = {}
    for flaws, ok in zip(judged["imperfections"], passed):
        for flaw in set(json.loads(flaws)):
            per_flaw.setdefault(flaw, [0, 0])
            per_flaw[flaw][0] += ok
            per_flaw[flaw][1] += 1
    result = {
        "precision": round(tp / (tp + fp), 4) if tp + fp else None,
        "recall": round(tp / (tp + fn), 4) if tp + fn else None,
        "true_positive": tp, "false_positive": fp, "false_negative": fn,
        "true_negative": len(truth) - tp - fp - fn,
        "pass_rate_by_imperfection": {k: round(v[0] / v[1], 4) for k, v in sorted(per_flaw.items())},
        "failures_by_criterion": dict(
            judged["judge_failed_names"].explode().drop_nulls().value_counts(sort=True).iter_rows()),
    }
    if config.compare_judge is not None:
        rows = trajectories.select(NEEDED).collect().to_dicts()
        other = make_judge(config.compare_judge).judge_many(rows)
        result["agreement_with_compare_judge"] = judge_agreement(_verdicts(judged), other)
    return result


def filter_trajectories(
    trajectories: pl.LazyFrame, agents: pl.DataFrame, gym_tasks: pl.DataFrame | None,
    config: FilteringConfig,
) -> FilterResult:
    judged = judge_all(trajectories, config)
    frame = trajectories.collect().join(judged.drop("verdict", "judge_failed_names"),
                                        on="trajectory_id", how="left", maintain_order="left")
    rejections, funnel = [], {"trajectories": frame.height}

    def reject(removed: pl.DataFrame, step: str, reason: pl.Expr | str) -> None:
        reason_expr = pl.lit(reason) if isinstance(reason, str) else reason
        rejections.append(removed.select("trajectory_id", pl.lit(step).alias("step"),
                                         reason_expr.alias("reason")))
        funnel[f"removed.{step}"] = removed.height

    bad_format = pl.col("format_problems") != ""
    reject(frame.filter(bad_format), "format", pl.col("format_problems"))
    frame = frame.filter(~bad_format)
    reject(frame.filter(~pl.col("judge_passed")), "judge", pl.col("judge_failed"))
    frame = frame.filter(pl.col("judge_passed"))

    steps = [
        ("dedup", lambda f: dedup(f, config.curation.dedup)),
        ("decontamination", lambda f: decontaminate(
            f, load_references(config.curation.decontamination.eval_paths, gym_tasks), config.curation.decontamination)),
        ("balance", lambda f: balance(with_domains(f, agents), config.curation.balance)),
    ]
    for step, run in steps:
        frame, removed = run(frame)
        reject(removed, step, pl.col("reason"))
    examples = to_sft_examples(frame, config.curation.sft_format)
    funnel["examples.train"] = examples.filter(pl.col("split") == "train").height
    funnel["examples.validation"] = examples.filter(pl.col("split") == "validation").height
    return FilterResult(
        examples=examples,
        rejections=pl.concat(rejections) if rejections else pl.DataFrame(
            schema={"trajectory_id": pl.Utf8, "step": pl.Utf8, "reason": pl.Utf8}),
        funnel=funnel,
        judge_quality=quality(judged, trajectories, config),
    )
