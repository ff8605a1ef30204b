"""Tool specs: ingestion, normalisation, MCP harvesting, dedup, evolution, categories and map."""
