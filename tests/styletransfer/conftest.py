"""Fixtures for the style-transfer tests: small images from scikit-image, a shared cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from styletransfer import TransferCache


def _pil(array: np.ndarray) -> Image.Image:
    return Image.fromarray(array).convert("RGB")


@pytest.fixture(scope="session")
def astronaut() -> Image.Image:
    return _pil(data.astronaut())


@pytest.fixture(scope="session")
def coffee() -> Image.Image:
    return _pil(data.coffee())


@pytest.fixture(scope="session")
def chelsea() -> Image.Image:
    return _pil(data.chelsea())


@pytest.fixture(scope="session")
def cache() -> TransferCache:
    """One cache for the session: the bundled VGG19 is loaded once."""
    return TransferCache()
