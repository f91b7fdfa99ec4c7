"""Curation measures against independent computations, and the dedup threshold's justification."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter
from scipy import ndimage
from skimage import data as skdata

from scraper.curate import (
    NEAR_DUP_DISTANCE,
    CurationConfig,
    Deduper,
    Features,
    blur_score,
    features,
    hamming,
    is_grayscale,
    laplacian_variance,
    phash,
    quality_reason,
    reason_code,
)
from tests.scraper.helpers import PHOTOS, encode, photo


def test_laplacian_variance_matches_scipy():
    rng = np.random.default_rng(0)
    gray = rng.uniform(0, 255, (40, 50))
    expected = ndimage.laplace(gray)[1:-1, 1:-1].var()
    assert laplacian_variance(gray) == pytest.approx(expected, rel=1e-5)
    assert laplacian_variance(np.full((20, 20), 7.0)) == 0.0


def test_blur_score_drops_when_blurred():
    sharp = photo("astronaut", 512)
    blurred = sharp.filter(ImageFilter.GaussianBlur(3))
    assert blur_score(blurred) < blur_score(sharp) / 5


def test_grayscale_flag():
    assert is_grayscale(photo("camera"))  # an L image
    assert is_grayscale(photo("camera").convert("RGB"))  # grey pixels in an RGB file
    assert not is_grayscale(photo("coffee"))


def _variants(image: Image.Image) -> list[Image.Image]:
    w, h = image.size
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=40)
    dx, dy = int(w * 0.02), int(h * 0.02)
    return [
        image.resize((w // 2, h // 2)),
        Image.open(buffer),
        ImageEnhance.Brightness(image).enhance(1.1),
        image.crop((dx, dy, w - dx, h - dy)),
    ]


def test_near_dup_threshold_separates_variants_from_distinct_photos():
    """The measurement behind NEAR_DUP_DISTANCE, on skimage's photographs."""
    names = (
        "astronaut",
        "camera",
        "coffee",
        "chelsea",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "coins",
        "moon",
        "page",
        "text",
        "horse",
        "retina",
    )
    images = {}
    for name in names:
        array = getattr(skdata, name)()
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        images[name] = Image.fromarray(array[..., :3] if array.ndim == 3 else array)
    hashes = {name: phash(image) for name, image in images.items()}
    closest_distinct = min(
        hamming(hashes[a], hashes[b]) for a, b in itertools.combinations(hashes, 2)
    )
    worst_variant = max(
        hamming(hashes[name], phash(v)) for name, image in images.items() for v in _variants(image)
    )
    assert worst_variant <= NEAR_DUP_DISTANCE < closest_distinct


def _features(name: str, **kw) -> Features:
    image = photo(name, **kw)
    return features(encode(image, "PNG"), image)


def test_quality_reasons():
    config = CurationConfig(min_side=256, max_aspect=2.0, min_blur=5.0)
    f = _features("coffee", width=320)  # 320 x 213
    assert reason_code(quality_reason(f, config)) == "too-small"
    assert quality_reason(f, CurationConfig(min_side=200)) is None
    wide = Features("x", 900, 300, "0" * 16, 100.0, False)
    assert (
        reason_code(quality_reason(wide, CurationConfig(min_side=100, max_aspect=2.5)))
        == "aspect-ratio"
    )
    flat = Features("y", 400, 400, "0" * 16, 0.5, False)
    assert reason_code(quality_reason(flat, config)) == "blurry"
    assert quality_reason(flat, CurationConfig()) is None  # blur only scored by default


def test_deduper_names_the_original():
    config = CurationConfig(min_side=64)
    dedup = Deduper(config)
    first = _features("astronaut")
    assert dedup.decide(first) is None
    brighter = ImageEnhance.Brightness(photo("astronaut")).enhance(1.05)
    near = features(encode(brighter, "PNG"), brighter)
    assert near.sha256 != first.sha256
    verdict = dedup.decide(near)
    assert reason_code(verdict) == "near-duplicate" and first.sha256[:12] in verdict
    assert dedup.decide(_features("rocket")) is None
    off = Deduper(CurationConfig(min_side=64, near_dup_distance=-1), [(first.sha256, first.phash)])
    assert off.decide(near) is None


def test_distinct_sample_photos_all_accepted():
    dedup = Deduper(CurationConfig(min_side=64))
    assert all(dedup.decide(_features(name)) is None for name in PHOTOS)


def test_config_validation_lists_valid_values():
    with pytest.raises(ValueError, match="near_dup_distance must be -1"):
        CurationConfig(near_dup_distance=99)
    with pytest.raises(ValueError, match="min_side"):
        CurationConfig(min_side=0)


def test_deduper_vectorised_search_matches_brute_force():
    rng = np.random.default_rng(3)
    hashes = [f"{int(x):016x}" for x in rng.integers(0, 2**63, 700, dtype=np.uint64) * 2 + 1]
    dedup = Deduper(
        CurationConfig(near_dup_distance=12), [(f"id{i}", h) for i, h in enumerate(hashes)]
    )
    for probe_index in (3, 300, 699):  # in the array part and in the recent tail
        probe = f"{int(hashes[probe_index], 16) ^ 0b1011:016x}"  # 3 bits flipped
        distances = [hamming(probe, h) for h in hashes]
        best = int(np.argmin(distances))
        assert dedup.near(probe) == (f"id{best}", distances[best]) == (f"id{probe_index}", 3)
    far = f"{int(hashes[0], 16) ^ ((1 << 64) - 1):016x}"  # every bit flipped
    assert (dedup.near(far) is None) == (min(hamming(far, h) for h in hashes) > 12)
