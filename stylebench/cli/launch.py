"""The ``stylebench`` program: starts what its command will wait for, then the command line.

A command that runs its flows through Prefect's API, where none is configured, waits for a
temporary API server (``flows.prefect_client.temporary_api``); that server is started here,
before the command line's own imports (typer, rich, pydantic: 0.1 s on 2 cores), from the
command's words alone.
"""

from __future__ import annotations

import sys

# The commands that run their flows through Prefect's API (options that turn it off or ask for
# help start nothing), and the global options that take a value.
PREFECT_COMMANDS = frozenset({"stylize", "build-dataset"})
NO_FLOW_OPTIONS = frozenset({"--no-prefect", "--help", "-h"})
VALUED_OPTIONS = frozenset({"-d", "--data-dir"})


def command_of(argv: list[str]) -> tuple[str | None, list[str]]:
    """The command word of a ``stylebench`` command line and the words after it."""
    words = iter(argv)
    for word in words:
        if word in VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word, list(words)
    return None, []


def main() -> None:
    """Console-script entry point."""
    command, rest = command_of(sys.argv[1:])
    if command in PREFECT_COMMANDS and not NO_FLOW_OPTIONS.intersection(rest):
        from flows.prefect_client import start_temporary_server_early

        start_temporary_server_early()
    from stylebench.cli.main import main as run

    run()


if __name__ == "__main__":
    main()
