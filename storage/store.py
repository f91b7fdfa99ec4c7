"""The one facade over a data directory: tables, images, outputs, queries."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from storage import images as _images
from storage import query as _query
from storage import tables as _tables
from storage.catalog import Catalog
from storage.lease import Leases
from storage.location import Location
from storage.models import ModelStore
from storage.runs import Matrices, Runs
from storage.schemas import TABLES


@dataclass(frozen=True)
class TableInfo:
    table: str
    rows: int
    files: int
    bytes: int


class Store:
    """A data directory (local path or fsspec URL) and everything stored in it."""

    def __init__(self, location: str | os.PathLike[str] | None = None, **storage_options: Any):
        self.loc = Location.open(location, **storage_options)

    def __repr__(self) -> str:
        return f"Store({self.loc.url!r})"

    @property
    def url(self) -> str:
        return self.loc.url

    # tables ---------------------------------------------------------------
    def append(self, table: str, rows: pa.Table | Iterable[Mapping[str, Any]]) -> str | None:
        return _tables.append(self.loc, table, rows)

    def read(self, table: str) -> pa.Table:
        return _query.read_table(self.loc, table)

    def files(self, table: str) -> list[str]:
        return _tables.files(self.loc, table)

    def compact(self, table: str) -> _tables.CompactResult:
        return _tables.compact(self.loc, table)

    def remove_stale_temporaries(self) -> int:
        """Remove the temporaries that killed writers left (tables, images, outputs)."""
        return _tables.remove_stale_temporaries(self.loc) + _images.remove_stale_temporaries(
            self.loc
        )

    def query(
        self,
        sql: str,
        params: list[Any] | None = None,
        *,
        locked: bool = False,
        timeout: float | None = None,
    ) -> pa.Table:
        """Run SQL over the tables; ``?`` placeholders are bound to ``params``.

        ``locked`` for SQL from a user: it reads the tables and nothing else. ``timeout``:
        seconds the statement may run (QueryTimeout after), None for no limit.
        """
        return _query.query(self.loc, sql, params, locked=locked, timeout=timeout)

    def query_all(self, sqls: list[str]) -> list[pa.Table]:
        """Several queries over one listing of the files (a consistent snapshot)."""
        return _query.query_all(self.loc, sqls)

    def connect(self) -> duckdb.DuckDBPyConnection:
        return _query.checked_connect(self.loc)

    # images and outputs ---------------------------------------------------
    def put_image(self, data: bytes, ext: str) -> _images.StoredImage:
        return _images.put_image(self.loc, data, ext)

    def put_mask(self, data: bytes, ext: str) -> _images.StoredImage:
        """Store a segmentation mask under ``masks/<sha256[:2]>/<sha256>.<ext>`` (idempotent)."""
        return _images.put_image(self.loc, data, ext, _images.MASKS_DIR)

    def read_bytes(self, relpath: str) -> bytes:
        return _images.read_bytes(self.loc, relpath)

    def write_bytes(self, relpath: str, data: bytes) -> str:
        """Write ``data`` atomically at ``relpath``; returns ``relpath``."""
        _images.write_bytes_atomic(self.loc, relpath, data)
        return relpath

    def exists(self, relpath: str) -> bool:
        return self.loc.fs.exists(self.loc.join(relpath))

    def local_path(self, relpath: str) -> Path:
        return _images.local_path(self.loc, relpath)

    def display(self, relpath: str) -> str:
        return self.loc.display(relpath)

    # the domain API -------------------------------------------------------
    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self)

    @cached_property
    def runs(self) -> Runs:
        return Runs(self)

    @cached_property
    def matrices(self) -> Matrices:
        return Matrices(self)

    @cached_property
    def models(self) -> ModelStore:
        return ModelStore(self)

    @cached_property
    def leases(self) -> Leases:
        return Leases(self.loc)

    def decide(
        self, image_ids: Iterable[str], status: str, reason: str | None, decided_by: str = "user"
    ) -> int:
        """Append one curation decision per image; the latest decision wins (see Catalog.decide)."""
        return self.catalog.decide(image_ids, status, reason, decided_by)

    # overview -------------------------------------------------------------
    def info(self) -> list[TableInfo]:
        out = []
        for table in TABLES:
            paths = self.files(table)
            size = sum(self.loc.fs.size(p) for p in paths)
            rows = self.query(f"SELECT count(*) AS n FROM {table}").column(0)[0].as_py()
            out.append(TableInfo(table, int(rows), len(paths), int(size)))
        return out

    def disk_usage(self, subdir: str) -> tuple[int, int]:
        """(files, bytes) under ``subdir`` of the data directory."""
        root = self.loc.join(subdir)
        if not self.loc.fs.exists(root):
            return 0, 0
        sizes = self.loc.fs.du(root, total=False)
        return len(sizes), int(sum(sizes.values()))
