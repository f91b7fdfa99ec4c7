"""Append-only Parquet tables: one immutable file per write batch, written atomically.

A batch is written under a temporary name that no reader lists (``.tmp-*.part``)
and renamed into place; on object stores, where a PUT becomes visible only when
complete, it is written to its final key directly. Every file name carries a
fresh UUID, so concurrent writers never collide and never lose rows.

``compact`` merges a table's files into a few large ones. The merged file
records in its footer which files it replaces, and readers skip those, so a
crash between writing the merged file and deleting the originals neither loses
nor duplicates a row; the next ``compact`` finishes the deletion. One compaction
of a table runs at a time (a lease); files that do not belong to the table are
moved to ``quarantine/``, and columns a newer version added are carried along.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from storage.lease import Lease, Leases
from storage.location import Location, StorageError, fault_of_environment
from storage.schemas import schema_for

TABLES_DIR = "tables"
PART_PREFIX = "part-"
COMPACT_PREFIX = "compact-"
COMPACT_KEY = b"stylebench.compaction"
QUARANTINE_DIR = "quarantine"
COMPACT_LEASE_SECONDS = 3600.0  # one compaction's longest expected run


def table_dir(loc: Location, table: str) -> str:
    schema_for(table)  # validates the name
    return loc.join(TABLES_DIR, table)


def to_arrow(table: str, rows: pa.Table | Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts or an Arrow table) as an Arrow table in ``table``'s schema.

    Missing columns become nulls; unknown columns are an error naming them.
    """
    schema = schema_for(table)
    if isinstance(rows, pa.Table):
        unknown = [c for c in rows.column_names if c not in schema.names]
        if unknown:
            raise ValueError(
                f"columns {unknown} are not in table {table!r}; its columns are {schema.names}"
            )
        missing = [f for f in schema if f.name not in rows.column_names]
        for field in missing:
            rows = rows.append_column(field, pa.nulls(rows.num_rows, field.type))
        return rows.select(schema.names).cast(schema)
    rows = list(rows)
    unknown = sorted({k for r in rows for k in r} - set(schema.names))
    if unknown:
        raise ValueError(
            f"columns {unknown} are not in table {table!r}; its columns are {schema.names}"
        )
    return pa.Table.from_pylist(rows, schema=schema)


def _new_name(prefix: str) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}{stamp}-{uuid.uuid4().hex}.parquet"


def _write_atomic(
    loc: Location, directory: str, name: str, data: pa.Table, metadata: dict[bytes, bytes] | None
) -> str:
    if metadata:
        merged = dict(data.schema.metadata or {})
        merged.update(metadata)
        data = data.replace_schema_metadata(merged)
    table = directory.rsplit("/", 1)[-1]
    with loc.guard(f"writing table {table}", writing=True):
        return loc.write_atomic(
            f"{directory}/{name}", lambda fh: pq.write_table(data, fh, compression="zstd")
        )


def append(loc: Location, table: str, rows: pa.Table | Iterable[Mapping[str, Any]]) -> str | None:
    """Append ``rows`` to ``table`` as one new immutable file; returns its path (None if empty)."""
    data = to_arrow(table, rows)
    if data.num_rows == 0:
        return None
    return _write_atomic(loc, table_dir(loc, table), _new_name(PART_PREFIX), data, None)


def _listing(loc: Location, table: str) -> list[str]:
    directory = table_dir(loc, table)
    if not loc.is_local:
        loc.fs.invalidate_cache(directory)  # other processes append: never trust a cached listing
    try:
        with loc.guard(f"listing table {table}"):
            names = loc.fs.ls(directory, detail=False)
    except FileNotFoundError as exc:
        missing = loc.missing_bucket(exc)
        if missing is not None:
            raise missing from None
        return []
    return sorted(n for n in names if n.rsplit("/", 1)[-1].endswith(".parquet"))


