"""The Prefect-client plumbing the flows use: accelerator slots, artifacts, deployment runs.

Kept apart from ``flows/pipeline.py`` so that the flows read as wiring.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

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


def summary_artifacts(key: str, title: str, rows: list[dict[str, Any]], notes: str = "") -> None:
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
