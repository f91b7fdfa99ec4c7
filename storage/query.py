"""DuckDB over the Parquet tables: one view per table, plus the derived catalog views."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
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
    # Do two feature networks order the same image pairs alike by a loss? One row per
    # (loss matrix, loss, pair of networks): the unordered image pairs both measured (a pair
    # recorded both ways or twice takes the mean), Spearman's rho over them (the correlation
    # of their ranks, ties at their mean rank), and each network's median loss over those
    # pairs, by which the report divides its matrix. styletransfer.agreement does the same.
    "loss_matrix_agreement": """
        WITH cells AS (
            SELECT experiment_id, feature_model,
                   least(image_a, image_b) AS a, greatest(image_a, image_b) AS b,
                   avg(content_loss) FILTER (WHERE isfinite(content_loss)) AS content,
                   avg(style_loss) FILTER (WHERE isfinite(style_loss)) AS style
            FROM loss_matrix WHERE image_a <> image_b
            GROUP BY experiment_id, feature_model, a, b
        ), losses AS (
            SELECT experiment_id, feature_model, a, b, 'content' AS loss, content AS value
            FROM cells WHERE content IS NOT NULL
            UNION ALL
            SELECT experiment_id, feature_model, a, b, 'style' AS loss, style AS value
            FROM cells WHERE style IS NOT NULL
        ), joined AS (
            SELECT x.experiment_id, x.loss, x.feature_model AS model_a,
                   y.feature_model AS model_b, x.value AS value_a, y.value AS value_b
            FROM losses AS x JOIN losses AS y
              ON x.experiment_id = y.experiment_id AND x.loss = y.loss
             AND x.a = y.a AND x.b = y.b AND x.feature_model < y.feature_model
        ), ranked AS (
            SELECT *,
                rank() OVER (PARTITION BY experiment_id, loss, model_a, model_b
                             ORDER BY value_a)
                + (count(*) OVER (PARTITION BY experiment_id, loss, model_a, model_b, value_a)
                   - 1) / 2.0 AS rank_a,
                rank() OVER (PARTITION BY experiment_id, loss, model_a, model_b
                             ORDER BY value_b)
                + (count(*) OVER (PARTITION BY experiment_id, loss, model_a, model_b, value_b)
                   - 1) / 2.0 AS rank_b
            FROM joined
        )
        SELECT experiment_id, loss, model_a, model_b, count(*) AS pairs,
               CASE WHEN count(*) >= 3 THEN corr(rank_a, rank_b) END AS spearman,
               median(value_a) AS median_a, median(value_b) AS median_b
        FROM ranked
        GROUP BY experiment_id, loss, model_a, model_b
        ORDER BY experiment_id, loss, model_a, model_b
    """,
}

VIEWS: tuple[str, ...] = TABLES + tuple(DERIVED_VIEWS)

# Queries worth trying first, as a user would type them into `stylebench query`.
EXAMPLE_QUERIES = (
    "select method, count(*), avg(seconds_total) from runs group by 1",
    "select method, feature_model, round(avg(loss_style), 4) as style_loss, "
    "round(avg(seconds_optimize), 2) as optimise_s from runs where status = 'ok' group by 1, 2",
    "select r.method, c.query, c.engine, c.license, r.output_path from runs r "
    "join catalog c on c.image_id = r.content_id limit 5",
)


class QueryError(ValueError):
    """A query failed; the message says why and lists the tables."""


class DamagedTable(QueryError):
    """A data file of a table cannot be read; the message names it and what to do."""


class QueryTimeout(QueryError):
    """A query ran past its time limit and was stopped."""


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _prefix(loc: Location) -> str:
    if loc.is_local:
        return ""
    protocol = loc.fs.protocol[0] if isinstance(loc.fs.protocol, tuple) else loc.fs.protocol
    return f"{protocol}://"


def connect(
    loc: Location, tables: tuple[str, ...] | None = None, *, locked: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table over the current files.

    ``locked``: after the views are made, the connection reads only those files (no
    other file, no URL), installs and loads no extension, and its configuration
    cannot be changed.
    """
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    conn = duckdb.connect(":memory:", config=config)
    prefix = _prefix(loc)
    if prefix:
        # DuckDB reads through the fsspec filesystem: no extension download needed.
        conn.register_filesystem(loc.fs)
    allowed: list[str] = []
    for table in tables or TABLES:
        empty_name = f"_empty_{table}"
        conn.register(empty_name, SCHEMAS[table].empty_table())
        listed = files(loc, table)
        _check_files(loc, table, listed)
        paths = [prefix + p for p in listed]
        allowed += paths
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
    if locked:
        conn.execute(f"SET allowed_paths = {_sql_list(allowed)}")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET allow_community_extensions = false")
        conn.execute("SET lock_configuration = true")
    return conn


