"""What every command shares: the console, the data directory, logging and error reporting."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import typer
import typer.core
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


def _is_number(token: str) -> bool:
    parts = [p for p in token.replace(",", " ").split() if p]
    try:
        [float(p) for p in parts]
    except ValueError:
        return False
    return bool(parts)


def spread_values(args: Sequence[str], options: Mapping[str, str]) -> list[str]:
    """``--opt a b c`` -> ``--opt a --opt b --opt c`` for the variadic ``options``.

    ``options`` maps each option to the values it takes after one flag: ``"numbers"``
    (tokens that parse as numbers, ``0.7`` or ``0.7,0.3``) or ``"words"`` (tokens that do
    not start with ``-``). The repeated-option and ``--opt=a`` forms pass unchanged.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        out.append(token)
        i += 1
        if token == "--":
            out.extend(args[i:])
            break
        kind = options.get(token)
        if kind is None or i >= len(args):
            continue
        out.append(args[i])  # the option's own value, whatever it looks like
        i += 1
        while i < len(args):
            nxt = args[i]
            if kind == "numbers" and not _is_number(nxt):
                break
            if kind == "words" and (nxt.startswith("-") or nxt == ""):
                break
            out += [token, nxt]
            i += 1
    return out


def variadic_command(options: Mapping[str, str]) -> type[typer.core.TyperCommand]:
    """A command class whose ``options`` also take several values after one flag."""

    class VariadicCommand(typer.core.TyperCommand):
        def parse_args(self, ctx, args: list[str]) -> list[str]:
            spread = spread_values(args, options)
            try:
                return super().parse_args(ctx, spread)
            except typer.BadParameter as exc:
                # A missing argument whose value a variadic option took: say so.
                param = getattr(exc, "param", None)
                if (
                    len(spread) == len(args)
                    or type(exc).__name__ != "MissingParameter"
                    or getattr(param, "param_type_name", "") != "argument"
                ):
                    raise
                names = " or ".join(o for o in options if o in args)
                exc.message = (
                    f" {names} takes every value up to the next option: give the arguments "
                    "before it, or end its values with --"
                )
                raise

    return VariadicCommand
