"""Small paired datasets written by the tests: tiny photos with two-colour masks, in both layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
SIZE = (48, 32)  # width, height of every photo


def photo(seed: int, size: tuple[int, int] = SIZE) -> Image.Image:
    """A smooth random picture, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(1, 4, 2).tolist() + [rng.uniform(0, 6.28)]
        channels.append(0.5 + 0.45 * np.sin(2 * np.pi * (fx * x + fy * y) + phase))
    return Image.fromarray((np.stack(channels, axis=-1) * 255).astype(np.uint8))


def halves(top: tuple[int, int, int], bottom: tuple[int, int, int], size=SIZE) -> Image.Image:
    """A label image: ``top`` over ``bottom``."""
    mask = Image.new("RGB", size, top)
    mask.paste(bottom, (0, size[1] // 2, size[0], size[1]))
    return mask


def paths(folder: Path, layout: str, n: int) -> dict[str, Path]:
    """Where pair ``n``'s files go: content, style, content_mask, style_mask."""
    if layout == "authors":
        return {
            "content": folder / "input" / f"in{n}.png",
            "style": folder / "style" / f"tar{n}.png",
            "content_mask": folder / "segmentation" / f"in{n}.png",
            "style_mask": folder / "segmentation" / f"tar{n}.png",
        }
    return {
        "content": folder / f"in{n}.png",
        "style": folder / f"tar{n}.png",
        "content_mask": folder / f"seg_in{n}.png",
        "style_mask": folder / f"seg_tar{n}.png",
    }


def write_pair(
    folder: Path,
    layout: str,
    n: int,
    *,
    masks: bool = True,
    content_mask: Image.Image | None = None,
    style_mask: Image.Image | None = None,
) -> dict[str, Path]:
    """Write pair ``n`` (content sky over ground, the style's regions the other way round)."""
    where = paths(folder, layout, n)
    for path in where.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    photo(100 + n).save(where["content"])
    photo(200 + n).save(where["style"])
    if masks:
        (content_mask or halves(RED, BLUE)).save(where["content_mask"])
        (style_mask or halves(BLUE, RED)).save(where["style_mask"])
    return where
