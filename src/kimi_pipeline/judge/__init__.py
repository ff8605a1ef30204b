"""Judging synthesised trajectories before they become training data (K2 rejection sampling).

``rubric``: the rubric judge (rule-based and LLM-as-judge behind one ``Judge`` interface), with
its parts: ``episode`` (a trajectory read once), ``criteria`` (the registered rule criteria),
``rubric_llm`` (the LLM path: rubric prompt, repeats, vote through ``llm_judge``, the one
LLM-judge core) and ``offline/judge`` (the ``judge`` role's offline program);
``format_checks``: APIGen-style format and execution checks; ``quality``: how well the rule
judge's verdicts match the outcomes the offline generator knows.
"""
