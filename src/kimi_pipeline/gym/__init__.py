"""The Verifiable Rewards Gym: domains, verifiers, the code sandbox, pass@k."""
