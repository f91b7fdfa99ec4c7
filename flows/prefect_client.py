"""The Prefect-client plumbing the flows use: accelerator slots, artifacts, deployment runs.

Kept apart from ``flows/pipeline.py`` so that the flows read as wiring.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

SLOT_LIMIT = 1  # one batch at a time on one accelerator
# A held slot's lease, renewed while its holder lives (at three quarters of it); a holder that
# dies frees the slot when its lease ends and the server's repossessor next looks (every 15 s),
# not after Prefect's default 300 s (60 s is the shortest lease the server grants).
SLOT_LEASE_SECONDS = 60.0


def retry_unless_storage_fault(task: Any, task_run: Any, state: Any) -> bool:
    """A task's retry condition: retry a failure, but not a fault of the data directory
    (no space, read-only, unreachable), which no retry mends: that one ends the flow."""
    from storage import StorageError

    try:
        state.result()
    except StorageError:
        return False
    except Exception:  # noqa: BLE001 - any other failure is retried
        return True
    return True


def accelerator_slot_name() -> str:
    """The concurrency limit that guards this machine's accelerator (one per GPU)."""
    import torch

    host = socket.gethostname()
    if torch.cuda.is_available():
        device = (os.environ.get("CUDA_VISIBLE_DEVICES") or "0").split(",")[0]
        return f"stylebench-gpu-{host}-{device}"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return f"stylebench-mps-{host}"
    return f"stylebench-cpu-{host}"


def ensure_limit(name: str, limit: int = SLOT_LIMIT) -> None:
    """Create the global concurrency limit ``name`` unless it exists (strict slots need it)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=limit)
                )
            except ObjectAlreadyExists:
                pass


@contextmanager
def accelerator_slot() -> Iterator[None]:
    """Hold this machine's accelerator slot (strict: a missing limit is an error)."""
    from prefect.concurrency.sync import concurrency

    name = accelerator_slot_name()
    ensure_limit(name)
    with concurrency(name, occupy=1, strict=True, lease_duration=SLOT_LEASE_SECONDS):
        yield


# What Prefect's own ephemeral server (``SubprocessASGIServer``) sets for its process: no UI,
# and the flag by which the app runs as a temporary server (only the services that an
# ephemeral server runs). Not its PREFECT__SERVER_FINAL: with the FastAPI that Prefect 3.9
# requires (0.139 or later: routes are not copied, so there are none to drop) that flag only
# makes the app collect every object it made (0.2-0.3 s of the server's boot on 2 cores, for
# about 3 MB).
TEMPORARY_SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
}
SERVER_STARTS = 3  # tries, each on a fresh port, where a start loses its port to another process


@contextmanager
def temporary_api() -> Iterator[Callable[[], None]]:
    """Prefect's API for one command: where none is configured, its temporary local server,
    started now rather than at the flow's first call to the API.

    Prefect starts that server (its ephemeral mode) when a flow first calls the API: it imports
    the server's modules into the command's process (1.3 s on 2 cores), starts the server's
    process and waits for it (2.5 s). Started as the command begins, the server's process boots
    on another core while the command imports and checks what it will run. Yields ``ready()``,
    which waits until the server answers (within PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)
    and must be called before a flow runs; the flows find the server through PREFECT_API_URL.
    On the way out the logs and events still queued for the API are sent and the server stops,
    as Prefect's own test harness does; on Linux a command that is killed takes its server with
    it. Where PREFECT_API_URL is set (a server of the user's, Prefect Cloud) or ephemeral mode is
    off, nothing starts and ``ready()`` returns at once.

    In a command that has not imported Prefect yet (its settings then come from the
    environment and the files that the server reads too) the server starts before Prefect is
    imported (0.8 s on 2 cores), unless the environment or the profiles name an API; it is
    stopped at once where Prefect's settings then name one after all.

    The flows send no heartbeats to that server: they tell a running server that a flow run
    has not crashed, and this one ends with the command (which reports an interrupted run
    itself). Their thread sleeps in steps of a second that the flow waits out as it ends. Nor
    do they ask it for its API version: it is this process's Prefect.
    """
    global _EARLY
    server, _EARLY = _EARLY, None
    server = server or _server_before_prefect()
    try:
        from prefect.settings import get_current_settings

        settings = get_current_settings()
        if settings.api.url or not settings.server.ephemeral.enabled:
            if server is not None:
                server.stop()
            yield lambda: None
            return
        env = {
            **os.environ,
            **TEMPORARY_SERVER_ENV,
            **settings.to_environment_variables(exclude_unset=True),
        }
        with _ApiSetting() as use_api:
            server = server or _TemporaryServer(env)
            server.serve(use_api, float(settings.server.ephemeral.startup_timeout_seconds), env)
            try:
                yield server.ready
            finally:
                if server.started:
                    _send_queued()
    finally:
        if server is not None:
            server.stop()


