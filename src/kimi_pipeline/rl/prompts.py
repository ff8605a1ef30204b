"""What the RL policy is asked: the prompt pool, its held-out split, and K1.5's sampler.

The pool has one kind of prompt per reward source (``rewards.py``):

- ``verifier``: gym tasks. The gym's ``rl_prompts`` (tasks the SFT model solves sometimes) and
  fresh tasks generated for the domain levels whose pass rate is in the same band — a level the
  policy never solves, or always solves, teaches nothing (every sample gets the group's mean
  reward). A share of the pool, chosen by a hash of the task id, is held out: the stage's
  before/after table measures tasks never trained on.
- ``critic``: open prompts (creative writing, advice …), ranked by the critic's win rates.
- ``rubric``: tool-use tasks played as episodes, judged against their rubric.

``PromptSampler`` draws each iteration's prompts as K1.5 does: a curriculum (harder levels
enter as iterations pass) and a priority from each prompt's success rate s — K1.5's 1 − s, or
s(1 − s), which favours the prompts whose K rewards can differ — the success rates updated
from each iteration's rewards. Its state is plain JSON, saved with each checkpoint; the draw of
iteration i is seeded by (seed, i), so a resumed run draws what the uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from kimi_pipeline.gym.registry import get_domain
from kimi_pipeline.gym.run import chat_prompt
from kimi_pipeline.records import GymTask, OpenPrompt


class PoolConfig(BaseModel):
    """Which prompts make the pool and how many are held out."""

    model_config = ConfigDict(extra="forbid")

    band: tuple[float, float] = Field(
        (0.1, 0.9), description="A gym domain level whose SFT pass rate lies in [low, high] "
        "gets fresh tasks (the gym's own band for rl_prompts)."
    )
    fresh_per_level: int = Field(
        24, ge=0, description="Fresh tasks generated for each such level (repeats of a gym "
        "task's prompt are dropped: a domain with a fixed problem set adds nothing)."
    )
    heldout_share: float = Field(
        0.35, ge=0, lt=1, description="Share of verifier tasks held out from training (by a "
        "hash of the task id) to measure the trained policy."
    )
    open_prompts: int = Field(
        8, ge=0, description="Open prompts (critic reward) in the pool; 0 leaves them out."
    )
    tool_tasks: int = Field(
        0, ge=0, description="Tool-use tasks (rubric reward, played as episodes) in the pool, "
        "from the synthesis tasks of SFT training agents (the SFT evaluation's held-out agents "
        "stay unseen); 0 leaves them out."
    )
    system_prompt: str | None = Field(
        None, description="System message of every single-turn prompt (null: none, as the gym)."
    )
    seed: int = Field(0, description="Seed of fresh tasks, the split and the open-prompt pick.")


@dataclass
class RLPrompt:
    """One prompt of the pool, with what its reward source needs."""

    prompt_id: str
    source: str  # reward source: verifier, critic, rubric
    task_type: str  # budget key: the gym domain, 'open', 'tool'
    messages: list[dict[str, Any]]
    item: dict[str, Any]  # the GymTask / OpenPrompt / tool task as a dict
    level: int = 1  # curriculum level (the gym difficulty)
    pass_rate: float | None = None  # the SFT model's measured success, when known
    context: str = ""  # category (open prompts) or domain

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> RLPrompt:
        return cls(**row)


def prompts_frame(prompts: Sequence[RLPrompt]) -> pl.DataFrame:
    """The prompts as a catalog table (``messages`` and ``item`` as JSON text)."""
    return pl.DataFrame([{**p.as_dict(), "messages": json.dumps(p.messages),
                          "item": json.dumps(p.item)} for p in prompts])


def prompts_from_frame(frame: pl.DataFrame) -> list[RLPrompt]:
    """``prompts_frame`` read back."""
    return [RLPrompt.from_dict({**row, "messages": json.loads(row["messages"]),
                                "item": json.loads(row["item"])})
            for row in frame.iter_rows(named=True)]


def _heldout(key: str, share: float, seed: int) -> bool:
    digest = hashlib.sha256(f"rl:{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def band_levels(gym_scores: pl.DataFrame, band: tuple[float, float]
                ) -> list[tuple[str, int, float]]:
    """(domain, level, pass rate) of every gym level whose pass rate is in the band."""
    low, high = band
    levels = gym_scores.filter(pl.col("scope") == "level").sort("domain", "difficulty")
    return [(r["domain"], int(r["difficulty"]), float(r["pass_rate"]))
            for r in levels.iter_rows(named=True) if low <= r["pass_rate"] <= high]


def fresh_tasks(levels: Iterable[tuple[str, int, float]], per_level: int, seed: int,
                known: Iterable[GymTask]) -> list[tuple[GymTask, float]]:
    """``per_level`` new tasks of each level (with the level's pass rate), none repeating a
    known task's id or prompt."""
    seen_ids = {t.task_id for t in known}
    seen_prompts = {(t.domain, t.prompt) for t in known}
    out = []
    for domain, level, rate in levels:
        rng = random.Random(f"rl:{seed}:{domain}:{level}")
        for task in get_domain(domain).generate(rng, per_level, level):
            if task.task_id in seen_ids or (task.domain, task.prompt) in seen_prompts:
                continue
            seen_ids.add(task.task_id)
            seen_prompts.add((task.domain, task.prompt))
            out.append((task, rate))
    return out


def gym_prompt(task: GymTask, pass_rate: float | None, system_prompt: str | None) -> RLPrompt:
    return RLPrompt(
        prompt_id=task.task_id, source="verifier", task_type=task.domain,
        messages=chat_prompt(task, system_prompt),  # what the gym asks: the same messages
        item=task.model_dump(mode="json"), level=task.difficulty, pass_rate=pass_rate,
        context=task.domain,
    )


def open_prompt(prompt: OpenPrompt, system_prompt: str | None) -> RLPrompt:
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return RLPrompt(
        prompt_id=prompt.prompt_id, source="critic", task_type="open",
        messages=[*messages, {"role": "user", "content": prompt.prompt}],
        item=prompt.model_dump(mode="json"), context=prompt.category,
    )


def tool_prompt(item: Any) -> RLPrompt:
    """A tool task (an ``agents.rollout.WorkItem``) as a prompt of the ``rubric`` source; its
    messages are written by the episode, so the prompt keeps only what plays it."""
    return RLPrompt(
        prompt_id=item.task.task_id, source="rubric", task_type="tool", messages=[],
        item={"agent": item.agent.model_dump(mode="json"),
              "task": item.task.model_dump(mode="json"),
              "tools": [t.model_dump(mode="json") for t in item.tools],
              "persona": item.persona, "seed": item.seed},
        context=item.agent.agent_id,
    )


@dataclass
class PromptPool:
    """The train prompts and the held-out verifier tasks."""

    train: list[RLPrompt]
    heldout: list[GymTask]
    stats: dict[str, Any] = field(default_factory=dict)


def build_pool(rl_prompts: Sequence[GymTask], pass_rates: dict[str, float],
               gym_tasks: Sequence[GymTask], gym_scores: pl.DataFrame,
               open_prompts: Sequence[OpenPrompt], config: PoolConfig,
               tool_items: Sequence[Any] = ()) -> PromptPool:
    """rl_prompts + fresh band tasks, split train/held-out by task; plus open prompts and the
    first ``config.tool_tasks`` of ``tool_items`` (work items of tool tasks)."""
    levels = band_levels(gym_scores, config.band)
    fresh = fresh_tasks(levels, config.fresh_per_level, config.seed, [*gym_tasks, *rl_prompts])
    candidates = [(t, pass_rates.get(t.task_id)) for t in rl_prompts] + fresh
    train, heldout = [], []
    for task, rate in candidates:
        if _heldout(task.task_id, config.heldout_share, config.seed):
            heldout.append(task)
        else:
            train.append(gym_prompt(task, rate, config.system_prompt))
    rng = random.Random(f"rl-open:{config.seed}")
    opened = sorted(open_prompts, key=lambda p: p.prompt_id)
    picked = rng.sample(opened, min(config.open_prompts, len(opened)))
    train += [open_prompt(p, config.system_prompt) for p in picked]
    train += [tool_prompt(item) for item in list(tool_items)[: config.tool_tasks]]
    stats = {
        "band_levels": [f"{d}/L{level} ({rate:.2f})" for d, level, rate in levels],
        "rl_prompts": len(rl_prompts), "fresh_tasks": len(fresh),
        "train_verifier": sum(p.source == "verifier" for p in train),
        "train_open": sum(p.source == "critic" for p in train),
        "train_tool": sum(p.source == "rubric" for p in train),
        "heldout": len(heldout),
    }
    return PromptPool(train, heldout, stats)


PRIORITIES = {  # success rate → draw weight (before the floor)
    "k1.5": lambda s: 1.0 - s,
    "variance": lambda s: s * (1.0 - s),
    "uniform": lambda s: 1.0,
}


class SamplerConfig(BaseModel):
    """K1.5's prompt sampling."""

    model_config = ConfigDict(extra="forbid")

    prompts_per_iteration: int = Field(8, ge=1, description="Prompts drawn per iteration.")
    priority: Literal["k1.5", "variance", "uniform"] = Field(
        "k1.5", description="Draw weight of a prompt from its success rate s: 'k1.5' (1 − s), "
        "k1.5's priority of unsolved prompts, meant for a pool already filtered to moderate "
        "difficulty; 'variance' s·(1 − s), the variance of its 0/1 reward: a prompt the "
        "policy never (or always) solves gives K equal rewards and no gradient, so draws go "
        "where the group baseline has something to compare; 'uniform'. Each plus the floor."
    )
    priority_floor: float = Field(
        0.05, ge=0, description="Added to every weight, so solved prompts still come back."
    )
    curriculum_iterations: int = Field(
        0, ge=0, description="Levels above 1 enter one by one over this many iterations "
        "(0: every level from the start)."
    )
    success_momentum: float = Field(
        0.5, ge=0, lt=1, description="Success rate ← m·old + (1 − m)·this iteration's mean."
    )
    source_shares: dict[str, float] = Field(
        default_factory=lambda: {"verifier": 0.75, "critic": 0.25, "rubric": 0.0},
        description="Share of each iteration's prompts per reward source (renormalised over "
        "the sources present in the pool).",
    )
    balance: Literal["none", "task_type"] = Field(
        "none", description="'task_type': within a source, every task type (gym domain, "
        "'open', 'tool') gets the same draw mass, the priority choosing among its own prompts. "
        "Without it the priority alone decides, and the domain whose rewards vary most (on "
        "SmolLM2, safety: refusing harmful prompts) takes most draws; what it teaches (refuse) "
        "then spreads to the others (instruction following, faithfulness) unchecked."
    )


class PromptSampler:
    """Draws each iteration's prompts (curriculum + priority), remembers success rates."""

    def __init__(self, prompts: Sequence[RLPrompt], config: SamplerConfig, seed: int,
                 state: dict[str, Any] | None = None):
        self.prompts, self.config, self.seed = list(prompts), config, seed
        self.success: dict[str, float] = {
            p.prompt_id: (p.pass_rate if p.pass_rate is not None else 0.5) for p in prompts}
        if state:
            self.success.update(state["success"])

    def state(self) -> dict[str, Any]:
        return {"success": dict(self.success)}

    def _max_level(self, iteration: int) -> int:
        top = max((p.level for p in self.prompts), default=1)
        if not self.config.curriculum_iterations:
            return top
        step = self.config.curriculum_iterations / max(1, top - 1)
        return 1 + int(iteration / step) if step else top

    def _quota(self) -> dict[str, int]:
        present = {p.source for p in self.prompts}
        shares = {s: w for s, w in self.config.source_shares.items() if s in present and w > 0}
        total = sum(shares.values()) or 1.0
        n = self.config.prompts_per_iteration
        quota = {s: int(n * w / total) for s, w in shares.items()}
        for s in sorted(shares, key=lambda s: -shares[s])[: n - sum(quota.values())]:
            quota[s] += 1
        return quota

    def draw(self, iteration: int) -> list[RLPrompt]:
        rng = random.Random(f"rl-draw:{self.seed}:{iteration}")
        top = self._max_level(iteration)
        out: list[RLPrompt] = []
        for source, n in sorted(self._quota().items()):
            pool = [p for p in self.prompts if p.source == source and p.level <= top]
            out += self._weighted(pool, n, rng)
        return out

    def _weighted(self, pool: list[RLPrompt], n: int, rng: random.Random) -> list[RLPrompt]:
        """``n`` distinct prompts (all when fewer), drawn with the priority weights."""
        pool, picked = list(pool), []
        while pool and len(picked) < n:
            weights = [PRIORITIES[self.config.priority](self.success[p.prompt_id])
                       + self.config.priority_floor for p in pool]
            if self.config.balance == "task_type":
                mass: dict[str, float] = {}
                for p, w in zip(pool, weights):
                    mass[p.task_type] = mass.get(p.task_type, 0.0) + w
                weights = [w / mass[p.task_type] for p, w in zip(pool, weights)]
            i = rng.choices(range(len(pool)), weights=weights)[0]
            picked.append(pool.pop(i))
        return picked

    def update(self, rewards: dict[str, float]) -> None:
        """Fold one iteration's mean task reward per prompt into its success rate."""
        m = self.config.success_momentum
        for prompt_id, mean in rewards.items():
            self.success[prompt_id] = m * self.success.get(prompt_id, 0.5) + (1 - m) * mean
