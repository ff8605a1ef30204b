"""Errors that are the user's to fix, as opposed to bugs in the pipeline.

A ``UserError`` carries a message that is complete on one line: what is wrong, where (key and
file, dataset and producing stage, server and cause) and what to do. The project's ``kedro run``
(``kimi_pipeline.cli``) prints such an error as that one line and exits non-zero, with the
traceback only under ``--verbose``; every other exception keeps its traceback, because it is
the pipeline's bug and the traceback is what fixes it.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the command line, the configuration or the inputs; the message says how to fix it."""


class SourceFailedError(UserError, RuntimeError):
    """A tool source (an MCP server) failed while the configuration requires every source."""


class MissingInputError(UserError, LookupError):
    """A pipeline input does not exist yet; the message names the stage and command that make it."""
