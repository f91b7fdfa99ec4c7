"""Faults of the environment through the real command line: a query that runs too long or is
interrupted, an unreachable Prefect API, link loops, hostile spec files. One line each, exit 1
(130 for Ctrl-C), never "internal error"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.specs import (
    MAX_EXTRA_BYTES,
    ExperimentSpec,
    SpecError,
    expand_configs,
    load_spec,
    read_yaml,
)
from stylebench.cli.main import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
SLOW_SQL = "select count(*) from range(1000000000000) a where hash(a.range) = 7"


def _popen(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stylebench.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        # Ctrl-C reaches the command as at a terminal (a background job would ignore it)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = _popen(*args, env=env)
    out, err = proc.communicate(timeout=600)
    assert "Traceback" not in err and "internal error" not in err, err
    return proc.returncode, out, err


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    out = result.output
    assert "Traceback" not in out and "internal error" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, out


# ---------------------------------------------------------------------------------------------
# stylebench query


def test_query_stops_at_its_time_limit(data_dir, probe):
    code, _, err = _cli("-d", data_dir, "query", SLOW_SQL, "--timeout", "1")
    assert code == 1, err
    errors = _errors(err)
    assert len(errors) == 1 and "time limit of 1 s" in errors[0] and "--timeout" in errors[0]
    probe.record("query past its time limit", rejected=True, reason=errors[0])


def test_query_help_states_the_locked_default():
    code, out = _invoke(["query", "--help"])
    text = " ".join(out.replace("│", " ").split())
    assert code == 0 and "Default: 300 when locked, no limit with --unlocked" in text


@pytest.mark.parametrize("mode", [[], ["--unlocked"]])
def test_ctrl_c_interrupts_a_running_query(mode, data_dir, probe):
    proc = _popen("-vv", "-d", data_dir, "query", SLOW_SQL, *mode)
    seen = ""
    while "running the query" not in seen:  # the statement is about to start
        line = proc.stderr.readline()
        assert line, f"the query ended early: {seen}"
        seen += line
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    err = seen + err
    assert proc.returncode == 130, err
    assert "interrupted" in err and "internal error" not in err and "Traceback" not in err
    probe.record(f"Ctrl-C of a running query {' '.join(mode)}".strip(), rejected=True, reason=err)


# ---------------------------------------------------------------------------------------------
# Prefect


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["stylize", "build-dataset"])
def test_an_unreachable_prefect_api_is_a_user_error(command, data_dir, tmp_path, probe):
    args = [command]
    if command == "build-dataset":
        spec = tmp_path / "dataset.yaml"
        spec.write_text("name: empty\nqueries: []\n")
        args.append(str(spec))
    api = f"http://127.0.0.1:{_closed_port()}/api"
    code, _, err = _cli("-d", data_dir, *args, env={"PREFECT_API_URL": api})
    assert code == 1, err
    text = " ".join(err.split())
    assert f"cannot reach the Prefect API at {api}" in text
    assert "prefect server start" in text and "--no-prefect" in text
    probe.record(f"{command} with the Prefect API down", rejected=True, reason=text)


# ---------------------------------------------------------------------------------------------
# link loops


def test_a_data_directory_that_is_a_link_loop(tmp_path, probe):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for command in (["info"], ["images"], ["query", "select 1"]):
        code, out = _invoke(["-d", str(loop), *command])
        assert code == 1 and "is a symbolic link loop" in out, out
    probe.record("data dir is a link loop", rejected=True, reason=out.strip())


# ---------------------------------------------------------------------------------------------
# spec files


BOMB = """\
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


