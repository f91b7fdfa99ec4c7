"""Query and compaction speed of the Parquet store: 1M runs rows in 200 files; 2,000 small files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

from storage import Store

METHODS = np.array(["gatys", "dpst", "photo-fast", "fast"])
MODELS = np.array(["vgg19", "vgg16", "resnet101"])


def _runs_batch(rng: np.random.Generator, start: int, n: int) -> pa.Table:
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return pa.table(
        {
            "run_id": [f"r{start + i}" for i in range(n)],
            "method": METHODS[rng.integers(0, len(METHODS), n)],
            "feature_model": MODELS[rng.integers(0, len(MODELS), n)],
            "status": np.where(rng.random(n) < 0.97, "ok", "failed"),
            "height": rng.choice([256, 512, 1024], n).astype("int32"),
            "width": rng.choice([256, 512, 1024], n).astype("int32"),
            "steps": rng.integers(100, 2000, n).astype("int32"),
            "seconds_total": rng.gamma(2.0, 10.0, n),
            "loss_total": rng.gamma(2.0, 1e4, n),
            "started_at": [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, n)],
        }
    )


def _time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def run(quick: bool = False) -> str:
    rows, files = (100_000, 20) if quick else (1_000_000, 200)
    small_files = 200 if quick else 2_000
    root = tempfile.mkdtemp(prefix="sb-bench-storage-")
    try:
        store = Store(root)
        rng = np.random.default_rng(0)
        per = rows // files
        start = time.perf_counter()
        for f in range(files):
            store.append("runs", _runs_batch(rng, f * per, per))
        write_s = time.perf_counter() - start
        group_by = (
            "select method, feature_model, count(*) as n, avg(seconds_total) as s, "
            "median(loss_total) as l from runs where status = 'ok' group by 1, 2"
        )
        result = store.query(group_by)
        assert result.column("n").to_numpy().sum() > 0.9 * rows
        cold = _time(lambda: store.query(group_by), repeat=1)
        warm = _time(lambda: store.query(group_by))
        cli = [
            sys.executable,
            "-m",
            "stylebench.cli.main",
            "-q",
            "-d",
            root,
            "query",
            group_by,
            "-f",
            "csv",
            "-o",
            os.path.join(root, "out.csv"),
        ]
        cli_s = _time(lambda: subprocess.run(cli, check=True, capture_output=True), repeat=2)
        # Compaction: many tiny appends (one per finished run) into a handful of files.
        for i in range(small_files):
            store.append(
                "loss_curves",
                [{"run_id": f"c{i}", "step": s, "loss_total": 1.0 / (s + 1)} for s in range(5)],
            )
        before_rows = store.read("loss_curves").num_rows
        start = time.perf_counter()
        compacted = store.compact("loss_curves")
        compact_s = time.perf_counter() - start
        after_rows = store.read("loss_curves").num_rows
        assert before_rows == after_rows == compacted.rows
        tiny_query = _time(lambda: store.query("select count(*) from loss_curves"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    verdict = "meets" if warm < 1.0 else "MISSES"
    return f"""## Storage: queries and compaction

| measurement | value |
| --- | --- |
| `runs` rows / files | {rows:,} / {files} |
| appending them (one file per batch) | {write_s:.2f} s |
| GROUP BY method, feature_model (first) | {cold:.3f} s |
| GROUP BY method, feature_model (best of 3) | {warm:.3f} s — {verdict} the 1 s target |
| `compact` of `loss_curves` | {compacted.files_before:,} files -> {compacted.files_after} in {compact_s:.2f} s, {compacted.rows:,} rows kept |
| the same through `stylebench query` (a new process, imports included) | {cli_s:.2f} s |
| count(*) over the compacted table | {tiny_query * 1000:.1f} ms |

Each query builds its DuckDB views over the current file list, so the times include listing the
files and reading their footers.
"""


if __name__ == "__main__":
    print(run())
