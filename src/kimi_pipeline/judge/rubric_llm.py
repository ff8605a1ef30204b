"""The rubric judge's LLM path: the rubric criteria put to a model, voted over repeats.

The ``llm`` judge kind (registered here, imported by ``judge.rubric.make_judge`` on first use)
asks a model through ``llm/`` for a JSON verdict per criterion of the rule judge
(``judge.criteria``: the same names, their descriptions as the prompt's criteria). The prompt
(``judge_prompt``) holds the task's rubric, the criteria in this repeat's order, the transcript
with every tool call and (cut) result, and the final state compared with the initial one. The
steps every LLM judge shares — the criteria list, reply parsing, repeats, vote — come from the
one LLM-judge core, ``judge.llm_judge``: each trajectory is judged ``repeats`` times with the
criteria in a different (seeded) order and the verdicts are voted per criterion, which cancels
position bias and sampling noise; a malformed reply abstains, never raises (K2 report §3.1
keeps a trajectory only when the judge finds it successful).

The request's ``context`` holds the trajectory and the criteria as structure, which is what the
offline program of the ``judge`` role (``judge.offline.judge``) reads.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from kimi_pipeline.judge import llm_judge
from kimi_pipeline.judge.criteria import DESCRIPTIONS, describe_predicate
from kimi_pipeline.judge.episode import Episode, RubricView, episode, plain_trajectory, short
from kimi_pipeline.judge.llm_judge import Abstain, CriterionVerdict, Verdicts
from kimi_pipeline.judge.rubric import JudgeConfig, Verdict, make_verdict, register_judge
from kimi_pipeline.llm.base import ChatBackend, ChatRequest, make_backend
from kimi_pipeline.records import TaskRubric, Trajectory

ROLE = "judge"

SYSTEM_PROMPT = (
    "You are a strict grader of dialogues between a user and a tool-using AI assistant. You "
    "receive the task's rubric, the criteria to judge, the dialogue with every tool call and "
    "result, and how the environment state changed. Judge each criterion independently, from "
    "the evidence only; a claim in the assistant's words is not evidence that something "
    "happened. Reply with JSON only, no prose around it: "
    '{"criteria": [{"name": "<criterion>", "passed": true|false, "reason": "<one sentence>"}], '
    '"passed": true|false} with one entry per criterion, in the order given.'
)


def _rubric_lines(rubric: TaskRubric | RubricView) -> list[str]:
    calls = [
        f"{c.name}({json.dumps(c.arguments, ensure_ascii=False)})" for c in rubric.required_calls
    ]
    predicates = [describe_predicate(p) for p in rubric.state_predicates]
    sections = [
        ("Success criteria", rubric.success_criteria),
        ("Checkpoints", rubric.checkpoints),
        ("State predicates on the final state", predicates),
        ("Required calls (listed arguments must match)", calls),
        ("Forbidden tools", rubric.forbidden_calls),
        ("Order (before -> after)", [f"{a} -> {b}" for a, b in rubric.order_constraints]),
        ("Facts the final answer must state", rubric.required_facts),
    ]
    lines = [f"Expected outcome: {rubric.expected_outcome}"]
    for title, items in sections:
        lines += [f"{title}:"] + [f"- {item}" for item in items or ["(none)"]]
    return lines


def transcript(ep: Episode, max_chars: int) -> list[str]:
    """The dialogue as the grader reads it: speakers, tool calls, (cut) tool results."""
    lines = []
    for message in ep.messages:
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            lines.append(
                f"[tool result: {message.get('name')}] "
                + short(message.get("content") or "", max_chars)
            )
            continue
        if message.get("content"):
            lines.append(f"[{role}] {message['content']}")
        for call in message.get("tool_calls") or ():
            args = call.get("raw_arguments") or json.dumps(
                call.get("arguments") or {}, ensure_ascii=False
            )
            lines.append(f"[assistant calls] {call.get('name')}({args})")
    lines.append(f"[end: finished={ep.finished}, reason={ep.end_reason}]")
    return lines


def state_diff(before: dict[str, Any], after: dict[str, Any], limit: int) -> list[str]:
    """'+ added', '- removed', '~ changed field: old -> new' per resource of the state."""
    lines = []
    for coll in sorted(set(before) | set(after)):
        old, new = before.get(coll) or {}, after.get(coll) or {}
        if not (isinstance(old, dict) and isinstance(new, dict)):
            if old != new:
                lines.append(f"~ {coll}: {short(old)} -> {short(new)}")
            continue
        for rid in sorted(set(old) | set(new), key=str):
            if rid not in old:
                lines.append(f"+ {coll}.{rid} {short(new[rid], 200)}")
            elif rid not in new:
                lines.append(f"- {coll}.{rid}")
            elif old[rid] != new[rid]:
                lines.append(f"~ {coll}.{rid} {_field_changes(old[rid], new[rid])}")
    return (
        (lines[:limit] + [f"… {len(lines) - limit} more"])
        if len(lines) > limit
        else lines or ["(no change)"]
    )


def _field_changes(old: Any, new: Any) -> str:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{short(old)} -> {short(new)}"
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {short(old.get(k))} -> {short(new.get(k))}" for k in keys)


def judge_prompt(ep: Episode, names: list[str], config: JudgeConfig) -> str:
    """The rubric prompt's user message: rubric, criteria in the given order, transcript,
    state diff."""
    return "\n".join(
        [
            "## Rubric",
            *_rubric_lines(ep.rubric),
            "",
            "## Criteria to judge, in this order",
            llm_judge.criteria_block((n, DESCRIPTIONS[n]) for n in names),
            "",
            "## Dialogue",
            *transcript(ep, config.max_result_chars),
            "",
            "## Final state compared with the initial state",
            *state_diff(ep.initial_state, ep.final_state, config.max_diff_lines),
        ]
    )


def _json_trajectory(trajectory: Trajectory | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(trajectory, Trajectory):
        return trajectory.model_dump(mode="json")
    data = plain_trajectory(trajectory)
    if isinstance(data.get("rubric"), TaskRubric):
        data["rubric"] = data["rubric"].model_dump(mode="json")
    return data


def vote(
    names: list[str], judgements: list[Verdicts | Abstain], critical: set[str], threshold: float
) -> Verdict:
    """Per-criterion vote over the repeats (``llm_judge.vote``); abstaining repeats are
    recorded, never counted, and when all abstain the trajectory fails with their reasons."""
    voted = llm_judge.vote(names, judgements, threshold)
    if isinstance(voted, Abstain):
        return Verdict(False, 0.0, [CriterionVerdict("judge_replies", False, voted.reason)], "llm")
    return make_verdict(voted, critical, "llm")


@register_judge("llm")
class LlmJudge:
    """LLM-as-judge: rubric prompt, JSON verdict per criterion, shuffled repeats, vote."""

    name = "llm"

    def __init__(self, config: JudgeConfig | None = None, backend: ChatBackend | None = None):
        self.config = config or JudgeConfig(kind="llm")
        self.backend = backend or make_backend(self.config.backend)
        self.names, self.critical = self.config.names, self.config.critical_names

    def requests(self, trajectory: Trajectory | Mapping[str, Any]) -> list[ChatRequest]:
        """One request per repeat, the criteria shuffled by a seed of the trajectory and repeat."""
        data = _json_trajectory(trajectory)
        ep = episode(data)
        orders = llm_judge.shuffled_orders(
            self.names, ep.trajectory_id, self.config.repeats, self.config.seed
        )
        return [
            llm_judge.json_request(
                ROLE,
                SYSTEM_PROMPT,
                judge_prompt(ep, order, self.config),
                {"trajectory": data, "criteria": order, "critical": sorted(self.critical)},
                seed=self.config.seed * 1000 + repeat,
            )
            for repeat, order in enumerate(orders)
        ]

    def judge_many(self, trajectories: Iterable[Trajectory | Mapping[str, Any]]) -> list[Verdict]:
        batches = [self.requests(t) for t in trajectories]
        replies = llm_judge.ask(self.backend, [r for batch in batches for r in batch])
        verdicts, at = [], 0
        for batch in batches:
            batch_replies = replies[at : at + len(batch)]
            judgements = [llm_judge.verdicts_of(j, self.names) for j in batch_replies]
            verdicts.append(vote(self.names, judgements, self.critical, self.config.pass_threshold))
            at += len(batch)
        return verdicts