def _compact_meta(loc: Location, path: str) -> dict[str, Any]:
    try:
        with loc.fs.open(path, "rb") as fh:
            meta = pq.read_metadata(fh).metadata or {}
        raw = meta.get(COMPACT_KEY)
        return json.loads(raw) if raw else {}
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file is listed, and named by check_file
        _raise_if_environment(loc, exc, f"reading {path.rsplit('/', 1)[-1]}")
        return {}


def files(loc: Location, table: str) -> list[str]:
    """The visible data files of ``table``: no temporaries, nothing already compacted away.

    A compaction's merged files form a group; once the whole group is in
    place it hides the files it replaces, and until then the group itself
    stays hidden. Of two complete groups that replace a file in common (two
    compactions that overlapped), only the first by name counts: the other is
    hidden, so no row is ever read twice.
    """
    listing = _listing(loc, table)
    groups: dict[str, list[str]] = {}
    expected: dict[str, int] = {}
    replaces: dict[str, list[str]] = {}
    for path in listing:
        if path.rsplit("/", 1)[-1].startswith(COMPACT_PREFIX):
            try:
                meta = _compact_meta(loc, path)
            except FileNotFoundError:
                continue  # removed by a compaction since the listing
            if not meta:
                continue
            groups.setdefault(meta["group"], []).append(path)
            expected[meta["group"]] = meta["count"]
            replaces[meta["group"]] = meta["replaces"]
    hidden: set[str] = set()
    replaced: set[str] = set()
    for group, members in sorted(groups.items(), key=lambda kv: min(kv[1])):
        names = {m.rsplit("/", 1)[-1] for m in members}
        if len(members) == expected[group] and not (replaced & set(replaces[group])):
            replaced.update(replaces[group])
        else:
            hidden.update(names)
    hidden |= replaced
    return [p for p in listing if p.rsplit("/", 1)[-1] not in hidden]


def check_file(loc: Location, table: str, path: str) -> str | None:
    """What is wrong with the data file ``path`` of ``table``, or None if it belongs there.

    Wrong: empty, not Parquet, no column of the table (a foreign file), or a column
    of the table stored with another type. Columns the table does not know (written
    by a newer version) are fine.
    """
    schema = schema_for(table)
    try:
        if loc.fs.size(path) == 0:
            return "it is empty (0 bytes)"
        with loc.fs.open(path, "rb") as fh:
            found = pq.read_schema(fh)
    except FileNotFoundError:
        return None  # compacted away meanwhile
    except Exception as exc:  # noqa: BLE001 - any failure to read the footer is the finding
        _raise_if_environment(loc, exc, f"reading {path.rsplit('/', 1)[-1]}")
        return f"it is not a readable Parquet file ({str(exc).strip().splitlines()[0][:200]})"
    shared = [n for n in found.names if n in schema.names]
    if not shared:
        return (
            f"it is not a file of table {table}: none of its columns "
            f"({', '.join(found.names[:8])}) is one of the table's"
        )
    for name in shared:
        have, want = found.field(name).type, schema.field(name).type
        if have != want and not pa.types.is_null(have):
            return f"column {name!r} is {have}, the table stores {want}"
    return None


def read(loc: Location, table: str) -> pa.Table:
    """All rows of ``table`` in its current schema (older files gain null columns)."""
    from storage.query import read_table

    return read_table(loc, table)


@dataclass(frozen=True)
class CompactResult:
    table: str
    files_before: int
    files_after: int
    rows: int
    quarantined: tuple[str, ...] = ()  # damaged or foreign files moved to quarantine/
    skipped: str | None = None  # why nothing was done (another compaction holds the lease)


def _raise_if_environment(loc: Location, exc: Exception, doing: str) -> None:
    """A file that cannot be read because the store fails is not a damaged file: raise."""
    cause = fault_of_environment(exc)
    if cause is not None:
        raise StorageError(f"data directory {loc.url}: {doing}: {cause}") from exc


