"""The ``stylebench`` command: global options, then one sub-command per chore."""

from __future__ import annotations

import gc

import typer
import typer.core

from stylebench import __version__
from stylebench.cli import catalog, data, pipeline
from stylebench.cli import engines as engines_cli
from stylebench.cli import fast as fast_cli
from stylebench.cli import transfer as transfer_cli
from stylebench.cli.common import (
    ErrorBoundary,
    Settings,
    ephemeral_server_advice,
    fail,
    prefect_api_advice,
    setup_logging,
)

app = typer.Typer(
    name="stylebench",
    cls=ErrorBoundary,
    help="Build style-transfer datasets from web searches, run style transfer in batches, "
    "and record every run's timings and losses in Parquet.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stylebench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: str = typer.Option(
        None,
        "--data-dir",
        "-d",
        envvar="STYLEBENCH_DATA",
        help="Data directory: a local path or an fsspec URL such as s3://bucket/prefix "
        "[default: ./stylebench-data].",
        show_default=False,
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging (-vv: debug)."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only warnings and errors; no progress bars."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    verbosity = -1 if quiet else verbose
    ctx.obj = Settings(data_dir=data_dir, verbosity=verbosity)
    setup_logging(verbosity)


data.register(app)
catalog.register(app)
pipeline.register(app)
transfer_cli.register(app)
fast_cli.register(app)
engines_cli.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        app(args=argv, prog_name="stylebench")
    except RuntimeError as exc:
        advice = ephemeral_server_advice(exc) or prefect_api_advice(exc)
        if advice is None:
            raise
        raise SystemExit(fail(advice).exit_code) from None
    finally:
        if argv is None:
            # The process ends here: no collection over torch's objects at exit (0.4 s of
            # the 0.6 s that the interpreter's shutdown took after a batch).
            gc.freeze()


if __name__ == "__main__":
    main()
