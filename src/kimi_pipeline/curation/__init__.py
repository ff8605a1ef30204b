"""Curation steps of the filtering stage: judged trajectories in, a training-ready SFT set out.

Each step takes a polars frame of trajectories (one row each, nested parts as JSON strings,
plus a ``judge_score`` column) and returns ``(kept, removed)``, where ``removed`` keeps the
input columns and adds ``step`` and ``reason``: nothing is dropped silently, and a row with
malformed ``messages`` is set aside with its reason rather than failing the run.

* ``dedup``: exact and MinHash-LSH near duplicates over requests and whole dialogues;
* ``decontaminate``: word n-gram overlap with gym tasks and held-out eval prompts;
* ``balance``: token-length limits and caps per tool, domain and persona;
* ``sft_format``: ``records.SftExample`` rows in the HF chat-with-tools format, split by agent.

``messages`` parses each row once into ``_cur_`` columns that later steps reuse;
``sft_format`` drops them.
"""
