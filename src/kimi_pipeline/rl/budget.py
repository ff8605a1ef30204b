"""Budget control of RL responses: a token budget per task type, a penalty for running over it,
and K1.5's length reward.

K2 (§3.2) caps each task type's response length and penalises responses that hit the cap, so
RL does not teach the policy to ramble; K1.5 (§2.3) adds a length reward inside each prompt's
group of K samples, λ = 0.5 − (len − min_len)/(max_len − min_len): a correct answer gets λ
(shorter is better), a wrong one min(0, λ) (a long wrong answer is worse than a short one),
phased in after a warm-up because it slows early learning. Length counts only the policy's own
tokens (tool results and user turns are not the policy's).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LengthRewardConfig(BaseModel):
    """K1.5's length reward (off by default: our responses are short already)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Add the length reward to each sample's reward.")
    weight: float = Field(0.5, ge=0, description="Multiplier of λ at full strength.")
    warmup_iterations: int = Field(
        4, ge=0, description="Iterations before it starts; it then ramps up linearly over as "
        "many iterations again (k1.5 warms it up: it slows early training)."
    )
    correct_threshold: float = Field(
        0.5, ge=0, le=1, description="A reward at or above this counts as correct (gets λ)."
    )


class BudgetConfig(BaseModel):
    """Token budgets per task type and what running over them costs."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: dict[str, int] = Field(
        default_factory=lambda: {"default": 160},
        description="Most new tokens per response (per agent turn for tool episodes), by task "
        "type: a gym domain, 'open' (critic prompts), 'tool' (episodes); 'default' for the "
        "rest. A response cut at its budget is truncated.",
    )
    truncation_penalty: float = Field(
        0.5, ge=0, description="Subtracted from the reward of a response cut at its budget "
        "(its reward comes first from the verifier on the truncated text)."
    )
    length_reward: LengthRewardConfig = Field(
        default_factory=LengthRewardConfig, description="K1.5's length reward."
    )

    def budget(self, task_type: str) -> int:
        return self.max_tokens.get(task_type, self.max_tokens.get("default", 160))


def length_rewards(lengths: list[int], rewards: list[float], threshold: float) -> list[float]:
    """K1.5's λ for each of one group's samples (0 for all when their lengths are equal)."""
    shortest, longest = min(lengths), max(lengths)
    if longest == shortest:
        return [0.0] * len(lengths)
    out = []
    for length, reward in zip(lengths, rewards, strict=True):
        lam = 0.5 - (length - shortest) / (longest - shortest)
        out.append(lam if reward >= threshold else min(0.0, lam))
    return out


def length_weight(config: LengthRewardConfig, iteration: int) -> float:
    """Strength of the length reward at ``iteration``: 0 during warm-up, then a linear ramp."""
    if not config.enabled or iteration < config.warmup_iterations:
        return 0.0
    ramp = max(1, config.warmup_iterations)
    return config.weight * min(1.0, (iteration - config.warmup_iterations + 1) / ramp)


def shape_rewards(groups: list[list[tuple[float, int, bool]]], config: BudgetConfig,
                  iteration: int) -> list[list[dict[str, float]]]:
    """Final rewards of each group's samples from (reward, policy tokens, truncated): the
    truncation penalty, then the phased-in length reward; each with its parts for logging."""
    weight = length_weight(config.length_reward, iteration)
    shaped = []
    for group in groups:
        rewards = [r for r, _, _ in group]
        lam = (length_rewards([n for _, n, _ in group], rewards,
                              config.length_reward.correct_threshold)
               if weight else [0.0] * len(group))
        shaped.append([
            {"task": r, "truncation": -config.truncation_penalty if cut else 0.0,
             "length": weight * bonus,
             "total": r - (config.truncation_penalty if cut else 0.0) + weight * bonus}
            for (r, _, cut), bonus in zip(group, lam, strict=True)
        ])
    return shaped
