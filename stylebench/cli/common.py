"""What every command shares: the console, the data directory, logging and error reporting."""

from __future__ import annotations

import errno
import gc
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
import typer.core
import typer.exceptions
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
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


class _CleanRecords(logging.Filter):
    """Log lines quote stored text (URLs, errors): no terminal control sequences through."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = clean(record.getMessage()), None
        return True


def setup_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity < 0 else logging.INFO if verbosity == 0 else logging.DEBUG
    handler = RichHandler(console=err_console, show_path=verbosity > 1, rich_tracebacks=True)
    handler.addFilter(_CleanRecords())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for noisy in ("urllib3", "botocore", "s3fs", "fsspec", "PIL", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # asyncio's "Task exception was never retrieved", with a traceback, comes from a library's
    # own task left behind by a failure that the command reports itself (an object store's
    # connection dropped mid-upload): shown with -v only.
    logging.getLogger("asyncio").setLevel(logging.DEBUG if verbosity > 0 else logging.CRITICAL)


# Terminal escape sequences (CSI, OSC, other ESC pairs) and control characters but tab and
# newline: stored text (URLs, reasons, errors) comes from the web and must not drive the terminal.
_TERMINAL_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?"
    r"|\x9b[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def clean(value: Any) -> str:
    """``value`` as text with terminal escape sequences and control characters removed."""
    return _TERMINAL_CONTROL.sub("", "" if value is None else str(value))


def escaped(value: Any) -> str:
    """Stored or user text for a Rich markup string: controls removed, ``[`` escaped."""
    return escape(clean(value))


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {escaped(message)}", soft_wrap=True)  # one line
    return typer.Exit(code)


EXIT_ERROR = 1  # bad input or a problem with the data directory, explained
EXIT_INTERNAL = 70  # a bug (EX_SOFTWARE): one line, the traceback with -vv
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


_ERRNO_HINTS = {
    errno.ENOSPC: "free some space on that disk, or write elsewhere",
    errno.EDQUOT: "free some space within your quota, or write elsewhere",
    errno.EROFS: "that file system is read-only; write elsewhere",
    errno.EIO: "the disk or network mount failed; check it",
    errno.ELOOP: "a symbolic link loop; fix or remove the link",
}


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    hint = _ERRNO_HINTS.get(exc.errno) if exc.errno is not None else None
    if hint is not None:
        return f"{where}: {what}; {hint}" if where else f"{what}; {hint}"
    hint = {
        FileNotFoundError: "check the path; its folder must exist",
        IsADirectoryError: "that is a folder; give a file name",
        NotADirectoryError: "a part of that path is a file, not a folder",
        PermissionError: "check the permissions, or choose another path",
        FileExistsError: "choose another name, or remove it first",
    }.get(type(exc), "check the path, the disk and the permissions")
    return f"{where}: {what}; {hint}" if where else f"{what}; {hint}"


def ephemeral_server_advice(exc: BaseException) -> str | None:
    """What to do when Prefect's ephemeral API server did not start, or None for other errors."""
    if not isinstance(exc, RuntimeError) or "ephemeral Prefect API server" not in str(exc):
        return None
    import os

    waited = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20")
    return (
        f"Prefect's temporary local API server did not start within {waited} s (this machine "
        "may be busy). Start a server once in another terminal with `prefect server start` "
        "and `export PREFECT_API_URL=http://127.0.0.1:4200/api`, or give it longer with "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=300, or run `stylebench stylize` "
        "with --no-prefect."
    )


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in out:
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


_HTTPX_UNREACHABLE = frozenset(
    {"ConnectError", "ConnectTimeout", "ReadTimeout", "RemoteProtocolError", "ReadError"}
)


def prefect_api_advice(exc: BaseException) -> str | None:
    """What to do when the Prefect API cannot be reached, or None for other errors."""
    import os

    for link in _chain(exc):
        text = str(link).strip()
        module = type(link).__module__.split(".")[0]
        if (isinstance(link, RuntimeError) and text.startswith("Failed to reach API at")) or (
            module in ("httpx", "httpcore") and type(link).__name__ in _HTTPX_UNREACHABLE
        ):
            url = os.environ.get("PREFECT_API_URL") or text.removeprefix("Failed to reach API at")
            cause = next(
                (str(c) for c in _chain(exc) if type(c).__module__.startswith("httpx")), text
            )
            return (
                f"cannot reach the Prefect API at {url.strip()} ({cause or 'no answer'}): start "
                "the server with `prefect server start`, point PREFECT_API_URL at a running "
                "one, or unset PREFECT_API_URL to let stylebench start a temporary one; "
                "`stylebench stylize --no-prefect` runs without Prefect."
            )
    return None


def describe_error(exc: BaseException, data_dir: str | None = None) -> str | None:
    """One line for an error a user can act on, or None for an unexpected one (a bug).

    ``data_dir``: the data directory the command used, named when it is the cause.
    """
    from PIL import Image

    from storage.location import (
        StorageError,
        fault_of_environment,
        object_store_fault,
        resolve_location,
    )

    advice = ephemeral_server_advice(exc) or prefect_api_advice(exc)
    if advice is not None:
        return advice
    if isinstance(exc, Image.DecompressionBombError):
        return f"{exc}; downscale the image first"
    if isinstance(exc, StorageError):
        return str(exc)
    if isinstance(exc, RuntimeError) and str(exc).startswith("Symlink loop"):
        return f"{exc}: a symbolic link loop; fix or remove the link"  # Path.resolve()
    fault = object_store_fault(exc) or (
        None if isinstance(exc, OSError) else fault_of_environment(exc)
    )
    if fault is not None:  # an object store's errors (unreachable, credentials refused)
        return f"data directory {resolve_location(data_dir)}: {fault}"
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, ValueError):
        return str(exc)
    names = {c.__module__.split(".")[0] + "." + c.__name__ for c in type(exc).__mro__}
    if names & {"scraper.ScraperError", "styletransfer.WeightsUnavailable"}:
        return str(exc)
    if "_duckdb.Error" in names or "pyarrow.ArrowException" in names:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            f"{first}; a file under tables/ may be damaged or not one of ours: move it out "
            "of the data directory (keep it) and run the command again"
        )
    return None


