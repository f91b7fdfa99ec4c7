"""Commands over the tables: ``query``, ``info`` and ``compact``."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from stylebench.cli.common import console, escaped, fail, human_bytes, settings

LOCKED_TIMEOUT_S = 300.0  # a locked query (SQL from anyone) stops after five minutes


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def _render(result, limit: int) -> Table:
    view = Table(show_lines=False, header_style="bold")
    for name in result.column_names:
        view.add_column(escaped(name), overflow="fold")
    for row in result.slice(0, limit).to_pylist():
        view.add_row(*("" if v is None else escaped(v) for v in row.values()))
    return view


def query(
    ctx: typer.Context,
    sql: str = typer.Argument(
        ...,
        help="SQL over the tables (DuckDB dialect), e.g. "
        '"select method, count(*) from runs group by 1".',
    ),
    fmt: OutputFormat = typer.Option(
        OutputFormat.table, "--format", "-f", help="Output format [default: table on the terminal]."
    ),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="File to write (required for parquet; csv/json print to stdout without it).",
    ),
    limit: int = typer.Option(100, help="Rows shown in table format [default: 100]."),
    unlocked: bool = typer.Option(
        False,
        "--unlocked",
        help="Lift the lock: let the SQL read and write any file, load extensions and change "
        "settings (for a machine of your own) [default: locked to reading the tables].",
    ),
    timeout: float = typer.Option(
        None,
        "--timeout",
        min=0,
        help="Stop the query after this many seconds (0: no limit). Default: "
        f"{LOCKED_TIMEOUT_S:g} when locked, no limit with --unlocked.",
        show_default=False,
    ),
) -> None:
    """Run SQL over the tables: images, curation, pairs, runs, loss_curves, loss_matrix
    (and the views catalog and curation_latest). Reading statements only, over the
    tables' files only, unless --unlocked. Ctrl-C stops a running query (exit 130)."""
    import logging

    from storage import QueryError
    from stylebench.cli.output import check_output_file, csv_ready, terminal_safe

    if output is not None:
        check_output_file(output, "--output")
    store = settings(ctx).store()
    limit_s = timeout if timeout is not None else (None if unlocked else LOCKED_TIMEOUT_S)
    logging.getLogger(__name__).debug(
        "running the query (%s, time limit %s)",
        "unlocked" if unlocked else "locked",
        f"{limit_s:g} s" if limit_s else "none",
    )
    try:
        result = store.query(sql, locked=not unlocked, timeout=limit_s or None)
    except QueryError as exc:
        raise fail(str(exc)) from None
    if fmt is OutputFormat.table:
        console.print(_render(result, limit))
        shown = min(limit, result.num_rows)
        console.print(
            f"[dim]{result.num_rows} row(s){'' if shown == result.num_rows else f', {shown} shown'}[/]"
        )
        return
    if fmt is OutputFormat.parquet:
        if output is None:
            raise fail("--format parquet needs --output FILE.parquet")
        import pyarrow.parquet as pq

        pq.write_table(result, output)
    elif fmt is OutputFormat.csv:
        import pyarrow.csv as pacsv

        if output is None:
            import sys

            table = csv_ready(result)
            if sys.stdout.isatty():
                table = terminal_safe(table)
            pacsv.write_csv(table, sys.stdout.buffer)
        else:
            pacsv.write_csv(csv_ready(result), output)
    else:
        text = json.dumps(result.to_pylist(), default=str, indent=1)
        if output is None:
            typer.echo(text)
        else:
            output.write_text(text + "\n")
    if output is not None:
        console.print(f"wrote {result.num_rows} row(s) to {output}")


def info(ctx: typer.Context) -> None:
    """Show the data directory, each table's rows, files and size, and disk use."""
    store = settings(ctx).store()
    console.print(f"[bold]data directory[/]: {store.display('')}")
    view = Table("table", "rows", "files", "size", header_style="bold")
    from storage import QueryError

    try:
        tables = store.info()
    except QueryError as exc:
        raise fail(str(exc)) from None
    for t in tables:
        view.add_row(t.table, f"{t.rows:,}", f"{t.files:,}", human_bytes(t.bytes))
    console.print(view)
    for sub in ("images", "outputs", "models"):
        n, size = store.disk_usage(sub)
        console.print(f"{sub + '/':9} {n:>7,} files  {human_bytes(size)}")


def compact(
    ctx: typer.Context,
    tables: list[str] = typer.Argument(None, help="Tables to compact [default: all]."),
) -> None:
    """Merge each table's small Parquet files into a few large ones, keeping every row; remove
    the temporary files that interrupted writes left in the data directory."""
    from storage import TABLES

    store = settings(ctx).store()
    unknown = [t for t in tables or [] if t not in TABLES]
    if unknown:
        raise fail(f"unknown table(s) {', '.join(unknown)}; the tables are: {', '.join(TABLES)}")
    removed = store.remove_stale_temporaries()
    if removed:
        console.print(f"removed {removed} temporary file(s) that interrupted writes left")
    for table in tables or TABLES:
        try:
            r = store.compact(table)
        except ValueError as exc:
            raise fail(f"{table}: {exc}") from None
        if r.skipped:
            console.print(f"{table}: skipped, {escape(r.skipped)}")
            continue
        console.print(f"{table}: {r.files_before} file(s) -> {r.files_after}, {r.rows:,} rows")
        for path in r.quarantined:
            console.print(f"  moved a damaged or foreign file to {escape(path)}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(query)
    app.command()(info)
    app.command()(compact)
