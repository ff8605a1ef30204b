"""``kimi-pipeline`` / ``python -m kimi_pipeline``: the packaged-project entry point.

With no subcommand it runs the project like ``kedro run`` (the project's ``run`` in
``kimi_pipeline.cli``, every option of it: ``kimi-pipeline --pipeline=sft --env=test``).
A first argument naming one of ``SUBCOMMANDS`` runs that command instead:
``kimi-pipeline doctor`` (what the configured run will use, and what is missing) and
``kimi-pipeline report`` (the newest run's headline tables). Dispatching on the first argument,
rather than a click group, keeps every ``run`` option where it was (a group would have to
re-declare them before the subcommand).
"""

import importlib
import sys
from pathlib import Path

# subcommand → (module, click command): imported only when asked for
SUBCOMMANDS = {
    "doctor": ("kimi_pipeline.doctor", "doctor_command"),
    "report": ("kimi_pipeline.summary", "report_command"),
}


def _subcommand(name: str):
    """The click command behind ``kimi-pipeline <name>``."""
    module, attribute = SUBCOMMANDS[name]
    return getattr(importlib.import_module(module), attribute)


def main(*args, **kwargs):
    argv = kwargs.get("args", args[0] if args else None)
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        rest = {k: v for k, v in kwargs.items() if k not in ("args", "prog_name")}
        command = _subcommand(argv[0])
        return command.main(args=argv[1:], prog_name=f"kimi-pipeline {argv[0]}", **rest)
    # imported here, not at the top: `doctor --json` must own stdout before Kedro logs anything
    from kedro.framework.cli.utils import find_run_command
    from kedro.framework.project import configure_project

    package_name = Path(__file__).parent.name
    configure_project(package_name)
    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    sys.exit(main())
