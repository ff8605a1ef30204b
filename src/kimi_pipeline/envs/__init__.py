"""Worlds tools run in: the world model for any tool spec, real SQLite/file-system environments, the user simulator and the episode loop."""