def remove_stale_temporaries(loc: Location, table: str | None = None) -> int:
    """Temporaries that writers killed mid-write left in ``table`` (or every table)."""
    if table is not None:
        table_dir(loc, table)  # validates the name
        return loc.remove_stale_temporaries(f"{TABLES_DIR}/{table}")
    return loc.remove_stale_temporaries(TABLES_DIR, depth=1)


def quarantine(loc: Location, table: str, path: str) -> str:
    """Move a damaged or foreign file out of the table into ``quarantine/<table>/``."""
    target = loc.join(QUARANTINE_DIR, table, path.rsplit("/", 1)[-1])
    if loc.is_local:
        os.makedirs(os.path.dirname(target), exist_ok=True)
    loc.fs.mv(path, target)
    return target


def compact(loc: Location, table: str, rows_per_file: int = 2_000_000) -> CompactResult:
    """Merge ``table``'s files into files of at most ``rows_per_file`` rows.

    Safe against concurrent appends (files written after the listing are left
    alone), against a crash at any point, and against other compactions: one
    compaction of a table runs at a time (a lease, ``leases/compact/<table>``);
    the others return at once with ``skipped`` saying who holds it. Files that
    are not Parquet files of this table are moved to ``quarantine/<table>/``,
    never merged or deleted; columns this version does not know are kept.
    """
    schema_for(table)
    leases = Leases(loc)
    lease = leases.acquire(f"compact/{table}", COMPACT_LEASE_SECONDS, owner=f"compact {table}")
    if lease is None:
        held = leases.holder(f"compact/{table}")
        n = len(files(loc, table))
        return CompactResult(table, n, n, 0, skipped=f"another compaction holds it: {held}")
    try:
        return _compact_held(loc, table, rows_per_file, leases, lease)
    finally:
        leases.release(lease)


def _compact_held(
    loc: Location, table: str, rows_per_file: int, leases: Leases, lease: Lease
) -> CompactResult:
    remove_stale_temporaries(loc, table)
    listing = _listing(loc, table)
    visible = files(loc, table)
    hidden = [p for p in listing if p not in visible]
    for path in hidden:  # finish an interrupted compaction
        loc.fs.rm(path)
    bad = [p for p in visible if check_file(loc, table, p) is not None]
    moved = tuple(quarantine(loc, table, p) for p in bad)
    visible = [p for p in visible if p not in bad]
    if len(visible) <= 1:
        n = read_files(loc, table, visible).num_rows if visible else 0
        return CompactResult(table, len(visible) + len(bad), len(visible), n, moved)
    data = read_files(loc, table, visible)
    directory = table_dir(loc, table)
    names = [p.rsplit("/", 1)[-1] for p in visible]
    chunks = [data.slice(i, rows_per_file) for i in range(0, max(data.num_rows, 1), rows_per_file)]
    group = uuid.uuid4().hex
    marker = json.dumps({"group": group, "count": len(chunks), "replaces": names}).encode()
    written = [
        _write_atomic(loc, directory, _new_name(COMPACT_PREFIX), chunk, {COMPACT_KEY: marker})
        for chunk in chunks
    ]
    if leases.holds(lease):  # else the lease expired: the next compaction deletes them
        for path in visible:
            loc.fs.rm(path)
    return CompactResult(table, len(visible) + len(bad), len(written), data.num_rows, moved)


def read_files(loc: Location, table: str, paths: list[str]) -> pa.Table:
    """Read the given files of ``table``: its columns in its schema, then any others as stored."""
    schema = schema_for(table)
    parts = []
    for path in paths:
        with loc.fs.open(path, "rb") as fh:
            part = pq.read_table(fh)
        known = to_arrow(table, part.select([c for c in part.column_names if c in schema.names]))
        for name in part.column_names:
            if name not in schema.names:
                known = known.append_column(part.schema.field(name), part.column(name))
        parts.append(known.replace_schema_metadata(None))
    if not parts:
        return schema.empty_table()
    try:
        return pa.concat_tables(parts, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValueError(
            f"the files of {table} disagree on the type of a column this version does not "
            f"know ({exc}); compact with the newest stylebench version"
        ) from None