# The server that start_temporary_server_early started, until temporary_api takes it.
_EARLY: _TemporaryServer | None = None


def start_temporary_server_early() -> None:
    """Start the temporary API server now, for a command that will run its flows through
    ``temporary_api`` (the ``stylebench`` program, before it imports its command line: 0.1 s
    sooner on 2 cores). Nothing starts where Prefect is imported already or the environment or
    the profiles name an API; the server is ``temporary_api``'s next, and is stopped as the
    process exits if nothing took it (an option refused, ``--help``)."""
    global _EARLY
    if _EARLY is None:
        _EARLY = _server_before_prefect()
        if _EARLY is not None:
            atexit.register(_stop_early)


def _server_before_prefect() -> _TemporaryServer | None:
    """The temporary server, started before Prefect's settings are read where the environment
    and the profiles name no API (Prefect not imported yet), else None."""
    if "prefect" not in sys.modules and _ephemeral_likely():
        return _TemporaryServer({**os.environ, **TEMPORARY_SERVER_ENV})
    return None


def _stop_early() -> None:
    if _EARLY is not None:
        _EARLY.stop()


class _ApiSetting:
    """Points this process's Prefect settings at an API URL until exit: the exported variable
    and the process-wide settings (which Prefect's own threads read), and the settings of the
    current context (where a caller entered settings of its own), with no flow heartbeats."""

    def __enter__(self) -> Callable[[str], None]:
        import prefect.context

        self.before = os.environ.get("PREFECT_API_URL")
        self.process_wide = prefect.context.GLOBAL_SETTINGS_CONTEXT
        self.context = ExitStack()
        return self.use

    def use(self, url: str) -> None:
        from prefect.context import refresh_global_settings_context
        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )

        self.context.close()
        os.environ["PREFECT_API_URL"] = url
        refresh_global_settings_context()
        self.context.enter_context(
            temporary_settings(
                updates={
                    PREFECT_API_URL: url,
                    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
                    PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED: False,
                }
            )
        )

    def __exit__(self, *exc: object) -> None:
        import prefect.context

        self.context.close()
        if self.before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = self.before
        prefect.context.GLOBAL_SETTINGS_CONTEXT = self.process_wide


