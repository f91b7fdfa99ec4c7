"""Fixtures: the local HTTP server, private addresses allowed, a fast download config."""

from __future__ import annotations

import pytest

from scraper.download import DownloadConfig
from tests.localserver import LocalServer


@pytest.fixture(scope="session")
def _server():
    s = LocalServer()
    yield s
    s.close()


@pytest.fixture
def server(_server: LocalServer) -> LocalServer:
    _server.reset()
    return _server


@pytest.fixture(autouse=True)
def _allow_private(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Tests talk to 127.0.0.1; the refusal tests unset this themselves. No key or contact
    is set, and request budgets are counted in the test's own folder."""
    monkeypatch.setenv("STYLEBENCH_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("STYLEBENCH_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("GOOGLE_API_KEY", "GOOGLE_CSE_ID", "FLICKR_API_KEY", "STYLEBENCH_CONTACT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fast() -> DownloadConfig:
    """Short timeouts and backoff so failure paths finish quickly."""
    return DownloadConfig(
        connect_timeout=2,
        read_timeout=1,
        total_timeout=2,
        retries=2,
        backoff_base=0.01,
        per_host_rps=None,
        workers=8,
        max_bytes=2_000_000,
    )