SPECS = {
    "alias bomb in settings.extra": (
        "name: bomb\nmethods: [gatys]\nsettings:\n  extra:\n" + _indent(BOMB, 4),
        "aliases",
    ),
    "alias bomb in grid.extra": (
        "name: bomb\nmethods: [gatys]\ngrid:\n  extra:\n    - " + BOMB.replace("\n", "\n      "),
        "aliases",
    ),
    "alias bomb at the top": ("name: bomb\nmethods: [gatys]\n" + BOMB, "aliases"),
    "recursive alias": (
        "name: r\nmethods: [gatys]\nsettings:\n  extra: &x {self: *x}\n",
        "aliases",
    ),
    "duplicate key": ("name: a\nmethods: [gatys]\nname: b\n", "found the key 'name' twice"),
    "duplicate key in settings": (
        "name: a\nmethods: [gatys]\nsettings:\n  steps: 10\n  steps: 20\n",
        "found the key 'steps' twice",
    ),
    "extra too large": (
        "name: big\nmethods: [gatys]\nsettings:\n  extra:\n    blob: " + "x" * 20_000 + "\n",
        f"more than {MAX_EXTRA_BYTES:,}",
    ),
    "extra not a mapping": ("name: e\nmethods: [gatys]\nsettings:\n  extra: [1, 2]\n", "mapping"),
}


@pytest.mark.parametrize("case", list(SPECS))
def test_hostile_experiment_specs_are_refused_naming_the_file(case, tmp_path, data_dir, probe):
    text, words = SPECS[case]
    spec = tmp_path / f"{case.replace(' ', '-')}.yaml"
    spec.write_text(text, encoding="utf-8")
    assert len(spec.read_bytes()) < 21_000
    code, out = _invoke(["-d", data_dir, "stylize", "--no-prefect", "--experiment", str(spec)])
    text_out = " ".join(out.split())
    assert code == 1 and str(spec) in text_out and words in text_out, out
    probe.record(f"experiment spec: {case}", rejected=True, reason=text_out)


def test_a_dataset_spec_bomb_and_bad_bytes_are_refused(tmp_path, data_dir, probe):
    bomb = tmp_path / "dataset.yaml"
    bomb.write_text("name: d\nqueries: []\n" + BOMB)
    code, out = _invoke(["-d", data_dir, "build-dataset", str(bomb)])
    assert code == 1 and str(bomb) in out and "aliases" in out, out
    probe.record("dataset spec: alias bomb", rejected=True, reason=out.strip())
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: café\nmethods: [gatys]\n".encode("latin-1"))
    code, out = _invoke(["-d", data_dir, "stylize", "--no-prefect", "--experiment", str(latin)])
    text = " ".join(out.split())
    assert code == 1 and str(latin) in text and "not UTF-8" in text and "0xe9" in text, out
    probe.record("experiment spec: not UTF-8", rejected=True, reason=text)


def test_anchors_and_merge_keys_within_bounds_still_work(tmp_path):
    spec = tmp_path / "anchors.yaml"
    spec.write_text(
        "name: anchors\nmethods: [gatys]\nsettings: {steps: 10, size: 64}\n"
        "grid:\n  content_weight: &w [1.0, 2.0]\n  style_weight: *w\n"
    )
    loaded = load_spec(spec, ExperimentSpec)
    assert loaded.grid == {"content_weight": [1.0, 2.0], "style_weight": [1.0, 2.0]}
    assert len(expand_configs(loaded, spec)) == 4
    merged = tmp_path / "merged.yaml"
    merged.write_text("a: &a {x: 1, y: 2}\nb: {<<: *a, x: 3}\n")
    assert read_yaml(merged)["b"] == {"x": 3, "y": 2}  # a merge may be overridden
    merged.write_text("a: &a {x: 1, y: 2}\nb: {<<: *a, x: 3, x: 4}\n")
    with pytest.raises(SpecError, match="found the key 'x' twice"):
        read_yaml(merged)


def test_expand_errors_name_the_file(tmp_path):
    spec = tmp_path / "unknown.yaml"
    spec.write_text("name: u\nmethods: [gatys]\nsettings:\n  nonsense: 1\n")
    with pytest.raises(SpecError, match=f"^{spec}: experiment 'u': unknown setting"):
        expand_configs(load_spec(spec, ExperimentSpec), spec)
