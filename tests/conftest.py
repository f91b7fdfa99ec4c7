"""Fixtures shared by every test package: a temporary data directory, local servers only."""

from __future__ import annotations

import os

import pytest

# Tests never reach the live web; local stand-ins run on 127.0.0.1, which the
# scraper refuses unless this is set.
os.environ.setdefault("STYLEBENCH_ALLOW_PRIVATE", "1")
# Nor do they download feature-network weights (a test that means to, stubs the network).
os.environ.setdefault("STYLEBENCH_OFFLINE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def no_prefect_api(monkeypatch):
    """No Prefect API configured (Prefect's ephemeral mode), even beside a session's harness."""
    from tests.prefect_settings import prefect_api_setting

    with prefect_api_setting(monkeypatch, None):
        yield


@pytest.fixture
def data_dir(tmp_path):
    """A fresh local data directory."""
    return str(tmp_path / "data")


class ProbeLog:
    """Hostile-input and concurrency probes, tallied for the reliability summary.

    A probe test takes the ``probe`` fixture and records what happened: whether the bad
    input was refused with a reason, and how many stored rows it lost, duplicated or
    stranded (an image row left without a curation decision).
    """

    def __init__(self) -> None:
        self.entries: list[dict] = []

    def record(
        self,
        name: str,
        *,
        rejected: bool,
        reason: str | None = None,
        rows_lost: int = 0,
        rows_duplicated: int = 0,
        rows_stranded: int = 0,
    ) -> None:
        self.entries.append(
            {
                "name": name,
                "rejected": bool(rejected),
                "reason": reason,
                "rows_lost": int(rows_lost),
                "rows_duplicated": int(rows_duplicated),
                "rows_stranded": int(rows_stranded),
            }
        )


_PROBES = ProbeLog()


@pytest.fixture
def probe() -> ProbeLog:
    """The session's probe tally (see ProbeLog)."""
    return _PROBES


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    entries = _PROBES.entries
    if not entries:
        return
    rejected = sum(e["rejected"] for e in entries)
    lost = sum(e["rows_lost"] for e in entries)
    duplicated = sum(e["rows_duplicated"] for e in entries)
    stranded = sum(e["rows_stranded"] for e in entries)
    terminalreporter.write_sep("-", "reliability probes")
    terminalreporter.write_line(
        f"{len(entries)} probes tried, {rejected} rejected with a reason, "
        f"{lost} rows lost, {stranded} rows stranded, {duplicated} rows duplicated"
    )
    out = os.environ.get("STYLEBENCH_PROBE_REPORT")
    if out:
        import json

        with open(out, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=1)