def _send_queued() -> None:
    """Send the logs and events that Prefect's workers still hold (before its API stops)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=5)
    EventsWorker.drain_all(timeout=5)


def _ends_with_us() -> Callable[[], None] | None:
    """For a child process (Popen's ``preexec_fn``) on Linux: the child gets SIGTERM when this
    process ends, however it ends, so a killed command leaves no server running. None elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def in_the_child() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # this process ended before the call above
            os._exit(1)

    return in_the_child


def server_app() -> Any:
    """Prefect's API app, as the temporary server's uvicorn makes it (``create_app``).

    Made with Python's cyclic garbage collector paused, and what it made (hundreds of
    thousands of objects that live as long as the server) left out of later collections: the
    server answers about 0.6 s sooner on 2 cores (2.1-2.2 s instead of 2.7-2.8 s).
    """
    import gc

    gc.disable()
    try:
        from prefect.server.api.server import create_app

        return create_app()
    finally:
        gc.freeze()
        gc.enable()


def _ephemeral_likely() -> bool:
    """Whether, by the environment and the profiles file alone, no API is configured and
    ephemeral mode is on (a guess that Prefect's settings confirm)."""
    if os.environ.get("PREFECT_API_URL"):
        return False
    if os.environ.get("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "").lower() in {"0", "false"}:
        return False
    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        text = profiles.expanduser().read_text()
    except (OSError, UnicodeDecodeError):
        return True
    return "PREFECT_API_URL" not in text and "ALLOW_EPHEMERAL_MODE" not in text


class _TemporaryServer:
    """The process of Prefect's API app served by uvicorn on a free local port, as Prefect's
    ephemeral mode runs it (``prefect.server.api.server.SubprocessASGIServer``), started at
    once; ``serve`` points this process at it (and at each process started afresh)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.timeout = 0.0
        self.use_api: Callable[[str], None] | None = None
        self.started = False
        self.process = self._start()

    def serve(self, use_api: Callable[[str], None], timeout: float, env: dict[str, str]) -> None:
        """Point this process's Prefect at the server; ``ready`` waits ``timeout`` seconds and
        starts it afresh with ``env`` where it exits."""
        self.use_api, self.timeout, self.env = use_api, timeout, env
        use_api(self.api_url)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def command(self) -> list[str]:
        """The server's command line (Prefect's API app under uvicorn, on ``self.port``)."""
        app_dir = Path(__file__).resolve().parent.parent  # where ``flows`` is
        args = [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir)]
        args += ["--factory", "flows.prefect_client:server_app"]
        args += ["--host", "127.0.0.1", "--port", str(self.port)]
        return args + ["--log-level", "error", "--lifespan", "on"]

    def _start(self) -> subprocess.Popen:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.began = time.monotonic()
        # A session of its own: a terminal's Ctrl-C reaches the command alone, which then
        # reports its interrupted flow run to the server, sends what is queued and stops it (a
        # server that took the signal too left the command waiting for Prefect's queues).
        process = subprocess.Popen(
            self.command(), env=self.env, preexec_fn=_ends_with_us(), start_new_session=True
        )
        if self.use_api is not None:
            self.use_api(self.api_url)
        return process

    def ready(self) -> None:
        """Wait until the server answers its health check; a clear error if it never does."""
        import httpx

        starts = 1
        with httpx.Client() as client:
            while not self.started:
                code = self.process.poll()
                if code is not None and starts < SERVER_STARTS:
                    starts += 1  # e.g. its port, free when chosen, was taken before it bound it
                    self.process = self._start()
                    continue
                if code is not None or time.monotonic() > self.began + self.timeout:
                    what = (
                        f"exited with code {code} before it answered"
                        if code is not None
                        else f"did not answer within {self.timeout:.0f} s"
                    )
                    raise RuntimeError(f"the ephemeral Prefect API server on {self.api_url} {what}")
                try:
                    self.started = client.get(f"{self.api_url}/health").status_code == 200
                except httpx.TransportError:
                    pass
                if not self.started:
                    time.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def summary_artifacts(key: str, title: str, rows: list[dict[str, Any]], notes: str = "") -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    if rows:
        create_table_artifact(table=rows, key=key, description=title)
    lines = [f"# {title}", ""]
    if rows:
        cols = list(rows[0])
        lines += ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    else:
        lines.append("Nothing to do.")
    if notes:
        lines += ["", notes]
    create_markdown_artifact(markdown="\n".join(lines), key=f"{key}-report", description=title)


def cancel_unstarted_runs(deployment: str) -> int:
    """Cancel the scheduled or pending runs of ``deployment``: their items are planned afresh."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Cancelled

    with get_client(sync_client=True) as client:
        target = client.read_deployment_by_name(deployment)
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[target.id])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.SCHEDULED, StateType.PENDING])
                )
            ),
        )
        for run in runs:
            client.set_flow_run_state(
                run.id, Cancelled(message="superseded by a new plan"), force=True
            )
    return len(runs)


def run_distributed(
    batches: list[list[dict[str, Any]]],
    data_dir: str | None,
    deployment: str,
    gpus: list[str],
    wait_timeout_s: float,
    poll_seconds: float,
) -> None:
    """Submit one deployment run per batch, then wait until all have finished (or time out)."""
    from prefect import get_run_logger
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    logger = get_run_logger()
    stale = cancel_unstarted_runs(deployment)
    if stale:
        logger.info("cancelled %d batch run(s) of an earlier night that never started", stale)
    ids = []
    for n, batch in enumerate(batches):
        routing: dict[str, Any] = {}
        if gpus:
            gpu = str(gpus[n % len(gpus)])
            routing = {
                "work_queue_name": f"gpu-{gpu}",
                "job_variables": {"env": {"CUDA_VISIBLE_DEVICES": gpu}},
            }
        run = run_deployment(
            deployment,
            parameters={"items": batch, "data_dir": data_dir},
            timeout=0,
            flow_run_name=f"batch-{n + 1}-of-{len(batches)}",
            **routing,
        )
        ids.append(run.id)
    logger.info("submitted %d batch run(s) to %s", len(ids), deployment)
    deadline = time.monotonic() + wait_timeout_s
    with get_client(sync_client=True) as client:
        while True:
            states = [client.read_flow_run(i).state for i in ids]
            if all(s is not None and s.is_final() for s in states):
                break
            if time.monotonic() > deadline:
                logger.warning(
                    "stopped waiting after %.0f s; a rerun finishes what is left", wait_timeout_s
                )
                return
            time.sleep(poll_seconds)
    failed = [i for i, s in zip(ids, states, strict=True) if not s.is_completed()]
    if failed:
        logger.warning("%d batch run(s) did not complete; rerun to finish their items", len(failed))
