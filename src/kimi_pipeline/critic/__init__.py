"""K2's self-critique rubric reward: a critic that compares pairs of the policy's answers under
rubrics, kept honest by retraining on on-policy rollouts whose correctness is verifiable."""
