"""Deterministic stand-ins for the LLM roles of the tools package (one module per role, here
``tool_evolver``, plus the ``tool_drafts`` and ``vocabulary`` it composes tools with);
production code never imports them except through the offline backend
(``llm.offline.ROLE_MODULES``)."""
