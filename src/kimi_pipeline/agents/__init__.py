"""Agents and their tasks: tool bundles with system prompts, tasks with rubrics, and the offline agent policy."""
