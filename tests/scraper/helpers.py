"""Test helpers: images made in code, recorded fixtures."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_HOST = "https://img.example.com"  # image URLs in the recorded fixtures


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "horse", "moon")


def photo(name: str, width: int = 320) -> Image.Image:
    """A skimage sample photograph scaled to ``width`` (RGB or L)."""
    array = getattr(skdata, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def jpeg(name: str, width: int = 320, quality: int = 90) -> bytes:
    return encode(photo(name, width).convert("RGB"), "JPEG", quality=quality)


def fixture(name: str, base: str | None = None) -> bytes:
    """A recorded-format fixture, with image URLs pointed at ``base`` if given."""
    body = (FIXTURES / name).read_bytes()
    return body.replace(FIXTURE_HOST.encode(), base.encode()) if base else body
