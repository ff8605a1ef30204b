"""Rewards of an RL iteration's samples, each scored by the reward source of its prompt.

A prompt names its source (``RLPrompt.source``): ``verifier`` (the gym domains' checkers, an
LLM judge where a domain is configured with one), ``critic`` (the critic's win rates among a
prompt's K answers) or ``rubric`` (the rubric judge of tool episodes); the protocol behind them
is ``kimi_pipeline.rewards``. ``RewardRouter`` scores every prompt's K samples together through
its source and weights the score per source (``rl.rewards.weights``); budget shaping comes after
(``rl/budget.py``). The critic can be swapped after a refresh (``set_critic``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from kimi_pipeline.rl.config import RLConfig
from kimi_pipeline.rl.rollouts import Sampled


class RewardRouter:
    """Scores samples through the reward source of their prompt, weighted per source."""

    def __init__(self, config: RLConfig, critic: Any = None, rubric_names: list[str] = ()):
        from kimi_pipeline.gym.registry import get_domain
        from kimi_pipeline.rewards import make_reward

        domains = {}
        for name, backend in config.rewards.judges.items():
            from kimi_pipeline.llm.base import make_backend

            domains[name] = get_domain(name).with_judge(make_backend(backend))
        self.sources: dict[str, Any] = {
            "verifier": make_reward("verifier", domains=domains,
                                    max_workers=config.rewards.verify_workers)}
        if critic is not None:
            self.sources["critic"] = make_reward("critic", judge=critic, rubrics=rubric_names,
                                                 method=config.critic.method,
                                                 margin=config.critic.margin)
        self.sources["rubric"] = make_reward("rubric", judge=config.episodes.judge)
        self.weights = config.rewards.weights

    def set_critic(self, critic: Any) -> None:
        if "critic" in self.sources:
            self.sources["critic"].judge = critic

    def score(self, samples: list[Sampled]) -> None:
        """Fill ``reward`` and ``reason`` of every sample (weighted by its source)."""
        from kimi_pipeline.records import GymTask
        from kimi_pipeline.rewards import RewardGroup

        groups: dict[int, list[Sampled]] = defaultdict(list)
        for s in samples:
            groups[s.group].append(s)
        by_source: dict[str, list[list[Sampled]]] = defaultdict(list)
        for members in groups.values():
            by_source[members[0].prompt.source].append(members)
        for source, grouped in by_source.items():
            reward = self.sources.get(source)
            if reward is None:
                for s in (s for g in grouped for s in g):
                    s.reward, s.reason = 0.0, f"no reward source {source!r} in this run"
                continue
            requests = []
            for members in grouped:
                prompt = members[0].prompt
                item = GymTask.model_validate(prompt.item) if source == "verifier" else prompt.item
                requests.append(RewardGroup(
                    prompt=prompt.messages[-1]["content"] if prompt.messages else "",
                    candidates=[s.text if s.candidate is None else s.candidate for s in members],
                    item=item, context=prompt.context))
            weight = self.weights.get(source, 1.0)
            for members, results in zip(grouped, reward.score(requests), strict=True):
                for s, r in zip(members, results, strict=True):
                    s.score, s.reward, s.reason = r.score, weight * r.score, r.reason
