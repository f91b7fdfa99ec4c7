"""What every command shares: the console, the data directory, logging and error reporting."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console()
err_console = Console(stderr=True)


@dataclass
class Settings:
    """Options given before the command name."""

    data_dir: str | None = None
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose

    def store(self):  # -> storage.Store (imported lazily: keeps --help fast)
        from storage import Store

        return Store(self.data_dir)


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):
        obj = Settings()
        ctx.find_root().obj = obj
    return obj


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=verbosity > 1, rich_tracebacks=True)],
        force=True,
    )
    for noisy in ("urllib3", "botocore", "s3fs", "fsspec", "PIL", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


@contextmanager
def progress(quiet: bool = False) -> Iterator[Progress]:
    """A rich progress display for long work (silent with --quiet)."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet,
        transient=False,
    )
    with bar:
        yield bar


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
