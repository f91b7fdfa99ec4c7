"""Flow fixtures: one Prefect test harness per session, and a small catalog of generated photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from storage import Store


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect API (its own SQLite database) for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _picture(seed: int, size: int = 64) -> Image.Image:
    """A smooth random picture: distinct per seed, never a near duplicate of another."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 6, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.5 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    img = np.stack(channels, axis=-1) + rng.normal(0, 0.04, (size, size, 3))
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


@pytest.fixture
def small_catalog(tmp_path):
    """A data directory with 3 accepted content and 2 accepted style images (64 px)."""
    from scraper import CurationConfig, import_sources

    data_dir = str(tmp_path / "data")
    store = Store(data_dir)
    for role, seeds in (("content", (1, 2, 3)), ("style", (11, 12))):
        folder = tmp_path / role
        folder.mkdir()
        for s in seeds:
            _picture(s).save(folder / f"{role}-{s}.png")
        summary = import_sources(store, [str(folder)], role, curation=CurationConfig(min_side=32))
        assert summary.accepted == len(seeds), summary
    return store
