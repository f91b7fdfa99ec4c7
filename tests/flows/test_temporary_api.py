"""Prefect's temporary API server, started as a command begins (``flows.prefect_client``)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import flows.prefect_client as pc
from tests.prefect_settings import prefect_api_setting

ROOT = Path(__file__).resolve().parents[2]


def _api_url() -> str | None:
    from prefect.settings import get_current_settings

    return get_current_settings().api.url


@pytest.mark.slow
def test_without_an_api_a_server_starts_at_once_and_stops_with_the_command(no_prefect_api):
    from prefect.settings import get_current_settings

    heartbeats = get_current_settings().flows.heartbeat_frequency
    with pc.temporary_api() as ready:
        url = os.environ["PREFECT_API_URL"]
        assert url.startswith("http://127.0.0.1:") and _api_url() == url  # before it answers
        assert get_current_settings().flows.heartbeat_frequency is None  # the server ends with us
        # ... and is this process's Prefect: no version to ask it for.
        assert get_current_settings().client.server_version_check_enabled is False
        ready()
        assert httpx.get(f"{url}/health").status_code == 200
        ready()  # once up, at once
    assert "PREFECT_API_URL" not in os.environ and _api_url() is None
    assert get_current_settings().flows.heartbeat_frequency == heartbeats
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)


_EARLY = """
import json, os, sys
import flows.prefect_client as pc

started, processes = [], []
launch = pc._TemporaryServer._start


def _start(self):
    started.append("prefect" in sys.modules)  # imported yet, as the server starts?
    processes.append(launch(self))
    return processes[-1]


pc._TemporaryServer._start = _start
if sys.argv[1:] == ["early"]:  # as the stylebench program does before its command line
    pc.start_temporary_server_early()
with pc.temporary_api() as ready:
    ready()
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    running = [p.poll() is None for p in processes]
print(json.dumps({"started": started, "url": url, "running": running}))
"""


def _early(tmp_path: Path, *args: str, **env: str) -> dict:
    """What ``temporary_api`` does in a new process (Prefect not imported) with ``env``."""
    home = tmp_path / "home"
    environ = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(ROOT), **env}
    environ.pop("PREFECT_API_URL", None)
    environ.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", _EARLY, *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_in_a_new_process_the_server_starts_before_prefect_is_imported(tmp_path):
    got = _early(tmp_path)
    assert got["started"] == [False], got  # once, before Prefect's import
    assert got["url"].startswith("http://127.0.0.1:") and got["running"] == [True], got


@pytest.mark.slow
def test_a_server_started_by_the_program_is_the_one_the_command_uses(tmp_path):
    got = _early(tmp_path, "early")
    assert got["started"] == [False], got  # one server, the program's
    assert got["url"].startswith("http://127.0.0.1:") and got["running"] == [True], got
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:9/api"\n')
    assert _early(tmp_path, "early") == {
        "started": [False],
        "url": "http://127.0.0.1:9/api",
        "running": [False],
    }


_FULL_COLLECTIONS = """
import gc, json
import flows.prefect_client as pc

