"""``stylebench engines [--check]``: the search engines, what each needs, and a live canary."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from stylebench.cli.common import console, fail

STATUS_STYLE = {
    "ok": "green",
    "no key": "yellow",
    "closed": "yellow",
    "blocked": "red",
    "layout changed": "red",
    "empty": "red",
    "error": "red",
}


def engines(
    check: bool = typer.Option(
        False,
        "--check",
        help="Make one small live query per engine (first page, no downloads) and report "
        "ok / blocked / layout changed / no key; exit 1 when any engine fails (for cron).",
    ),
    engine: list[str] = typer.Option(
        None, "--engine", "-e", help="Only these engines (repeatable) [default: all]."
    ),
    query: str = typer.Option("landscape", "--query", help="What --check searches for."),
) -> None:
    """List the search engines, which need a key (and whether it is set); --check tests them."""
    from scraper.engines import ENGINES, canary

    names = list(ENGINES)
    if engine:
        unknown = [e for e in engine if e not in ENGINES]
        if unknown:
            raise fail(f"unknown engine {unknown[0]!r}; choose from: {', '.join(ENGINES)}")
        names = [n for n in names if n in engine]

    table = Table(show_lines=False)
    for column in ("engine", "source", "needs", "licences", "address"):
        table.add_column(column)
    if check:
        table.add_column("check")
        table.add_column("detail", overflow="fold")
    failed = []
    for name in names:
        info = canary.INFO[name]
        if info.keys:
            needs = ", ".join(
                f"{k} ({'set' if os.environ.get(k) else 'not set'})" for k in info.keys
            )
            needs += " (optional)" if info.keys_optional else ""
        else:
            needs = "-"
        override = os.environ.get(f"STYLEBENCH_{name.upper()}_URL")
        address = override or ENGINES[name].DEFAULT_URL
        row = [name, info.source, needs, "yes" if info.licences else "-", address]
        if check:
            result = canary.check(name, query=query)
            style = STATUS_STYLE.get(result.status, "")
            row += [f"[{style}]{result.status}[/]" if style else result.status, result.detail]
            if result.failed:
                failed.append(name)
        table.add_row(*row)
    console.print(table)
    if failed:
        raise fail(f"{len(failed)} engine(s) failing: {', '.join(failed)}")


def register(app: typer.Typer) -> None:
    app.command()(engines)
