"""Curation: quality measures as pure functions, and the dedup/quality decision for each image."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image

from stylebench.vocabulary import SCRAPE_MIN_SIDE

# Hamming distance (of 64 bits) at or below which two perceptual hashes are the same picture.
# Measured on the 18 photographs and textures of skimage.data (test_curate.py re-checks it):
# the same image resized to half, re-saved as JPEG quality 40 or brightened 10 % lands at
# distance 0-6, cropped by 2 % at 2-8 (a repeating texture such as "brick" drifts to 22,
# which no threshold can separate from distinct images); the closest two *different*
# images are 20 apart and the median pair 32. 10 catches every photo variant and keeps a
# 10-bit margin below the nearest distinct pair.
NEAR_DUP_DISTANCE = 10
BLUR_SIDE = 512  # blur is measured at this longest side so scores compare across sizes
GRAY_SIDE = 64
GRAY_TOLERANCE = 6.0  # mean |R-G| + |G-B| (0-255 scale) below which a colour file is grey


@dataclass(frozen=True)
class CurationConfig:
    """Thresholds for automatic acceptance. Validated on construction."""

    min_side: int = SCRAPE_MIN_SIDE  # pixels; smaller images are rejected as too-small
    max_aspect: float = 4.0  # long side / short side; wider images are rejected
    near_dup_distance: int = NEAR_DUP_DISTANCE  # -1 turns near-duplicate detection off
    min_blur: float = 0.0  # variance of the Laplacian; 0 keeps every image (score recorded)

    def __post_init__(self) -> None:
        if self.min_side < 1:
            raise ValueError(f"min_side must be >= 1 pixel, got {self.min_side}")
        if self.max_aspect < 1:
            raise ValueError(
                f"max_aspect must be >= 1 (long side / short side), got {self.max_aspect}"
            )
        if not -1 <= self.near_dup_distance <= 64:
            raise ValueError(
                f"near_dup_distance must be -1 (off) to 64 bits, got {self.near_dup_distance}"
            )
        if self.min_blur < 0:
            raise ValueError(f"min_blur must be >= 0, got {self.min_blur}")


@dataclass(frozen=True)
class Features:
    """What curation needs to know about one decoded image."""

    sha256: str
    width: int
    height: int
    phash: str  # 16 hex digits
    blur: float
    is_grayscale: bool


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _shrink(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR)


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a 2-D array: low means blurry or flat."""
    g = np.asarray(gray, dtype=np.float32)
    if g.ndim != 2 or min(g.shape) < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def blur_score(image: Image.Image) -> float:
    return laplacian_variance(np.asarray(_shrink(image.convert("L"), BLUR_SIDE)))


def is_grayscale(image: Image.Image, tolerance: float = GRAY_TOLERANCE) -> bool:
    """True for L images and for colour images whose channels (nearly) agree."""
    if image.mode == "L":
        return True
    rgb = np.asarray(_shrink(image.convert("RGB"), GRAY_SIDE), dtype=np.int16)
    spread = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
    return float(spread.mean()) < tolerance


def phash(image: Image.Image) -> str:
    return str(imagehash.phash(image))


def _popcount(values: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element."""
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(values).astype(np.int64)
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).astype(np.int64)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def features(data: bytes, image: Image.Image) -> Features:
    """Every measure of one image; pure, and safe to run in worker threads."""
    return Features(
        sha256=sha256(data),
        width=image.width,
        height=image.height,
        phash=phash(image),
        blur=blur_score(image),
        is_grayscale=is_grayscale(image),
    )


def quality_reason(f: Features, config: CurationConfig) -> str | None:
    """Why the image fails the size, shape or sharpness bar, or None."""
    short, long = sorted((f.width, f.height))
    if short < config.min_side:
        return f"too-small: {f.width}x{f.height} < {config.min_side} px"
    if long / short > config.max_aspect:
        return f"aspect-ratio: {long / short:.1f} > {config.max_aspect:g}"
    if f.blur < config.min_blur:
        return f"blurry: {f.blur:.1f} < {config.min_blur:g}"
    return None


class Deduper:
    """Remembers accepted images (sha256 and phash) and names the one a new image repeats.

    Hashes live in a numpy uint64 array (plus a short list of recent additions), so checking
    an image against a catalog of 100,000 costs one vectorised XOR and popcount.
    """

    def __init__(self, config: CurationConfig, known: list[tuple[str, str]] | None = None):
        self.config = config
        self.sha: set[str] = set()
        self._ids: list[str] = []
        self._where: dict[str, list[int]] = {}  # image id -> its positions in _ids
        self._array = np.zeros(0, dtype=np.uint64)
        self._tail: list[int] = []
        for image_id, ph in known or []:
            self.add(image_id, ph)

    def add(self, image_id: str, ph: str | None) -> None:
        self.sha.add(image_id)
        if ph:
            self._where.setdefault(image_id, []).append(len(self._ids))
            self._ids.append(image_id)
            self._tail.append(int(ph, 16))
            if len(self._tail) >= 256:
                self._array = np.concatenate([self._array, np.array(self._tail, dtype=np.uint64)])
                self._tail = []

    def near(self, ph: str, exclude: str | None = None) -> tuple[str, int] | None:
        """The closest accepted image within the threshold, and its distance.

        ``exclude`` is the image's own id: an image is never a near duplicate of itself
        (another process may have accepted the same bytes a moment ago).
        """
        if self.config.near_dup_distance < 0 or not self._ids:
            return None
        value = int(ph, 16)
        distances = np.concatenate(
            [
                _popcount(self._array ^ np.uint64(value)),
                np.array([(value ^ h).bit_count() for h in self._tail], dtype=np.int64),
            ]
        )
        if exclude is not None:
            distances[self._where.get(exclude, [])] = 65  # above any 64-bit distance
        best = int(np.argmin(distances))
        if distances[best] > self.config.near_dup_distance:
            return None
        return self._ids[best], int(distances[best])

    def decide(self, f: Features, config: CurationConfig | None = None) -> str | None:
        """None to accept (and remember), else the rejection reason (``config``: thresholds
        for this image other than the deduper's own)."""
        reason = quality_reason(f, config or self.config)
        if reason:
            return reason
        match = self.near(f.phash, exclude=f.sha256)
        if match:
            return f"near-duplicate: of {match[0][:12]} (distance {match[1]})"
        self.add(f.sha256, f.phash)
        return None


def reason_code(reason: str) -> str:
    """The stable code at the start of a reason ("too-small: 80x60 < 256 px" -> "too-small")."""
    return reason.split(":", 1)[0]
