"""The critic stage as a library: open prompts → answers → preference pairs → critic → rewards.

1. ``make_open_prompts`` (``critic/open_prompts.py``): non-verifiable prompts with personas.
2. ``answer_open_prompts``: the policy samples K answers per open prompt (the candidates the
   critic ranks, as the ``rl`` stage will).
3. ``build_pairs``: the critic's data, as ``PreferencePair`` rows:
   - bootstrap pairs from the policy's own open answers: a clean answer against its twin that
     breaks a prescriptive rubric (``rule``) or is degraded against a core rubric
     (``synthetic``), see ``critic/bootstrap.py``;
   - verifiable pairs from the gym's rollouts: a verified-correct against a verified-incorrect
     answer to one task (``verifier``, ``critic/refine.py``).
   Each source sets ``heldout_share`` of its prompts aside (by prompt, never by pair).
4. ``train``: the untrained critic, the critic fitted on the bootstrap pairs, and the critic
   refined with the verifiable pairs, each measured against the verifiers and on held-out
   rule pairs (agreement with the prescriptive rules, the learned heads alone). The refined
   critic's agreement is cross-validated by gym task (``cv_folds``: every task measured by a
   critic fitted without it); the critic fitted on all pairs is the stage's ``critic_model``.
   The bootstrap critic never sees a verifiable pair, so it is measured on all of them.
5. ``rank_candidates``: critic rewards (pairwise win rates) of the open-prompt candidates
   through the reward protocol (``rewards.py``), as the ``rl`` stage will ask for them.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.critic import bootstrap, report
from kimi_pipeline.critic.model import Critic, CriticModelConfig, make_critic
from kimi_pipeline.critic.open_prompts import OpenPromptsConfig
from kimi_pipeline.critic.refine import (
    cross_validate,
    heldout,
    measure,
    refine_critic,
    verifier_pairs,
)
from kimi_pipeline.critic.rubrics import RubricSet
from kimi_pipeline.gym.run import BackendPolicy
from kimi_pipeline.llm.base import BackendConfig, HFBackendConfig, make_backend
from kimi_pipeline.records import GymResult, OpenPrompt, PreferencePair
from kimi_pipeline.rewards import RewardGroup, make_reward
from kimi_pipeline.model_folder import ModelFolder

RUNS_DIR = Path("data/06_models/critic_runs")  # fitted critics before the catalog copies them


class CriticConfig(BaseModel):
    """Everything the critic stage reads from ``parameters_critic.yml``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of the held-out splits and the bootstrap twins.")
    rubrics_file: str = Field(
        "conf/base/critic_rubrics.yml", description="The rubrics (critic/rubrics.py), relative "
        "to the project root; validated when the stage starts.")
    open_prompts: OpenPromptsConfig = Field(
        default_factory=OpenPromptsConfig, description="How the open prompts are made.")
    candidates: int = Field(4, ge=2, description="K: answers sampled per open prompt.")
    temperature: float = Field(0.7, ge=0.0, description="Sampling temperature of the answers.")
    max_new_tokens: int = Field(160, ge=1, description="Longest answer, in tokens.")
    generation_seed: int = Field(0, description="Seed of the policy's sampling.")
    backend: BackendConfig = Field(
        default_factory=lambda: HFBackendConfig(max_batch_size=64),
        description="The policy's backend for the open answers (kind 'hf' loads sft_model).")
    heldout_share: float = Field(
        0.3, gt=0.0, lt=1.0, description="Share of gym tasks and open prompts whose pairs are "
        "only measured, never trained on.")
    max_bootstrap_pairs: int = Field(
        160, ge=0, description="Rule and synthetic pairs kept at most (a seeded sample): every "
        "pair costs two forward passes of the policy, and a few hundred teach the rubrics.")
    cv_folds: int = Field(
        20, ge=0, description="Folds of the cross-validation by gym task that measures the "
        "refined critic's agreement with the verifiers (tasks dealt round-robin; with fewer "
        "tasks than folds, leave-one-task-out: each fold's critic is fitted on all the other "
        "tasks, as close as it gets to the final critic fitted on all). 0 or 1: one held-out "
        "split of heldout_share instead, also for critics that cannot refit from scratch "
        "('generative'). Measured on the default run (178 pairs of 20 tasks): leave-one-task-"
        "out 77 %, 5 folds 75 %; a 30 % split measured on 2 tasks.")
    max_pairs_per_task: int = Field(
        12, ge=1, description="Verifiable pairs kept per gym task at most (seeded sample).")
    include_base_rollouts: bool = Field(
        True, description="Also pair answers of base_model to the same gym tasks "
        "(gym_base_rollouts): twice the verifiable pairs, from a policy one step off.")
    model: CriticModelConfig = Field(
        default_factory=CriticModelConfig, description="The critic model (critic/model.py).")
    reward_method: Literal["win_rate", "bradley_terry"] = Field(
        "win_rate", description="How pairwise outcomes of K candidates become rewards.")
    margin: float = Field(0.0, ge=0.0, lt=0.5, description="A judgement prefers a side only "
                          "beyond 0.5 ± margin; inside, the order is undecided (a tie).")
    sample_size: int = Field(24, ge=0, description="Judged pairs in the readable sample.")


