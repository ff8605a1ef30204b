"""Deterministic stand-ins for the LLM roles of the gym package (one module per role); production
code never imports them except through the offline backend (``llm.offline.ROLE_MODULES``)."""
