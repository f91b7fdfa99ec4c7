"""Files the commands write: paths checked before any work, tables made fit for CSV."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from stylebench.cli.common import clean, fail

REPORT_MARKER = ".stylebench-report"  # written beside index.html: this folder holds a report


def check_output_file(path: Path, option: str, *, missing_folder_ok: bool = False) -> Path:
    """``path`` if a file can be written there; else the typer.Exit of a one-line error.

    Checked before the work starts (and changing nothing), so a long run never ends on a
    bad path. With ``missing_folder_ok`` the folder may be missing if it can be created
    (the caller creates it when it writes); otherwise it must exist.
    """
    if path.is_dir():
        raise fail(f"{option} {path} is a folder; give a file name, such as {path / 'out'}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists() and not missing_folder_ok:
        raise fail(f"{option} {path}: the folder {folder} does not exist; create it first")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise fail(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise fail(f"{option} {path}: the folder {existing} is not writable")
    return path


def check_image_file(path: Path, option: str) -> Path:
    """As ``check_output_file`` (the folder may be missing), and the suffix must name a format."""
    from PIL import Image

    if path.is_dir():
        raise fail(f"{option} {path} is a folder; give a file name, such as {path / 'out.png'}")
    writable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    if path.suffix.lower() not in writable:
        raise fail(
            f"{option} {path}: cannot tell the image format from {path.suffix or 'no suffix'!r}; "
            "end the name with .png, .jpg, .webp or .tif"
        )
    return check_output_file(path, option, missing_folder_ok=True)


def check_report_folder(path: Path, force: bool) -> bool:
    """Whether ``path`` already holds a report (to be replaced); refuse to overwrite others.

    A folder holding a report written earlier (it has the marker file) is replaced; one
    with an ``index.html`` of another origin is refused unless ``force``.
    """
    if path.exists() and not path.is_dir():
        raise fail(f"-o {path} is a file; give a folder for index.html and its assets")
    index = path / "index.html"
    if not index.exists():
        return False
    if (path / REPORT_MARKER).exists() or force:
        return True
    raise fail(
        f"{index} exists and is not a stylebench report; choose another folder with -o, "
        "or pass --force to overwrite it"
    )


def mark_report_folder(path: Path) -> None:
    (path / REPORT_MARKER).write_text("written by stylebench report\n", encoding="utf-8")


def _nested(kind: pa.DataType) -> bool:
    return pa.types.is_nested(kind) or pa.types.is_dictionary(kind)


def csv_ready(table: pa.Table) -> pa.Table:
    """``table`` with list, struct and map columns as JSON text (CSV holds flat values only)."""
    columns = []
    for column in table.columns:
        if _nested(column.type):
            values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
            column = pa.array(values, type=pa.string())
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def terminal_safe(table: pa.Table) -> pa.Table:
    """``table`` with terminal escape sequences and controls removed from its text columns.

    For output bound for a terminal: stored text comes from the web. A file or a pipe gets
    the values as stored."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            values = [None if v is None else clean(v) for v in column.to_pylist()]
            column = pa.array(values, type=column.type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)
