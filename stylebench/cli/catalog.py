"""Commands over the image catalog: ``scrape``, ``import``, ``curate``, ``images``, ``accept``,
``reject``."""

from __future__ import annotations

import base64
import io
import os
from collections import Counter
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from stylebench.cli.common import console, escaped, fail, progress, settings
from stylebench.vocabulary import (
    CC0_ENGINES,
    ENGINE_NAMES,
    IMPORT_MIN_SIDE,
    LICENCE_ENGINES,
    LICENSES,
    ROLES,
    SCRAPE_MIN_SIDE,
    STATUSES,
)

TEMPLATE = "contact_sheet.html.j2"
THUMB_SIDE = 240


# The choices of --role, --status and --engine (typer shows an Enum's values).
Role = Enum("Role", {name: name for name in ROLES}, type=str)
Status = Enum("Status", {name: name for name in STATUSES}, type=str)
Engine = Enum("Engine", {name: name for name in ENGINE_NAMES}, type=str)


def _land(ctx: typer.Context, label: str, call: Any) -> None:
    """Run a scrape or an import, ``call(progress)``, under a progress bar; print its summary,
    or fail with its error in one line."""
    from scraper import ScraperError

    quiet = settings(ctx).verbosity < 0
    try:
        with progress(quiet) as bar:
            task = bar.add_task(label, total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = call(report)
    except (ScraperError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(escaped(summary.render()))


def scrape(
    ctx: typer.Context,
    query: str = typer.Argument(..., help='Words to search for, e.g. "impressionist landscape".'),
    role: Role = typer.Option(..., "--role", help="What the images are for."),
    engine: Engine = typer.Option(Engine.bing, "--engine", "-e", help="Search engine."),
    max_n: int = typer.Option(50, "--max", "-n", min=1, help="Results to fetch."),
    min_side: int = typer.Option(
        SCRAPE_MIN_SIDE, "--min-side", min=1, help="Reject images whose short side is smaller."
    ),
    license_: list[str] = typer.Option(
        None,
        "--license",
        "-l",
        help=f"Keep only these licences (repeatable): {', '.join(LICENSES)}. Engines "
        f"{', '.join(LICENCE_ENGINES)}; {', '.join(CC0_ENGINES)} land CC0 only.",
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Fetch again the URLs that failed in earlier runs."
    ),
) -> None:
    """Search an engine and land the images in the catalog, curated (duplicates, size, shape).

    Running the same query again adds nothing: URLs already in the catalog are skipped.
    """
    from scraper import scrape as run_scrape

    store = settings(ctx).store()
    _land(
        ctx,
        f"{engine.value}: {query}",
        lambda report: run_scrape(
            store,
            query,
            role.value,
            engine.value,
            max_n,
            min_side=min_side,
            licenses=license_ or None,
            progress=report,
            retry_failed=retry_failed,
        ),
    )


def import_(
    ctx: typer.Context,
    sources: list[str] = typer.Argument(
        ...,
        help="Image files, folders (searched recursively), "
        "http(s) URLs, or .txt files listing any of these.",
    ),
    role: Role = typer.Option(..., "--role", help="What the images are for."),
    min_side: int = typer.Option(
        IMPORT_MIN_SIDE, "--min-side", min=1, help="Reject images whose short side is smaller."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Fetch again the sources that failed in earlier runs."
    ),
) -> None:
    """Import local images or URLs into the catalog, curated like a scrape (and as idempotent)."""
    from scraper import CurationConfig, import_sources

    store = settings(ctx).store()
    _land(
        ctx,
        "import",
        lambda report: import_sources(
            store,
            sources,
            role.value,
            progress=report,
            curation=CurationConfig(min_side=min_side),
            retry_failed=retry_failed,
        ),
    )


def import_pairs(
    ctx: typer.Context,
    folder: Path = typer.Argument(
        ...,
        help="A paired dataset: input/inN, style/tarN, segmentation/inN and segmentation/tarN "
        "(the DPST authors' layout), or inN, tarN, seg_inN, seg_tarN in the folder itself.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check the pairs and say what would be imported; store nothing."
    ),
) -> None:
    """Import content/style pairs with their segmentation masks: photos, masks and pairs.

    Each pair is checked first: its files decode and each mask has its photo's shape.

    Its two masks must share a label colour. A pair that fails is refused, naming the file.

    The others are imported and their photos accepted. Rerunning adds nothing.
    """
    from flows.paired import import_pairs as run_import

    try:
        result = run_import(settings(ctx).store(), folder, dry_run=dry_run)
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(escaped(result.render()), soft_wrap=True)  # a line per refused pair
    if result.refused and not result.pair_ids:
        raise fail(f"no pair of {folder} could be imported; see the lines above")


def _select(
    store: Any, role: Role | None, status: Status | None, query: str | None, engine: str | None
) -> list[dict[str, Any]]:
    return store.catalog.select(
        role=role and role.value, status=status and status.value, query=query, engine=engine
    )


def _thumbnail(store: Any, path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(store.local_path(path)) as image:
            image.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
            image = image.convert("RGB")
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _safe_link(url: str | None) -> str | None:
    """Only http(s) and file links reach the page (no javascript: from a hostile engine)."""
    return url if url and url.startswith(("http://", "https://", "file://")) else None


def write_contact_sheet(
    ctx: typer.Context,
    store: Any,
    rows: list[dict[str, Any]],
    out: Path,
    relative: bool,
    title: str,
) -> None:
    """Render the rows as an HTML page of thumbnails with status, reason and provenance."""
    from importlib.resources import files

    import jinja2

    if relative and not store.loc.is_local:
        raise fail("--relative needs a local data directory; drop it to embed thumbnails")
    quiet = settings(ctx).verbosity < 0
    cards = []
    with progress(quiet) as bar:
        task = bar.add_task("thumbnails", total=len(rows))
        for row in rows:
            src = None
            if row.get("path"):
                if relative:
                    src = os.path.relpath(store.local_path(row["path"]), out.resolve().parent)
                else:
                    src = _thumbnail(store, row["path"])
            links = {k: _safe_link(row.get(k)) for k in ("image_url", "page_url", "license_url")}
            cards.append({**row, **links, "src": src, "short_id": row["image_id"][:12]})
            bar.advance(task)
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        files("stylebench.cli").joinpath(TEMPLATE).read_text(encoding="utf-8")
    )
    counts = Counter(row.get("status") or "undecided" for row in rows)
    out.write_text(
        template.render(
            title=title,
            cards=cards,
            counts=sorted(counts.items()),
            data_dir=store.display(""),
            generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        ),
        encoding="utf-8",
    )


def images(
    ctx: typer.Context,
    role: Role = typer.Option(None, "--role", help="Only this role."),
    status: Status = typer.Option(None, "--status", help="Only this curation status."),
    query: str = typer.Option(None, "--query", help="Only images found by this search query."),
    engine: str = typer.Option(None, "--engine", help="Only this engine (or local, url)."),
    html: Path = typer.Option(None, "--html", help="Write a contact sheet (HTML) to this file."),
    relative: bool = typer.Option(
        False,
        "--relative",
        help="In the contact sheet, link the stored files by relative "
        "path instead of embedding thumbnails.",
    ),
    limit: int = typer.Option(50, "--limit", help="Rows shown in the terminal."),
) -> None:
    """List the catalog (one row per image, with its current status and reason)."""
    from stylebench.cli.output import check_output_file

    if html is not None:
        check_output_file(html, "--html")
    store = settings(ctx).store()
    rows = _select(store, role, status, query, engine)
    if html is not None:
        parts = [p for p in (role and role.value, status and status.value, query) if p]
        write_contact_sheet(
            ctx,
            store,
            rows,
            html,
            relative,
            "stylebench images" + (f" — {', '.join(parts)}" if parts else ""),
        )
        console.print(f"wrote {len(rows)} image(s) to {escaped(html)}")
        return
    view = Table(header_style="bold underline", box=None, pad_edge=False)
    columns = ("id", "status", "size") if role else ("id", "role", "status", "size")
    for name in columns:
        view.add_column(name, no_wrap=True)
    view.add_column("source", max_width=24, overflow="ellipsis")
    view.add_column("reason", min_width=20, overflow="fold")
    for row in rows[:limit]:
        size = f"{row['width']}x{row['height']}" if row.get("width") else ""
        colour = {"accepted": "green", "rejected": "red"}.get(row.get("status") or "", "")
        cells = [
            escaped(row["image_id"][:12]),
            escaped(row.get("role")),
            f"[{colour}]{row.get('status')}[/]" if colour else "",
            size,
        ]
        if role:
            del cells[1]
        view.add_row(*cells, escaped(_source(row)), escaped(row.get("reason")))
    console.print(view)
    counts = Counter(row.get("status") or "undecided" for row in rows)
    shown = "" if len(rows) <= limit else f", {limit} shown"
    console.print(
        f"[dim]{len(rows)} image(s){shown}: "
        + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        + "[/]"
    )


def _source(row: dict[str, Any]) -> str:
    """Where an image came from, briefly: "bing #3 cats" or a file name."""
    if row.get("query"):
        return f"{row.get('engine')} #{row.get('rank')} {row['query']}"
    return (row.get("image_url") or "").rstrip("/").rsplit("/", 1)[-1]


def _decide(ctx: typer.Context, ids: list[str], status: str, reason: str | None) -> None:
    store = settings(ctx).store()
    try:
        full = store.catalog.resolve(ids)
        n = store.catalog.decide(full, status, reason, decided_by="user")
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(f"{status} {n} image(s): {', '.join(i[:12] for i in full)}")


def accept(
    ctx: typer.Context,
    image_ids: list[str] = typer.Argument(..., help="Image ids or unique prefixes."),
    reason: str = typer.Option(None, "--reason", help="Why (kept in the curation table)."),
) -> None:
    """Mark images accepted (overrides the automatic decision; the latest decision wins)."""
    _decide(ctx, image_ids, "accepted", reason)


def reject(
    ctx: typer.Context,
    image_ids: list[str] = typer.Argument(..., help="Image ids or unique prefixes."),
    reason: str = typer.Option(
        "rejected by user",
        "--reason",
        help="Why (kept in the curation table).",
    ),
) -> None:
    """Mark images rejected (kept in the catalog with the reason; never deleted)."""
    _decide(ctx, image_ids, "rejected", reason)


def curate(
    ctx: typer.Context,
    role: Role = typer.Option(None, "--role", help="Only images of this role."),
    min_side: int = typer.Option(
        None,
        "--min-side",
        min=1,
        help="Reject images whose short side is smaller. Default: "
        f"{IMPORT_MIN_SIDE} for imported images, {SCRAPE_MIN_SIDE} for scraped ones, as "
        "import and scrape decide.",
        show_default=False,
    ),
) -> None:
    """Decide every image that has no curation decision, by the automatic rules (size, shape,
    duplicates of accepted images). Import and scrape always decide what they land; this
    finds images that an interrupted run of an older version left undecided."""
    from scraper import curate_undecided

    try:
        summary = curate_undecided(
            settings(ctx).store(), role=role and role.value, min_side=min_side
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    console.print(escaped(summary.render()))


def register(app: typer.Typer) -> None:
    app.command()(scrape)
    app.command(name="import")(import_)
    app.command(name="import-pairs")(import_pairs)
    app.command()(curate)
    app.command()(images)
    app.command()(accept)
    app.command()(reject)
