"""The rl stage's library: prompt pool, rollouts (single-turn and tool episodes), budgets,
schedules and the policy-optimisation loop."""
