"""Judging synthesised trajectories before they become training data (K2 rejection sampling).

``rubric``: the rubric judge (rule-based and LLM-as-judge behind one ``Judge`` interface);
``format_checks``: APIGen-style format and execution checks; ``quality``: how well the rule
judge's verdicts match the outcomes the offline generator knows.
"""
