"""DuckDB over the Parquet tables: one view per table, plus the derived catalog views."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import pyarrow as pa

from storage.location import Location
from storage.schemas import SCHEMAS, TABLES, schema_for
from storage.tables import files

# Views derived from the tables. Each reads like the question it answers.
DERIVED_VIEWS: dict[str, str] = {
    # The latest curation decision per image wins (append-only events).
    "curation_latest": """
        SELECT * EXCLUDE (_rank) FROM (
            SELECT *, row_number() OVER (
                PARTITION BY image_id
                ORDER BY decided_at DESC, (decided_by = 'user') DESC, status
            ) AS _rank
            FROM curation
        ) WHERE _rank = 1
    """,
    # One row per image (its first sighting) with its current status.
    "catalog": """
        SELECT i.*, c.status, c.reason, c.decided_by, c.decided_at
        FROM (
            SELECT * EXCLUDE (_rank) FROM (
                SELECT *, row_number() OVER (
                    PARTITION BY image_id ORDER BY fetched_at, batch_id
                ) AS _rank FROM images
            ) WHERE _rank = 1
        ) AS i
        LEFT JOIN curation_latest AS c USING (image_id)
    """,
}

VIEWS: tuple[str, ...] = TABLES + tuple(DERIVED_VIEWS)


class QueryError(ValueError):
    """A query failed; the message says why and lists the tables."""


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def connect(loc: Location, tables: tuple[str, ...] | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table over the current files."""
    conn = duckdb.connect(":memory:")
    prefix = ""
    if not loc.is_local:
        # DuckDB reads through the fsspec filesystem: no extension download needed.
        conn.register_filesystem(loc.fs)
        protocol = loc.fs.protocol[0] if isinstance(loc.fs.protocol, tuple) else loc.fs.protocol
        prefix = f"{protocol}://"
    for table in tables or TABLES:
        empty_name = f"_empty_{table}"
        conn.register(empty_name, SCHEMAS[table].empty_table())
        paths = [prefix + p for p in files(loc, table)]
        if paths:
            body = (
                f"SELECT * FROM read_parquet({_sql_list(paths)}, union_by_name = true) "
                f"UNION ALL BY NAME SELECT * FROM {empty_name}"
            )
        else:
            body = f"SELECT * FROM {empty_name}"
        conn.execute(f"CREATE VIEW {table} AS {body}")
    if tables is None:
        for name, sql in DERIVED_VIEWS.items():
            conn.execute(f"CREATE VIEW {name} AS {sql}")
    return conn


def _tables_in(sql: str) -> tuple[str, ...] | None:
    """The tables a query names, so unrelated tables are not listed; None means all."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql.lower()))
    if words & set(DERIVED_VIEWS):
        return None
    named = tuple(t for t in TABLES if t in words)
    return named or None


def query(loc: Location, sql: str, params: list[Any] | None = None) -> pa.Table:
    """Run ``sql`` (with ``?`` placeholders bound to ``params``) and return Arrow.

    Errors name the problem and list the tables and views that exist.
    """
    conn = connect(loc, _tables_in(sql))
    try:
        relation = conn.sql(sql, params=params) if params else conn.sql(sql)
        if relation is None:  # a statement without a result set
            return pa.table({})
        return relation.to_arrow_table()
    except duckdb.CatalogException as exc:
        raise QueryError(f"{_first_line(exc)}\nTables and views: {', '.join(VIEWS)}") from None
    except duckdb.ParserException as exc:
        raise QueryError(f"SQL syntax error: {_first_line(exc)}") from None
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {_first_line(exc)}") from None
    finally:
        conn.close()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def read_table(loc: Location, table: str) -> pa.Table:
    """Every row of ``table``, in its schema's column order (extra columns after)."""
    schema = schema_for(table)
    conn = connect(loc, (table,))
    try:
        data = conn.sql(f"SELECT * FROM {table}").to_arrow_table()
    finally:
        conn.close()
    ordered = schema.names + [c for c in data.column_names if c not in schema.names]
    data = data.select(ordered)
    return data.cast(
        pa.schema([schema.field(n) if n in schema.names else data.schema.field(n) for n in ordered])
    )
