"""Deterministic stand-ins for the critic package's LLM roles (``open_prompt_writer``);
production code never imports them except through the offline backend (``llm/offline.py``)."""
