"""`stylebench query`, `info` and `compact` through the real command line."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app

runner = CliRunner()


def _seed(data_dir):
    store = Store(data_dir)
    store.append(
        "runs",
        [
            {"run_id": "1", "method": "gatys", "seconds_total": 2.0},
            {"run_id": "2", "method": "dpst", "seconds_total": 4.0},
        ],
    )
    store.append("runs", [{"run_id": "3", "method": "gatys", "seconds_total": 4.0}])
    return store


def test_help_lists_commands_and_each_has_help():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = [c for c in ("query", "info", "compact") if c in result.output]
    assert commands == ["query", "info", "compact"]
    for command in commands:
        sub = runner.invoke(app, [command, "--help"])
        assert sub.exit_code == 0 and "Usage" in sub.output


def test_query_formats(data_dir, tmp_path):
    _seed(data_dir)
    sql = "select method, count(*) as n, avg(seconds_total) as s from runs group by 1 order by 1"
    shown = runner.invoke(app, ["-d", data_dir, "query", sql])
    assert shown.exit_code == 0 and "gatys" in shown.output and "dpst" in shown.output
    out = tmp_path / "r.json"
    assert (
        runner.invoke(app, ["-d", data_dir, "query", sql, "-f", "json", "-o", str(out)]).exit_code
        == 0
    )
    assert json.loads(out.read_text()) == [
        {"method": "dpst", "n": 1, "s": 4.0},
        {"method": "gatys", "n": 2, "s": 3.0},
    ]
    pq_out = tmp_path / "r.parquet"
    assert (
        runner.invoke(
            app, ["-d", data_dir, "query", sql, "-f", "parquet", "-o", str(pq_out)]
        ).exit_code
        == 0
    )
    assert pq.read_table(pq_out).num_rows == 2
    csv = runner.invoke(app, ["-d", data_dir, "query", sql, "-f", "csv"])
    assert csv.output.splitlines()[0] == '"method","n","s"'


def test_query_bad_sql_is_a_friendly_error(data_dir):
    _seed(data_dir)
    result = runner.invoke(app, ["-d", data_dir, "query", "select * from nope"])
    assert result.exit_code == 1
    assert "nope" in result.output and "runs" in result.output and "Traceback" not in result.output


def test_info_and_compact(data_dir):
    store = _seed(data_dir)
    info = runner.invoke(app, ["-d", data_dir, "info"])
    assert (
        info.exit_code == 0 and "runs" in info.output and data_dir in info.output.replace("\n", "")
    )
    result = runner.invoke(app, ["-d", data_dir, "compact", "runs"])
    assert result.exit_code == 0 and "2 file(s) -> 1" in result.output
    assert store.read("runs").num_rows == 3
    bad = runner.invoke(app, ["-d", data_dir, "compact", "runz"])
    assert bad.exit_code == 1 and "unknown table" in bad.output