def answer_open_prompts(policy_path: str, prompts: Sequence[OpenPrompt], config: CriticConfig,
                        progress=None) -> list[dict[str, Any]]:
    """K sampled answers per open prompt, as rows (prompt_id, category, prompt, candidate,
    response)."""
    backend = config.backend
    if backend.kind == "hf":
        backend = backend.model_copy(update={"model_path": policy_path})
    policy = BackendPolicy(make_backend(backend), config)
    rows = []
    for at in range(0, len(prompts), 16):
        chunk = prompts[at:at + 16]
        answers = policy([[{"role": "user", "content": p.prompt}] for p in chunk],
                         config.candidates)
        rows += [{"prompt_id": p.prompt_id, "category": p.category, "prompt": p.prompt,
                  "candidate": i, "response": text}
                 for p, texts in zip(chunk, answers) for i, text in enumerate(texts)]
        if progress:
            progress(len(chunk))
    return rows


def _with_split(pairs: list[PreferencePair], config: CriticConfig) -> list[PreferencePair]:
    return [p.model_copy(update={"split": "heldout"})
            if heldout(p.group_id, config.heldout_share, config.seed) else p for p in pairs]


def build_pairs(answers: Sequence[dict[str, Any]], rollouts: Sequence[GymResult],
                prompts: dict[str, str], rubrics: RubricSet, config: CriticConfig
                ) -> tuple[list[PreferencePair], dict[str, int]]:
    """Bootstrap (rule, synthetic) and verifiable pairs, with their splits; the counts of
    skipped bootstrap candidates by reason."""
    samples = [(a["prompt_id"], a["category"], a["prompt"], a["response"]) for a in answers
               if a["response"].strip()]
    skipped: Counter[str] = Counter()
    rng = random.Random(config.seed)
    made = bootstrap.rule_pairs(samples, rng, rubrics, skipped)
    made += bootstrap.degraded_pairs(samples, rng, rubrics, skipped=skipped)
    if len(made) > config.max_bootstrap_pairs:
        skipped["over max_bootstrap_pairs"] = len(made) - config.max_bootstrap_pairs
        made = rng.sample(made, config.max_bootstrap_pairs)
    made = _with_split(made, config)
    made += verifier_pairs(rollouts, prompts, config.heldout_share, config.seed,
                           config.max_pairs_per_task)
    return made, dict(skipped)


def _sources(pairs: Sequence[PreferencePair], split: str, *sources: str) -> list[PreferencePair]:
    return [p for p in pairs if p.split == split and p.source in sources]


