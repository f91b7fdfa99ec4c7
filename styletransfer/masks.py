"""Segmentation masks against their photos: a mask has its photo's shape, within rounding."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from styletransfer.images import ImageLike

# A mask may be its photo's size or a uniformly scaled copy of it (it is resized by nearest
# neighbour). Scaled by the ratio of the longer sides, its shorter side must land within one
# photo pixel plus one mask pixel of the photo's: the rounding of both sizes. So a 700 x 393
# mask of a 700 x 394 photo (the DPST paper's pair 7) fits, as does a 350 x 197 one; a mask
# cut, padded or stretched by more than that, or turned on its side, does not.
ROUNDING_PX = 1.0


def name_of(image: ImageLike, fallback: str) -> str:
    """A file's path as given; an in-memory image as ``fallback`` ("the content mask")."""
    return str(image) if isinstance(image, (str, os.PathLike)) else fallback


def size_of(image: ImageLike) -> tuple[int, int]:
    """(width, height) of a PIL image or a file (read from its header, not decoded)."""
    if isinstance(image, Image.Image):
        return image.size
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with Image.open(path) as img:
            return img.size
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def misfit(mask_size: tuple[int, int], image_size: tuple[int, int]) -> str | None:
    """Why a mask of ``mask_size`` does not cover an image of ``image_size`` (w, h), or None."""
    (mw, mh), (iw, ih) = mask_size, image_size
    if mw >= mh:
        scale = iw / mw  # mask to image, from the longer side
        off = abs(mh * scale - ih)
    else:
        scale = ih / mh
        off = abs(mw * scale - iw)
    if off <= ROUNDING_PX + scale:
        return None
    return (
        f"is {mw}x{mh} (aspect {mw / mh:.3f}), its image {iw}x{ih} (aspect {iw / ih:.3f}): "
        "a mask must be its image's size, or a scaled copy of it, within a pixel of rounding"
    )


def check_fit(mask: ImageLike, image: ImageLike, mask_name: str, image_name: str) -> None:
    """A ValueError naming both when ``mask`` does not have ``image``'s shape (see ``misfit``)."""
    why = misfit(size_of(mask), size_of(image))
    if why:
        raise ValueError(f"{mask_name} does not fit {image_name}: it {why}")


def check_masks(
    content_mask: ImageLike,
    style_masks: Sequence[ImageLike],
    content: ImageLike,
    styles: Sequence[ImageLike],
) -> None:
    """Each mask against its photo (content, then each style): a ValueError names the misfit."""
    if len(style_masks) != len(styles):
        raise ValueError(f"{len(style_masks)} style mask(s) for {len(styles)} style image(s)")
    pairs = [(content_mask, content, "the content mask", "the content image")]
    for k, (mask, style) in enumerate(zip(style_masks, styles, strict=True), 1):
        pairs.append((mask, style, f"style mask {k}", f"style image {k}"))
    for mask, image, mask_name, image_name in pairs:
        if isinstance(mask, (str, os.PathLike)):
            mask_name = f"mask {mask}"
        check_fit(mask, image, mask_name, name_of(image, image_name))