def _tables_in(sql: str) -> tuple[str, ...] | None:
    """The tables a query names, so unrelated tables are not listed; None means all."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql.lower()))
    if words & set(DERIVED_VIEWS):
        return None
    named = tuple(t for t in TABLES if t in words)
    return named or None


# Statements a locked query may run: reading only (COPY, ATTACH, INSTALL, SET... are refused).
READ_STATEMENTS = ("SELECT", "EXPLAIN")
RETRIES = 5  # a compaction may remove files between listing and reading: list again


def _is_vanished(exc: duckdb.Error) -> bool:
    text = str(exc)
    if "FileNotFoundError" in text or "NoSuchKey" in text:
        return True  # raised by the fsspec file system (object stores), wrapped by DuckDB
    return isinstance(exc, duckdb.IOException) and (
        "No such file" in text or "not found" in text.lower() or "No files found" in text
    )


# Data files are immutable (each name is new), so a file found sound stays sound.
_SOUND: set[str] = set()


def _check_files(loc: Location, table: str, paths: list[str]) -> None:
    from storage.tables import check_file

    problems = []
    for path in paths:
        key = loc.display(path[len(loc.root) + 1 :])
        if key in _SOUND:
            continue
        why = check_file(loc, table, path)
        if why:
            problems.append((table, path, why))
        else:
            _SOUND.add(key)
    _raise_damaged(loc, problems)


def diagnose(loc: Location, tables: tuple[str, ...] | None = None) -> None:
    """Raise DamagedTable naming every data file that does not belong to its table."""
    from storage.tables import check_file

    problems = []
    for table in tables or TABLES:
        for path in files(loc, table):
            why = check_file(loc, table, path)
            if why:
                problems.append((table, path, why))
    _raise_damaged(loc, problems)


def _raise_damaged(loc: Location, problems: list[tuple[str, str, str]]) -> None:
    if problems:
        lines = [f"  {loc.display(p[len(loc.root) + 1 :])}: {why}" for _, p, why in problems]
        names = " ".join(sorted({t for t, _, _ in problems}))
        raise DamagedTable(
            f"{len(problems)} damaged or foreign file(s) in the tables:\n"
            + "\n".join(lines)
            + f"\nRun `stylebench compact {names}` to move them to quarantine/ "
            "(nothing else is changed), then look at them there."
        )


def query(
    loc: Location,
    sql: str,
    params: list[Any] | None = None,
    *,
    locked: bool = False,
    timeout: float | None = None,
) -> pa.Table:
    """Run ``sql`` (with ``?`` placeholders bound to ``params``) and return Arrow.

    ``locked`` (for SQL a user typed): reading statements only, over the tables' files
    only (see ``connect``). Errors name the problem and list the tables and views that
    exist; a damaged file is named with what to do. ``timeout``: seconds the statements
    may run before they are stopped (QueryTimeout); None or 0 for no limit. An interrupted
    query (Ctrl-C) raises KeyboardInterrupt.
    """
    return query_all(loc, [sql], params, locked=locked, timeout=timeout)[0]


def _run_stoppable(
    conn: duckdb.DuckDBPyConnection, work: Callable[[], list[pa.Table]], timeout: float | None
) -> list[pa.Table]:
    """``work()`` on ``conn``, interrupted by Ctrl-C or once ``timeout`` seconds have passed.

    DuckDB does not notice every SIGINT while a statement runs, so a watcher thread does:
    the signal wakes it through ``signal.set_wakeup_fd`` (main thread only), and it calls
    ``conn.interrupt()``, as it does at the time limit. Raises KeyboardInterrupt when
    interrupted by Ctrl-C, QueryTimeout past the time limit.
    """
    deadline = time.monotonic() + timeout if timeout and timeout > 0 else None
    wake = _SignalWake.open()
    if deadline is None and wake is None:
        return work()
    done = threading.Event()
    why: list[str] = []

    def watch() -> None:
        while not done.is_set():
            wait = 0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic()))
            if wake is not None and wake.signalled(wait):
                why.append("interrupted")
            elif wake is None:
                done.wait(wait)
            if not why and deadline is not None and time.monotonic() >= deadline:
                why.append("timeout")
            if why and not done.is_set():
                conn.interrupt()
                return

    watcher = threading.Thread(target=watch, name="stylebench-query-watch", daemon=True)
    watcher.start()
    try:
        return work()
    except (duckdb.InterruptException, RuntimeError) as exc:
        if not _interrupted(exc):
            raise
        if why == ["timeout"]:
            raise QueryTimeout(
                f"the query was stopped after its time limit of {timeout:g} s; make it "
                "cheaper (filter, aggregate, LIMIT) or give a longer --timeout (0: no limit)"
            ) from None
        raise KeyboardInterrupt from None
    finally:
        done.set()
        if wake is not None:
            wake.nudge()
        watcher.join()
        if wake is not None:
            wake.close()


class _SignalWake:
    """A socket that a signal's C-level handler writes to (``signal.set_wakeup_fd``)."""

    def __init__(self, reader: socket.socket, writer: socket.socket, previous: int):
        self.reader, self.writer, self.previous = reader, writer, previous

    @classmethod
    def open(cls) -> _SignalWake | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return None  # SIGINT is ignored or someone else handles it
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        try:
            previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        except ValueError:
            reader.close()
            writer.close()
            return None
        return cls(reader, writer, previous)

    def signalled(self, wait: float) -> bool:
        """Whether SIGINT arrived within ``wait`` seconds."""
        ready, _, _ = select.select([self.reader], [], [], wait)
        if not ready:
            return False
        data = self.reader.recv(64)
        if self.previous >= 0:  # hand the bytes on to whoever waited for them before
            with contextlib.suppress(OSError):
                os.write(self.previous, data)
        return signal.SIGINT in data

    def nudge(self) -> None:
        """Wake the watcher (a byte that is no signal number) so it sees it is done."""
        with contextlib.suppress(OSError):
            self.writer.send(b"\0")

    def close(self) -> None:
        signal.set_wakeup_fd(self.previous)
        self.reader.close()
        self.writer.close()