def train(policy: ModelFolder, pairs: Sequence[PreferencePair], rubrics: RubricSet,
          config: CriticConfig) -> tuple[Critic, dict[str, Any]]:
    """Bootstrap, then refine the critic; its agreement with the verifiers at each step."""
    critic = make_critic(policy, config.model, rubrics)
    verifier = [p for p in pairs if p.source == "verifier"]
    crossed = _cross_validated(critic, verifier, config)
    measured = verifier if crossed else _sources(pairs, "heldout", "verifier")
    boot = _sources(pairs, "train", "rule", "synthetic")
    steps: dict[str, Any] = {"untrained": {"verifier": measure(critic, measured)}}
    if boot:
        steps["bootstrap"] = {"fit": critic.fit(boot), **_measured(critic, pairs, measured)}
    if crossed:
        refined = cross_validate(critic, verifier, boot, config.cv_folds, config.seed,
                                 config.margin)
    else:
        refined = refine_critic(critic, verifier, boot)
    steps["refined"] = {"fit": refined.fit,
                        **_measured(critic, pairs, measured, verifier=refined.after)}
    counts = Counter(f"{p.source}/{p.split}" for p in pairs)
    return critic, {"steps": steps, "pairs": dict(sorted(counts.items())),
                    "verifier_measure": (f"{refined.after['folds']}-fold cross-validation by "
                                         "task" if crossed else "held-out split"),
                    "heldout_verifier_pairs": len(measured),
                    "heldout_verifier_tasks": len({p.group_id for p in measured}),
                    "heldout_rule_pairs": len(_sources(pairs, "heldout", "rule")),
                    "sample": report.judged_sample(critic, pairs, config.sample_size)}


def _cross_validated(critic: Critic, verifier: Sequence[PreferencePair],
                     config: CriticConfig) -> bool:
    """Whether the refined critic's agreement is measured by cross-validation."""
    return (config.cv_folds > 1 and critic.refits_from_scratch
            and len({p.group_id for p in verifier}) >= 2)


def _measured(critic: Critic, pairs: Sequence[PreferencePair],
              verifier_pairs: Sequence[PreferencePair],
              verifier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Agreement with the verifiers (``verifier`` when already measured, e.g. out of fold),
    on held-out synthetic and rule pairs; rule pairs with the rules switched off, so the figure
    is the learned critic's."""
    out = {"verifier": verifier or measure(critic, verifier_pairs),
           "synthetic": measure(critic, _sources(pairs, "heldout", "synthetic"))}
    enforce = critic.config.enforce_rules
    critic.config.enforce_rules = False
    try:
        out["rule"] = measure(critic, _sources(pairs, "heldout", "rule"))
    finally:
        critic.config.enforce_rules = enforce
    return out


def save_fitted(critic: Critic, pairs: Sequence[PreferencePair], config: CriticConfig,
                root: str | Path = RUNS_DIR) -> ModelFolder:
    """The critic as a model folder under ``root``, named by its pairs and configuration (the
    catalog copies it into its versioned ``critic_model``)."""
    digest = hashlib.sha256("\n".join(sorted(p.pair_id for p in pairs)).encode()
                            + config.model_dump_json().encode()).hexdigest()[:16]
    folder = Path(root) / digest
    shutil.rmtree(folder, ignore_errors=True)
    return critic.save(folder)


def rank_candidates(critic: Critic, answers: Sequence[dict[str, Any]], rubrics: RubricSet,
                    config: CriticConfig) -> list[dict[str, Any]]:
    """The critic reward of every open-prompt candidate, through the reward protocol."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in answers:
        groups.setdefault(row["prompt_id"], []).append(row)
    ordered = [sorted(rows, key=lambda r: r["candidate"]) for rows in groups.values()]
    reward = make_reward("critic", judge=critic, rubrics=rubrics.names,
                         method=config.reward_method, margin=config.margin)
    results = reward.score([RewardGroup(prompt=rows[0]["prompt"],
                                        candidates=[r["response"] for r in rows],
                                        context=rows[0]["category"]) for rows in ordered])
    return [{**row, "reward": r.score, "reason": r.reason, **{
        k: v for k, v in r.details.items() if k in ("wins", "losses", "ties", "contradictions")}}
        for rows, scored in zip(ordered, results) for row, r in zip(rows, scored)]
