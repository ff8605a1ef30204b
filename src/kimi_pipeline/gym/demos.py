"""Verified gym-style demonstrations for SFT: rejection sampling from the initial checkpoint.

Tool-use SFT on a small model costs it general skill (measured at ``base`` size: level-1
instruction following, pass@4, 38 % → 13 %). K2's SFT set spans domains, and its answers are
kept only where a verifier or judge accepts them. This module does that with the gym's own
generators and verifiers:

1. draw tasks from the configured domains with a seed of their own (``sampling``, a
   ``GymConfig``), and drop every task whose prompt the gym stage will evaluate (``exclude``:
   the gym's tasks, generated from its parameters), so a demonstration is never an evaluation
   task — the same kind of task, as a training split is;
2. sample k responses per task from the policy (in the ``sft`` stage: ``base_model``);
3. keep up to ``keep_per_task`` distinct responses per task whose verifier reward reaches
   ``min_reward`` — never unverified text — as ``SftExample`` rows (one user turn, one
   assistant turn, no tools) that ``training/sft.py`` mixes into the tool-use set.

The gym's small fixed pools (the 18 coding problems, the safety seeds, the faithfulness passages)
are all evaluated by the gym, so demonstrations on them would share a problem, seed or passage
with an evaluation task even where the prompt differs; the configurations therefore sample
only domains whose generator composes fresh tasks (instruction following; on the GPU also math
and logic, which a 135M model never solves).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.gym.run import GymConfig, Policy, Progress, chat_prompt, generate_tasks, roll_out
from kimi_pipeline.records import GymTask, SftExample

AGENT_ID = "gym-demonstration"  # the agent_id of every demonstration row (SFT split key)
log = logging.getLogger(__name__)


class DemoConfig(BaseModel):
    """Parameters of the verified demonstrations (``sft_demos`` in ``parameters_sft.yml``)."""

    model_config = ConfigDict(extra="forbid")

    sampling: GymConfig | None = Field(
        None, description="How demonstration tasks are drawn, sampled and verified: a gym "
        "configuration (kimi_pipeline.gym.run.GymConfig: domains with counts per level, seed, "
        "samples k, temperature, max_new_tokens, backend). Give it a seed other than the gym "
        "stage's, or most tasks are the gym's own and get excluded. null: no demonstrations."
    )
    keep_per_task: int = Field(
        1, ge=1, description="Verified responses kept per task at most (distinct texts, in "
        "sample order): one keeps the set spread over tasks rather than over samples of one."
    )
    min_reward: float = Field(
        1.0, ge=0.0, le=1.0, description="Lowest verifier reward a kept response has (1.0: "
        "only responses the verifier fully accepts)."
    )


def fresh_tasks(config: GymConfig, exclude: Sequence[GymTask]) -> tuple[list[GymTask], int]:
    """``config``'s tasks whose (domain, prompt) is not among ``exclude``; and how many were."""
    taken = {(t.domain, t.prompt) for t in exclude}
    tasks = generate_tasks(config)
    fresh = [t for t in tasks if (t.domain, t.prompt) not in taken]
    return fresh, len(tasks) - len(fresh)


def demonstration(task: GymTask, sample_index: int, response: str, reward: float,
                  system_prompt: str | None) -> SftExample:
    """One verified response as an SFT example: the gym's prompt, then the response."""
    messages = [*chat_prompt(task, system_prompt), {"role": "assistant", "content": response}]
    return SftExample(
        example_id=f"demo:{task.task_id}:{sample_index}", trajectory_id=task.task_id,
        agent_id=AGENT_ID, split="train", messages=messages, tools=[], judge_score=reward,
        domain=f"gym:{task.domain}",
    )


def sample_demonstrations(policy: Policy, config: DemoConfig, exclude: Sequence[GymTask] = (),
                          generated: Progress | None = None, verified: Progress | None = None
                          ) -> tuple[list[SftExample], dict[str, Any]]:
    """Verified demonstrations from ``policy`` and a report (counts per domain, timings)."""
    sampling = config.sampling
    if sampling is None:
        return [], {"enabled": False}
    tasks, excluded = fresh_tasks(sampling, exclude)
    run = roll_out(tasks, policy, sampling, generated, verified)
    by_task = {t.task_id: t for t in tasks}
    accepted: dict[str, list] = defaultdict(list)
    for result in run.results:  # task order, then sample order
        kept = accepted[result.task_id]
        if (result.reward >= config.min_reward and result.response.strip()
                and len(kept) < config.keep_per_task
                and all(result.response != r.response for r in kept)):
            kept.append(result)
    demos = [demonstration(by_task[task_id], r.sample_index, r.response, r.reward,
                           sampling.system_prompt)
             for task_id, kept in accepted.items() for r in kept]
    per_domain = {
        name: {"tasks": n, "tasks_with_demo": sum(1 for t in tasks if t.domain == name
                                                  and accepted.get(t.task_id)),
               "samples": n * sampling.samples,
               "verified_samples": sum(1 for r in run.results if r.domain == name
                                       and r.reward >= config.min_reward)}
        for name, n in Counter(t.domain for t in tasks).items()
    }
    report = {
        "enabled": True, "tasks_generated": len(tasks) + excluded,
        "excluded_gym_tasks": excluded, "tasks": len(tasks), "demonstrations": len(demos),
        "per_domain": per_domain, "rollout": run.stats,
    }
    log.info("sft demonstrations: %d verified, from %d tasks x %d samples (%d left out as gym "
             "evaluation tasks)", len(demos), len(tasks), sampling.samples, excluded)
    return demos, report