# A default the help text states itself, e.g. "Longest side in pixels [default: 256]."
_STATED_DEFAULT = re.compile(r"\[default: [^\]]*\]")


def literal_help(command: Any) -> None:
    """Show every option's help of ``command`` as written.

    Rich markup would read a ``[default: 256]`` in the text as a style tag and drop it, which
    left "Optimisation steps ." in --help; escaped, it shows, and typer adds no second default
    beside the one the text states.
    """
    if getattr(command, "rich_markup_mode", None) != "rich":
        return
    for param in command.params:
        text = getattr(param, "help", None)
        if not text or "[" not in text:
            continue
        if _STATED_DEFAULT.search(text):
            param.show_default = False
        param.help = escape(text)


class ErrorBoundary(typer.core.TyperGroup):
    """Every command's errors end as one line on stderr and an exit code, never a traceback.

    Errors a user can act on (bad input, a missing or unwritable path, a damaged file, a
    full disk, an unreachable server) exit 1 with what to do; Ctrl-C exits 130; anything
    else is a bug: one line, exit 70, the traceback with -vv.
    Option help shows as written (``literal_help``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in (self, *self.commands.values()):
            literal_help(command)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.exceptions.TyperException):
            raise  # exits, usage errors and --help: typer reports these itself
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            verbose = isinstance(ctx.obj, Settings) and ctx.obj.verbosity > 1
            data_dir = ctx.obj.data_dir if isinstance(ctx.obj, Settings) else None
            message = describe_error(exc, data_dir)
            if message is not None:
                raise fail(message, EXIT_ERROR) from None
            if verbose:
                raise
            raise fail(
                f"internal error ({type(exc).__name__}: {exc}); rerun with -vv for the "
                "traceback and report it",
                EXIT_INTERNAL,
            ) from None


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused, for a command's imports.

    Importing torch, Prefect and the methods makes hundreds of thousands of objects and
    hardly any garbage; the collections they trigger took 0.2 s of a batch's start, 0.55 s
    with Prefect, on a 2-core machine. What they made lives as long as the command: it is
    frozen (``gc.freeze``), left out of the collections that follow.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


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


def split_values(
    values: Sequence[str] | None, option: str, numbers: bool = False
) -> tuple[Any, ...] | None:
    """The one parser of list options: ``--x a b``, ``--x a,b`` and ``--x a --x b`` all give
    ``("a", "b")`` (floats with ``numbers``); None when the option was not given. A value that
    is not a number raises a ValueError showing the forms."""
    if not values:
        return None
    parts = tuple(p for value in values for p in value.replace(",", " ").split())
    if not numbers:
        return parts
    bad = next((p for p in parts if not _is_number(p)), None)
    if bad is not None:
        raise ValueError(
            f"{option} must be numbers, got {bad!r}: give them as {option} 0.7 0.3, "
            f"{option} 0.7,0.3 or {option} 0.7 {option} 0.3"
        )
    return tuple(float(p) for p in parts)


def key_values(values: Sequence[str] | None, option: str) -> dict[str, str]:
    """``KEY=VALUE`` items of a repeatable option as a mapping (a ValueError shows the form)."""
    out: dict[str, str] = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{option} takes KEY=VALUE, e.g. {option} segments=2; got {item!r}")
        out[key.strip()] = value.strip()
    return out


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
