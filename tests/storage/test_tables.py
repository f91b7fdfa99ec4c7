"""Atomic appends, concurrency, crash safety, compaction and schema evolution, local and on S3."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage import TABLES, Store
from storage.location import TMP_PREFIX

REPO = Path(__file__).resolve().parents[2]


def _writer(location: str, name: str, batches: int, rows: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.writer", location, name, str(batches), str(rows)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_append_and_read_roundtrip(location):
    store = Store(location)
    store.append("runs", [{"run_id": "a", "method": "gatys", "style_ids": ["s1", "s2"]}])
    store.append("runs", [{"run_id": "b", "method": "dpst", "seconds_total": 1.5}])
    runs = store.read("runs")
    assert runs.num_rows == 2
    assert runs.schema.names[:3] == ["run_id", "pair_id", "content_id"]
    by_id = {r["run_id"]: r for r in runs.to_pylist()}
    assert by_id["a"]["style_ids"] == ["s1", "s2"]
    assert by_id["b"]["seconds_total"] == 1.5 and by_id["a"]["seconds_total"] is None


def test_unknown_column_and_table_are_clear_errors(location):
    store = Store(location)
    with pytest.raises(ValueError, match="not in table 'runs'"):
        store.append("runs", [{"run_id": "a", "colour": "red"}])
    with pytest.raises(ValueError, match="the tables are: images, curation"):
        store.append("runz", [{"run_id": "a"}])
    assert store.read("runs").num_rows == 0


def test_empty_tables_have_their_schema(location):
    store = Store(location)
    for table in TABLES:
        assert store.read(table).num_rows == 0
    result = store.query("select method, count(*) from runs group by 1")
    assert result.num_rows == 0


@pytest.mark.slow
@pytest.mark.concurrency
def test_eight_concurrent_writers_lose_no_rows(location):
    # 8 processes x 1000 rows; on S3 in fewer, larger batches to keep the test quick.
    batches, rows = (100, 10) if "://" not in location else (10, 100)
    procs = [_writer(location, f"w{i}", batches, rows) for i in range(8)]
    for p in procs:
        assert p.wait(timeout=600) == 0
    store = Store(location)
    result = store.query(
        "select method, count(*) as n, count(distinct run_id) as d from runs group by 1"
    )
    counts = {r["method"]: (r["n"], r["d"]) for r in result.to_pylist()}
    assert counts == {f"w{i}": (1000, 1000) for i in range(8)}
    assert store.read("runs").num_rows == 8000


def test_writer_killed_mid_write_leaves_no_partial_file(tmp_path):
    location = str(tmp_path / "data")
    store = Store(location)
    store.append("runs", [{"run_id": f"before-{i}", "method": "before"} for i in range(100)])
    proc = _writer(location, "killed", 50, 400_000)
    table_dir = Path(location) / "tables" / "runs"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.name.startswith(TMP_PREFIX) for p in table_dir.iterdir()):
            break
        time.sleep(0.002)
    else:
        proc.kill()
        pytest.fail("the writer never started a batch")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # Whatever was visible is whole: every listed file reads, batches are complete.
    for path in store.files("runs"):
        pq.read_table(path)
    counts = {
        r["method"]: r["n"]
        for r in store.query("select method, count(*) as n from runs group by 1").to_pylist()
    }
    assert counts["before"] == 100
    assert counts.get("killed", 0) % 400_000 == 0
    # A compaction afterwards keeps every visible row.
    total = sum(counts.values())
    assert store.compact("runs").rows == total


def test_compact_preserves_every_row(location):
    store = Store(location)
    for b in range(30):
        store.append("runs", [{"run_id": f"{b}-{i}", "steps": i} for i in range(7)])
    store.append("runs", [{"run_id": "late", "steps": -1, "host": "h"}])
    before = sorted(r["run_id"] for r in store.read("runs").to_pylist())
    result = store.compact("runs")
    assert (result.files_before, result.files_after, result.rows) == (31, 1, 211)
    after = sorted(r["run_id"] for r in store.read("runs").to_pylist())
    assert after == before
    store.append("runs", [{"run_id": "after"}])
    assert store.compact("runs").rows == 212
    assert len(store.files("runs")) == 1


def test_interrupted_compaction_neither_loses_nor_duplicates(tmp_path, monkeypatch):
    from storage import tables

    store = Store(str(tmp_path / "data"))
    for b in range(5):
        store.append("runs", [{"run_id": f"{b}-{i}"} for i in range(10)])

    def crash(path, *args, **kwargs):
        raise KeyboardInterrupt("simulated crash after the merged file was written")

    monkeypatch.setattr(store.loc.fs, "rm", crash)
    with pytest.raises(KeyboardInterrupt):
        tables.compact(store.loc, "runs")
    monkeypatch.undo()
    # The merged file is in place and the originals are still on disk: no duplicates.
    assert store.read("runs").num_rows == 50
    assert store.compact("runs").rows == 50
    assert len(list((tmp_path / "data" / "tables" / "runs").glob("*.parquet"))) == 1


def test_table_gaining_a_column_still_reads_old_files(location, monkeypatch):
    from storage import schemas

    store = Store(location)
    store.append("loss_matrix", [{"experiment_id": "old", "content_loss": 1.0}])
    extended = schemas.LOSS_MATRIX.append(pa.field("layer_set", pa.string()))
    monkeypatch.setitem(schemas.SCHEMAS, "loss_matrix", extended)
    store.append("loss_matrix", [{"experiment_id": "new", "layer_set": "conv"}])
    rows = {r["experiment_id"]: r for r in store.read("loss_matrix").to_pylist()}
    assert rows["old"]["layer_set"] is None and rows["old"]["content_loss"] == 1.0
    assert rows["new"]["layer_set"] == "conv"
    got = store.query("select experiment_id from loss_matrix where layer_set is null").to_pylist()
    assert got == [{"experiment_id": "old"}]


def test_curation_latest_decision_wins(location):
    from storage import ImageRecord

    store = Store(location)
    store.catalog.record([ImageRecord(i, path=f"images/{i}.png") for i in ("img1", "img2")], [])
    store.decide(["img1", "img2"], "accepted", None, decided_by="auto")
    store.decide(["img1"], "rejected", "blurry")
    latest = {r["image_id"]: r for r in store.query("select * from curation_latest").to_pylist()}
    assert latest["img1"]["status"] == "rejected" and latest["img1"]["reason"] == "blurry"
    assert latest["img2"]["status"] == "accepted"
    assert store.read("curation").num_rows == 3  # nothing is overwritten