def _interrupted(exc: BaseException) -> bool:
    """DuckDB's ways of saying a query was interrupted (by Ctrl-C or by ``interrupt()``)."""
    if isinstance(exc, duckdb.InterruptException):
        return True
    return isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()


@contextlib.contextmanager
def _ctrl_c_raised() -> Iterator[None]:
    """Ctrl-C while DuckDB runs a statement outside ``_run_stoppable`` (making the views) is a
    KeyboardInterrupt too: DuckDB reports it as an error ("Query interrupted")."""
    try:
        yield
    except (duckdb.InterruptException, RuntimeError) as exc:
        if not _interrupted(exc):
            raise
        raise KeyboardInterrupt from None


def query_all(
    loc: Location,
    sqls: list[str],
    params: list[Any] | None = None,
    *,
    locked: bool = False,
    timeout: float | None = None,
) -> list[pa.Table]:
    """Run several queries on one connection: they see the same files (one listing)."""
    tables = _tables_in(" ".join(sqls))
    for attempt in range(RETRIES):
        conn = None
        try:
            with _ctrl_c_raised():
                conn = connect(loc, tables, locked=locked)
            return _run_stoppable(conn, partial(_run_all, conn, sqls, params, locked), timeout)
        except duckdb.CatalogException as exc:
            raise QueryError(f"{_first_line(exc)}\nTables and views: {', '.join(VIEWS)}") from None
        except duckdb.ParserException as exc:
            raise QueryError(f"SQL syntax error: {_first_line(exc)}") from None
        except duckdb.PermissionException as exc:
            raise QueryError(_locked_message(_first_line(exc))) from None
        except duckdb.Error as exc:
            if _is_vanished(exc) and attempt < RETRIES - 1:
                continue
            diagnose(loc, tables)
            if locked and "configuration has been locked" in str(exc):
                raise QueryError(_locked_message(_first_line(exc))) from None
            raise QueryError(f"query failed: {_first_line(exc)}") from None
        finally:
            if conn is not None:
                conn.close()
    raise AssertionError("unreachable")


def _run_all(
    conn: duckdb.DuckDBPyConnection, sqls: list[str], params: list[Any] | None, locked: bool
) -> list[pa.Table]:
    out = []
    for sql in sqls:
        if locked:
            _check_read_only(conn, sql)
        relation = conn.sql(sql, params=params) if params else conn.sql(sql)
        out.append(pa.table({}) if relation is None else relation.to_arrow_table())
    return out


def checked_connect(loc: Location) -> duckdb.DuckDBPyConnection:
    """``connect`` over every table, naming any damaged file instead of failing raw."""
    for attempt in range(RETRIES):
        try:
            with _ctrl_c_raised():
                return connect(loc)
        except duckdb.Error as exc:
            if _is_vanished(exc) and attempt < RETRIES - 1:
                continue
            diagnose(loc)
            raise QueryError(f"cannot open the tables: {_first_line(exc)}") from None
    raise AssertionError("unreachable")


def _locked_message(detail: str) -> str:
    return (
        f"refused: {detail}.\nQueries read the tables and views only; reading other files, "
        "writing files, extensions and settings are off. On a machine of your own, "
        "`stylebench query --unlocked` lifts this."
    )


def _check_read_only(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        statements = conn.extract_statements(sql)
    except duckdb.ParserException:
        return  # the query itself reports the syntax error
    for statement in statements:
        kind = str(statement.type).rsplit(".", 1)[-1]
        if kind not in READ_STATEMENTS:
            raise QueryError(_locked_message(f"{kind} statements are not allowed"))


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    if lines[0].startswith("Traceback") and len(lines) > 1:
        return lines[-1].strip()  # a Python error inside a file system call: its last line
    return lines[0]


def read_table(loc: Location, table: str) -> pa.Table:
    """Every row of ``table``, in its schema's column order (extra columns after)."""
    schema = schema_for(table)
    data = query(loc, f"SELECT * FROM {table}")
    ordered = schema.names + [c for c in data.column_names if c not in schema.names]
    data = data.select(ordered)
    return data.cast(
        pa.schema([schema.field(n) if n in schema.names else data.schema.field(n) for n in ordered])
    )