full = []
gc.callbacks.append(lambda phase, info: full.append(1) if phase == "start" and info["generation"] == 2 else None)
app = pc.server_app()
paths = [getattr(route, "path", "") for route in app.routes]
print(json.dumps({"api": "/api" in paths, "full_collections": len(full)}))
"""


@pytest.mark.slow
def test_the_temporary_server_builds_its_app_without_a_full_collection(tmp_path):
    # Prefect's PREFECT__SERVER_FINAL makes create_app collect every object it made (a
    # quarter of a second of the server's boot on 2 cores, with nothing to drop).
    env = {**os.environ, **pc.TEMPORARY_SERVER_ENV, "PREFECT_HOME": str(tmp_path / "home")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _FULL_COLLECTIONS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"api": True, "full_collections": 0}


def test_a_server_started_early_stops_where_prefect_names_an_api_after_all(tmp_path):
    # The environment and profiles name none, so the server starts; Prefect's settings read
    # a prefect.toml that names one: the server is stopped, that API kept.
    (tmp_path / "prefect.toml").write_text('[api]\nurl = "http://127.0.0.1:9/api"\n')
    got = _early(tmp_path)
    assert got == {"started": [False], "url": "http://127.0.0.1:9/api", "running": [False]}


def test_an_api_in_the_environment_or_a_profile_starts_no_server(tmp_path):
    got = _early(tmp_path, PREFECT_API_URL="http://127.0.0.1:9/api")
    assert got == {"started": [], "url": "http://127.0.0.1:9/api", "running": []}
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(
        'active = "night"\n[profiles.night]\nPREFECT_API_URL = "http://127.0.0.1:8/api"\n'
    )
    got = _early(tmp_path, PREFECT_PROFILES_PATH=str(profiles))
    assert got == {"started": [], "url": "http://127.0.0.1:8/api", "running": []}


def test_with_an_api_configured_nothing_starts(monkeypatch):
    url = "http://127.0.0.1:9/api"

    def refused(*args, **kwargs):
        raise AssertionError("a server was started although an API is configured")

    with prefect_api_setting(monkeypatch, url):
        monkeypatch.setattr(pc.subprocess, "Popen", refused)
        with pc.temporary_api() as ready:
            ready()
            assert os.environ["PREFECT_API_URL"] == url and _api_url() == url
        assert os.environ["PREFECT_API_URL"] == url and _api_url() == url


def test_a_server_that_exits_is_tried_afresh_then_is_an_error(no_prefect_api, monkeypatch):
    starts = []

    def exits(self):
        starts.append(self.port)
        return [sys.executable, "-c", "raise SystemExit(3)"]

    monkeypatch.setattr(pc._TemporaryServer, "command", exits)
    with pytest.raises(RuntimeError) as caught:
        with pc.temporary_api() as ready:
            ready()
    assert len(starts) == pc.SERVER_STARTS
    assert "ephemeral Prefect API server" in str(caught.value)
    assert "exited with code 3 before it answered" in str(caught.value)
    assert "PREFECT_API_URL" not in os.environ and _api_url() is None


def _servers_of(home: Path) -> list[int]:
    """The temporary API servers running (not ended) with ``home`` as their PREFECT_HOME."""
    wanted = f"PREFECT_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                running = b"prefect_client:server_app" in (entry / "cmdline").read_bytes()
                running &= wanted in (entry / "environ").read_bytes().split(b"\0")
                running &= "\nState:\tZ" not in (entry / "status").read_text()
            except OSError:  # it ended meanwhile
                continue
            if running:
                found.append(int(entry.name))
    return found


def _wait(predicate, timeout: float):
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def _stylize(catalog, tmp_path: Path, *options: str) -> tuple[list[str], dict, Path]:
    """``stylebench stylize`` through Prefect over ``catalog`` paired all with all, as a new
    process would run it: its command line, its environment (no API configured, a Prefect home
    of its own) and that home."""
    from flows.catalog import pair_catalog

    pair_catalog(catalog, "all")
    home = tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("PREFECT_API_URL", None)
    args = [sys.executable, "-m", "stylebench.cli.main", "-d", catalog.url, "stylize"]
    return [*args, "--method", "gatys", "--size", "32", *options], env, home


@pytest.mark.slow
def test_stylize_through_prefect_records_its_logs_before_the_server_stops(small_catalog, tmp_path):
    """The command's flow run with the server it started: the per-item lines logged to the API
    are in Prefect's database (sent before the server stopped), and no server is left."""
    args, env, home = _stylize(small_catalog, tmp_path, "--steps", "2", "--batch-size", "2")
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Error logging to API" not in output and "Traceback" not in output, output
    runs = small_catalog.query("select pair_id, status from runs").to_pylist()
    assert len(runs) == 6 and {r["status"] for r in runs} == {"ok"}, runs
    with sqlite3.connect(home / "prefect.db") as db:
        logged = [m for (m,) in db.execute("select message from log")]
        states = db.execute("select name, state_type from flow_run").fetchall()
        events = {e for (e,) in db.execute("select event from events")}
    assert [t for _, t in states] == ["COMPLETED"], states
    # Its events reached the server; no heartbeats among them (the server ended with it).
    assert "prefect.flow-run.Completed" in events, events
    assert "prefect.flow-run.heartbeat" not in events, events
    for run in runs:
        assert any(m.startswith(f"{run['pair_id']} ") and m.endswith(": ok") for m in logged)
    assert _servers_of(home) == []


@pytest.mark.slow
def test_a_killed_command_leaves_no_server_running(small_catalog, tmp_path):
    args, env, home = _stylize(small_catalog, tmp_path)
    command = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        servers = _wait(lambda: _servers_of(home), 60)
        assert servers, "the command started no server"
    finally:
        command.kill()  # SIGKILL: the command has no say in it
        command.communicate(timeout=60)
    assert _wait(lambda: not _servers_of(home), 20), "its server outlived the killed command"


def _flow_run_states(home: Path) -> list[str]:
    try:
        with sqlite3.connect(f"file:{home / 'prefect.db'}?mode=ro", uri=True) as db:
            return [t for (t,) in db.execute("select state_type from flow_run")]
    except sqlite3.Error:  # not made yet, or busy
        return []


@pytest.mark.slow
def test_ctrl_c_stops_a_command_and_its_server_promptly(small_catalog, tmp_path, probe):
    """Ctrl-C reaches a terminal's whole process group: the command reports its flow run as
    crashed to its server, which must still be up, and ends; then the server ends. (When the
    server took the signal too, the command waited at exit for Prefect's queues, forever.)"""
    args, env, home = _stylize(small_catalog, tmp_path, "--steps", "2000")
    command = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a process group of its own, as a terminal's foreground job
    )
    try:
        assert _wait(lambda: "RUNNING" in _flow_run_states(home), 120), "no flow run started"
        os.killpg(command.pid, signal.SIGINT)
        output, _ = command.communicate(timeout=60)
    finally:
        if command.poll() is None:
            os.killpg(command.pid, signal.SIGKILL)
    assert command.returncode == 130 and "interrupted" in output, output
    assert "Traceback" not in output, output
    assert _flow_run_states(home) == ["CRASHED"]
    assert _wait(lambda: not _servers_of(home), 20), "its server outlived the command"
    runs = small_catalog.query("select status from runs").to_pylist()
    assert all(r["status"] == "ok" for r in runs), runs  # what finished is recorded whole
    pairs = small_catalog.query("select count(*) as n from pairs").to_pylist()[0]["n"]
    probe.record(
        "Ctrl-C of stylize through Prefect's temporary server",
        rejected=True,
        reason=output.strip().splitlines()[-1],
        rows_lost=6 - pairs,
    )
