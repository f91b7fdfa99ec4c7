"""Compaction under concurrency and damage: real processes, leases, foreign and newer files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from storage import Leases, Store
from storage.tables import QUARANTINE_DIR
from tests.barrier import let_go

REPO = Path(__file__).resolve().parents[2]


def _spawn(location: str, mode: str, rounds: int, ready: Path, go: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.storage.compactor",
            location,
            mode,
            str(rounds),
            str(ready),
            str(go),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def _seed(store: Store, files: int, rows: int) -> int:
    for b in range(files):
        store.append("runs", [{"run_id": f"{b}-{i}", "steps": i} for i in range(rows)])
    return files * rows


def _counts(store: Store) -> tuple[int, int]:
    row = store.query("select count(*) as n, count(distinct run_id) as d from runs").to_pylist()[0]
    return row["n"], row["d"]


@pytest.mark.concurrency
def test_concurrent_compactions_and_reads_neither_duplicate_nor_fail(location, tmp_path, probe):
    # The case: 450 rows in 45 files, several compactions at once, repeatedly.
    store = Store(location)
    total = _seed(store, 45, 10)
    go = tmp_path / "go"
    rounds = 12 if "://" not in location else 4
    ready = [tmp_path / f"ready-{i}" for i in range(6)]
    compactors = [_spawn(location, "compact", rounds, ready[i], go) for i in range(4)]
    readers = [_spawn(location, "read", rounds * 3, ready[4 + i], go) for i in range(2)]
    let_go(compactors + readers, ready, go)
    # More files arrive while they run, so there is something to merge each round.
    for b in range(10):
        store.append("runs", [{"run_id": f"late-{b}-{i}"} for i in range(5)])
    total += 50
    reports = []
    for p in compactors + readers:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    n, distinct = _counts(store)
    probe.record(
        f"four compactions at once, two readers ({location.split(':')[0]})",
        rejected=True,
        reason="one compaction at a time (a lease); the others skip",
        rows_lost=total - distinct,
        rows_duplicated=n - distinct,
    )
    assert (n, distinct) == (total, total)
    errors = [e for r in reports for e in r["errors"]]
    assert errors == []
    for r in reports[len(compactors) :]:  # every read saw whole rows, never one twice
        assert all(s["n"] == s["d"] and 450 <= s["n"] <= total for s in r["seen"])
    assert store.compact("runs").rows == total
    assert len(store.files("runs")) == 1


def test_overlapping_merged_groups_count_once(tmp_path):
    # Two compactions that both finished over the same files (a lease that expired mid-way):
    # readers count the first group only, and the next compaction removes the other.
    from storage import tables

    store = Store(str(tmp_path / "data"))
    total = _seed(store, 5, 10)
    visible = store.files("runs")
    data = tables.read_files(store.loc, "runs", visible)
    names = [p.rsplit("/", 1)[-1] for p in visible]
    directory = tables.table_dir(store.loc, "runs")
    for group in ("g1", "g2"):
        marker = json.dumps({"group": group, "count": 1, "replaces": names}).encode()
        tables._write_atomic(
            store.loc, directory, tables._new_name(tables.COMPACT_PREFIX), data,
            {tables.COMPACT_KEY: marker},
        )  # fmt: skip
    assert _counts(store) == (total, total)
    assert store.compact("runs").rows == total
    assert len(list(Path(directory).glob("*.parquet"))) == 1


def test_a_stale_lease_expires_and_a_live_one_holds(location):
    store = Store(location)
    now = [time.time()]
    leases = Leases(store.loc, clock=lambda: now[0])
    lease = leases.acquire("compact/runs", 60, owner="first")
    assert lease is not None and leases.holds(lease)
    assert leases.acquire("compact/runs", 60) is None
    assert store.compact("runs").skipped and "first" in store.compact("runs").skipped
    leases.release(lease)
    assert not leases.holds(lease)
    # A lease whose time is up, written by another machine, is free.
    short = leases.acquire("compact/runs", 0.5)
    assert leases.acquire("compact/runs", 60) is None
    now[0] += 0.6
    taken = leases.acquire("compact/runs", 60)
    assert taken is not None and not leases.holds(short)
    leases.release(taken)


def test_a_dead_process_lease_on_this_machine_is_free_at_once(tmp_path):
    store = Store(str(tmp_path / "data"))
    code = (
        "from storage import Store; import sys; "
        "l = Store(sys.argv[1]).leases.acquire('work/x/y', 3600); print(l.generation)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, store.url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "0"  # held for an hour by a process now gone
    generation, record = store.leases.current("work/x/y")
    assert record["host"] == socket.gethostname()
    assert store.leases.acquire("work/x/y", 60) is not None


def _write_file(store: Store, name: str, table: pa.Table) -> Path:
    path = Path(store.loc.join("tables", "runs", name))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def test_compaction_keeps_newer_columns_and_quarantines_foreign_files(tmp_path, probe):
    store = Store(str(tmp_path / "data"))
    _seed(store, 3, 4)
    newer = pa.table(
        {"run_id": ["new-1", "new-2"], "steps": pa.array([5, 6], pa.int32()), "ssim": [0.9, 0.8]}
    )
    _write_file(store, "part-newer.parquet", newer)
    foreign = _write_file(store, "part-foreign.parquet", pa.table({"x": [1, 2], "y": ["a", "b"]}))
    typed = _write_file(store, "part-typed.parquet", pa.table({"run_id": ["t"], "steps": ["many"]}))
    corrupt = Path(store.loc.join("tables", "runs", "part-corrupt.parquet"))
    corrupt.write_bytes(b"PAR1 this is not parquet")
    empty = Path(store.loc.join("tables", "runs", "part-empty.parquet"))
    empty.write_bytes(b"")
    bad = {p.name: p.read_bytes() for p in (foreign, typed, corrupt, empty)}

    result = store.compact("runs")
    assert result.rows == 14 and result.files_after == 1
    moved = {Path(p).name for p in result.quarantined}
    assert moved == set(bad)
    quarantine = Path(store.loc.join(QUARANTINE_DIR, "runs"))
    assert {p.name: p.read_bytes() for p in quarantine.iterdir()} == bad  # kept, byte for byte
    rows = {r["run_id"]: r for r in store.read("runs").to_pylist()}
    assert rows["new-1"]["ssim"] == 0.9 and rows["0-0"]["ssim"] is None  # newer column kept
    assert store.query("select count(*) as n from runs where ssim > 0.85").to_pylist() == [{"n": 1}]
    for name in bad:
        probe.record(f"compaction of a {name[5:-8]} file", rejected=True, reason="quarantined")
    probe.record("compaction of a newer version's column", rejected=False, rows_lost=0)


def test_a_damaged_file_is_named_with_what_to_do(tmp_path, probe):
    from stylebench.cli.main import app

    runner = CliRunner()
    data = str(tmp_path / "data")
    store = Store(data)
    _seed(store, 2, 3)
    store.append("images", [{"image_id": "a", "path": "images/a.png", "role": "content"}])
    damaged = {
        "corrupt": b"PAR1 not really parquet at all",
        "empty": b"",
    }
    for kind, payload in damaged.items():
        path = Path(store.loc.join("tables", "runs", f"part-{kind}.parquet"))
        path.write_bytes(payload)
        for args in (["query", "select count(*) from runs"], ["info"]):
            result = runner.invoke(app, ["-d", data, *args])
            text = " ".join(result.output.split())
            ok = result.exit_code == 1 and path.name in text and "stylebench compact runs" in text
            probe.record(f"{kind} parquet file, {args[0]}", rejected=ok, reason=text[-200:])
            assert ok, result.output
            assert "Traceback" not in result.output
        fixed = runner.invoke(app, ["-d", data, "compact", "runs"])
        assert fixed.exit_code == 0 and "quarantine" in fixed.output
        assert store.query("select count(*) as n from runs").to_pylist() == [{"n": 6}]
    foreign = Path(store.loc.join("tables", "images", "part-foreign.parquet"))
    pq.write_table(pa.table({"image_id": [1, 2]}), foreign)  # an int id where text is stored
    for args in (["images"], ["query", "select * from images"], ["pair"]):
        result = runner.invoke(app, ["-d", data, *args])
        text = " ".join(result.output.split())
        ok = result.exit_code == 1 and foreign.name in text and "int64" in text
        probe.record(f"wrong-typed parquet file, {args[0]}", rejected=ok, reason=text[-200:])
        assert ok and "Traceback" not in result.output, result.output


@pytest.mark.parametrize(
    "sql, why",
    [
        ("select * from read_text('/etc/passwd')", "reads a file outside the tables"),
        ("select * from read_csv('/etc/hostname')", "reads a file outside the tables"),
        ("copy (select * from runs) to '{tables}/runs/part-x.parquet'", "writes into tables/"),
        ("install httpfs", "installs an extension"),
        ("load httpfs", "loads an extension"),
        ("set enable_external_access = true", "changes the configuration"),
        ("select 1; set lock_configuration = false", "changes the configuration"),
        ("attach '{tables}/x.duckdb' as x", "attaches a database file"),
        ("select * from read_parquet('{tables}/runs/*.parquet')", "globs the tables itself"),
    ],
)
def test_query_is_locked_by_default(data_dir, sql, why, probe):
    from stylebench.cli.main import app

    store = Store(data_dir)
    _seed(store, 2, 3)
    tables = store.loc.join("tables")
    before = sorted(os.listdir(f"{tables}/runs"))
    result = CliRunner().invoke(app, ["-d", data_dir, "query", sql.format(tables=tables)])
    text = " ".join(result.output.split())
    refused = result.exit_code == 1 and "refused" in text and "--unlocked" in text
    probe.record(f"query that {why}", rejected=refused, reason=text[:200])
    assert refused, result.output
    assert "Traceback" not in result.output
    assert sorted(os.listdir(f"{tables}/runs")) == before
    assert _counts(store) == (6, 6)


def test_query_unlocked_opens_it(data_dir, tmp_path):
    from stylebench.cli.main import app

    _seed(Store(data_dir), 1, 3)
    target = tmp_path / "out.csv"
    sql = f"copy (select run_id from runs) to '{target}'"
    result = CliRunner().invoke(app, ["-d", data_dir, "query", "--unlocked", sql])
    assert result.exit_code == 0, result.output
    assert len(target.read_text().splitlines()) == 4
    shown = CliRunner().invoke(app, ["-d", data_dir, "query", "select count(*) as n from catalog"])
    assert shown.exit_code == 0 and "0" in shown.output
