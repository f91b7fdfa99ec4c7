"""Fixtures shared by every test package: a temporary data directory, local servers only."""

from __future__ import annotations

import os

import pytest

# Tests never reach the live web; local stand-ins run on 127.0.0.1, which the
# scraper refuses unless this is set.
os.environ.setdefault("STYLEBENCH_ALLOW_PRIVATE", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture
def data_dir(tmp_path):
    """A fresh local data directory."""
    return str(tmp_path / "data")
