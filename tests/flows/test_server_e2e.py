"""End to end on a real Prefect server: deploy from prefect.yaml, two workers, a worker killed mid-batch.

Starts `prefect server` on 127.0.0.1 with a temporary PREFECT_HOME, creates the
process work pool, runs `prefect deploy --all`, starts one worker per (pretend)
GPU queue, runs `stylize-nightly` over 6 batches, kills one worker with its
flow-run processes in the middle of a batch, reruns, and checks that every
(pair, config) is recorded ok exactly once and no partial file is visible.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests
import yaml
from PIL import Image

from flows.catalog import pair_catalog
from storage import Store

from .conftest import _picture

REPO = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))
pytestmark = [pytest.mark.slow, pytest.mark.concurrency]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        p, pp = map(int, line.split())
        children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(proc: subprocess.Popen) -> None:
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)


class Server:
    def __init__(self, home: Path, env: dict[str, str]):
        self.port = _free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **env,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
        }
        self.logs = home / "logs"
        self.logs.mkdir(parents=True)
        self.procs: list[subprocess.Popen] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [PREFECT, *args],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [PREFECT, "--no-prompt", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (
            f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout

    def request(self, method: str, path: str, body: dict | None = None) -> object:
        # The server answers 503 to errors a client may retry (an SQLite database busy on a
        # loaded machine); Prefect's own client retries those with backoff, and so does this.
        for attempt in range(6):
            r = requests.request(method, f"{self.api}{path}", json=body, timeout=30)
            if r.status_code != 503:
                break
            time.sleep(0.5 * 2**attempt)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict) -> object:
        return self.request("POST", path, body)

    def flow_runs(self, **flt) -> list[dict]:
        return self.post("/flow_runs/filter", {"flow_runs": flt, "limit": 200})

    def run_deployment(self, name: str, parameters: dict) -> str:
        dep = self.request("GET", f"/deployments/name/{name}")
        run = self.post(f"/deployments/{dep['id']}/create_flow_run", {"parameters": parameters})
        return run["id"]

    def state(self, run_id: str) -> str:
        return self.request("GET", f"/flow_runs/{run_id}")["state"]["type"]

    def wait_for(self, predicate, timeout: float, what: str, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.logs}"
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                _kill_tree(proc)


@pytest.fixture
def server(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    srv = Server(tmp_path / "prefect-home", env)
    srv.spawn("server", "server", "start", "--host", "127.0.0.1", "--port", str(srv.port))
    try:
        srv.wait_for(lambda: _healthy(srv.api), 120, "the Prefect server to start")
        yield srv
    finally:
        srv.stop()


def _healthy(api: str) -> bool:
    try:
        return requests.get(f"{api}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _far_from_the_nightly() -> str:
    """A time zone where it is now about 13:00, twelve hours from prefect.yaml's 01:00 nightly
    (which the server's scheduler would otherwise start beside the test's own run)."""
    offset = (13 - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset  # Etc/GMT-14 (UTC+14) to Etc/GMT+12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # the sign is POSIX's


def test_nightly_on_two_workers_survives_a_killed_worker(server, tmp_path):
    from scraper import CurationConfig, import_sources

    data_dir = str(tmp_path / "data")
    store = Store(data_dir)
    for role, seeds in (("content", range(1, 7)), ("style", (11, 12))):
        folder = tmp_path / role
        folder.mkdir()
        for s in seeds:
            _picture(s, size=48).save(folder / f"{role}-{s}.png")
        import_sources(store, [str(folder)], role, curation=CurationConfig(min_side=32))
    pairs, _ = pair_catalog(store, "all")
    assert len(pairs) == 12
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        yaml.safe_dump(
            {
                "name": "e2e",
                "methods": ["gatys"],
                "batch_size": 2,
                "settings": {"size": 32, "steps": 10, "optimizer": "adam"},
            }
        )
    )

    timezone = _far_from_the_nightly()
    env = {
        "STYLEBENCH_PROJECT_DIR": str(REPO),
        "STYLEBENCH_DATA": data_dir,
        "STYLEBENCH_TIMEZONE": timezone,
    }
    server.env.update(env)
    server.cli("work-pool", "create", "stylebench", "--type", "process")
    for queue in ("gpu-0", "gpu-1"):  # a worker polling a queue that does not exist gets nothing
        server.cli("work-queue", "create", queue, "--pool", "stylebench")
    server.cli("deploy", "--all")
    deployments = requests.post(f"{server.api}/deployments/filter", json={}, timeout=30).json()
    by_name = {d["name"]: d for d in deployments}
    assert {
        "build-dataset",
        "stylize-nightly",
        "stylize-batch",
        "loss-matrix",
        "train-fast",
    } <= set(by_name)
    nightly = by_name["stylize-nightly"]
    assert nightly["schedules"][0]["schedule"]["cron"] == "0 1 * * *"
    assert nightly["schedules"][0]["schedule"]["timezone"] == timezone
    assert nightly["job_variables"]["env"]["STYLEBENCH_DATA"] == data_dir

    worker_args = ("worker", "start", "--pool", "stylebench", "--type", "process")
    killed = server.spawn("worker-a", *worker_args, "--name", "a", "--work-queue", "gpu-0")
    server.spawn(
        "worker-b", *worker_args, "--name", "b", "--work-queue", "default", "--work-queue", "gpu-1"
    )
    params = {
        "experiment": str(experiment),
        "data_dir": data_dir,
        "gpus": ["0", "1"],
        "wait_timeout_s": 20,
    }
    server.run_deployment("stylize-nightly/stylize-nightly", params)

    # Kill worker a, with its flow-run processes, while its first batch is running.
    running = server.wait_for(
        lambda: server.flow_runs(
            work_queue_name={"any_": ["gpu-0"]}, state={"type": {"any_": ["RUNNING"]}}
        ),
        240,
        "a batch on gpu-0 to start",
    )
    time.sleep(2)
    _kill_tree(killed)
    assert server.state(running[0]["id"]) == "RUNNING"  # died mid-batch: nobody reported an end

    # Worker b finishes its share; gpu-0's other batches wait for a worker that is gone.
    server.wait_for(
        lambda: (
            len(
                server.flow_runs(
                    work_queue_name={"any_": ["gpu-1"]}, state={"type": {"any_": ["COMPLETED"]}}
                )
            )
            == 3
        ),
        300,
        "worker b's three batches",
    )
    first_ok = store.query("select count(*) as n from runs where status = 'ok'").to_pylist()[0]["n"]
    assert 6 <= first_ok < 12

    # A new worker a, a rerun: the rest is planned afresh, nothing is done twice.
    server.spawn("worker-a2", *worker_args, "--name", "a2", "--work-queue", "gpu-0")
    rerun = server.run_deployment(
        "stylize-nightly/stylize-nightly", {**params, "wait_timeout_s": 600}
    )
    server.wait_for(
        lambda: server.state(rerun) in ("COMPLETED", "FAILED", "CRASHED"),
        400,
        "the rerun to finish",
    )
    assert server.state(rerun) == "COMPLETED"

    runs = store.query("select pair_id, config_hash, status, output_path from runs").to_pylist()
    ok = [(r["pair_id"], r["config_hash"]) for r in runs if r["status"] == "ok"]
    assert len(ok) == 12 and len(set(ok)) == 12
    assert {p for p, _ in ok} == {p.pair_id for p in pairs}
    for r in runs:
        with Image.open(store.local_path(r["output_path"])) as im:
            im.load()
    for table in ("runs", "loss_curves"):
        for path in store.files(table):
            pq.read_table(path)
    leftovers = [p for p in Path(data_dir).rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


HOLD = """
import sys, time
from flows.prefect_client import accelerator_slot
with accelerator_slot():
    open(sys.argv[1], "w").close()
    time.sleep(600)
