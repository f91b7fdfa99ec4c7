"""A fault of the data directory ends a flow at once: no retry can mend a full disk."""

from __future__ import annotations

import errno

import pytest

from storage import StorageError


def test_a_storage_fault_in_a_scrape_task_is_not_retried(
    prefect_harness, tmp_path, monkeypatch, probe
):
    import scraper
    from flows.pipeline import build_dataset

    calls = []

    def full_disk(*args, **kwargs):
        calls.append(args)
        raise StorageError(f"data directory {tmp_path}: storing x: no space left on the device")

    monkeypatch.setattr(scraper, "scrape", full_disk)
    spec = {"name": "t", "queries": [{"query": "cats", "role": "style", "engine": "bing"}]}
    with pytest.raises(StorageError, match="no space left") as info:
        build_dataset(spec, data_dir=str(tmp_path / "data"))
    assert len(calls) == 1  # the task's three retries (5, 30, 120 s) were skipped
    probe.record(
        "build-dataset: a full disk in a scrape task", rejected=True, reason=str(info.value)
    )


def test_other_failures_are_still_retried():
    from flows.prefect_client import retry_unless_storage_fault

    class Failed:
        def __init__(self, exc: Exception):
            self.exc = exc

        def result(self):
            raise self.exc

    assert retry_unless_storage_fault(None, None, Failed(ConnectionError("engine down")))
    assert not retry_unless_storage_fault(
        None, None, Failed(StorageError(errno.ENOSPC, "no space"))
    )
