"""kimi-pipeline: post-train a language model into a tool-using agent the way Kimi K2 was."""

from kimi_pipeline.quiet import filter_library_warnings

filter_library_warnings()  # for library use; `kedro` installs them first (the kedro.init entry point)

__version__ = "0.1.0"
