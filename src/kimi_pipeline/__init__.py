"""kimi-pipeline: post-train a language model into a tool-using agent the way Kimi K2 was."""

__version__ = "0.1.0"