"""
TRY = """
import sys
from prefect.concurrency.sync import concurrency
from flows.prefect_client import accelerator_slot_name
try:
    with concurrency(accelerator_slot_name(), strict=True, timeout_seconds=float(sys.argv[1])):
        print("acquired")
except TimeoutError:
    print("timed out")
"""


def test_a_killed_holder_frees_its_slot_when_its_lease_ends(tmp_path):
    """A batch killed while it holds the accelerator slot leaves it to the others once its
    lease (60 s) ends, not after Prefect's default of 300 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS"] = "1"
    srv = Server(tmp_path / "prefect-home", env)
    srv.spawn("server", "server", "start", "--host", "127.0.0.1", "--port", str(srv.port))
    client = {**srv.env, "PYTHONPATH": str(REPO)}

    def attempt(timeout: float) -> str:
        args = [sys.executable, "-c", TRY, str(timeout)]
        done = subprocess.run(args, cwd=REPO, env=client, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    try:
        srv.wait_for(lambda: _healthy(srv.api), 120, "the Prefect server to start")
        ready = tmp_path / "holding"
        log = open(srv.logs / "holder.log", "w")  # noqa: SIM115 - closed with the process
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(ready)],
            cwd=REPO,
            env=client,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        srv.procs.append(holder)
        srv.wait_for(ready.exists, 120, "the holder to take the slot", every=0.2)
        assert attempt(1) == "timed out"  # held
        _kill_tree(holder)
        # Free once the lease ends (about 60 s); with Prefect's default it would take 300 s.
        assert attempt(150) == "acquired"
    finally:
        srv.stop()
