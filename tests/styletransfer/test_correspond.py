"""Tests of the mask-free correspondence: k-means, smoothing over superpixels, matched labels."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from PIL import Image

from styletransfer import TransferCache, TransferConfig, transfer
from styletransfer.correspond import (
    MatchOptions,
    PhotoFeatures,
    kmeans,
    match,
    match_style,
    prepare,
    similarity,
    smooth,
)
from styletransfer.features import load_encoder
from styletransfer.images import to_tensor


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("vgg19", ("relu4_1", "relu5_1"))


def _photo(encoder, image) -> PhotoFeatures:
    return prepare(encoder, to_tensor(image), 128)


def test_kmeans_is_deterministic_and_finds_separated_groups():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (30, 4)), rng.normal(5, 0.1, (20, 4))])
    a, b = kmeans(points, 2), kmeans(points, 2)
    assert np.array_equal(a, b)
    assert len(set(a[:30])) == 1 and len(set(a[30:])) == 1 and a[0] != a[-1]
    assert np.array_equal(kmeans(points[:2], 3), [0, 1])  # fewer points than groups


def _strip(colours: list[float], labels: np.ndarray) -> PhotoFeatures:
    """A 1 x n row of superpixels with the given lightness, one pixel each."""
    n = len(colours)
    lab = np.zeros((n, 3))
    lab[:, 0] = colours
    return PhotoFeatures(
        features=torch.zeros(n, 2),
        grid=(1, n),
        superpixels=labels.reshape(1, n),
        cells=sp.identity(n, format="csr"),
        lab=lab,
    )


def test_smoothing_pulls_a_doubtful_superpixel_to_neighbours_of_its_colour_only():
    photo = _strip([50, 50, 50, 50, 90], np.arange(5))
    unary = np.array([[0.9, 0.1], [0.9, 0.1], [0.45, 0.55], [0.9, 0.1], [0.45, 0.55]])
    labels = smooth(unary, photo).argmax(1)
    assert labels[2] == 0  # same colour as its neighbours: joins them
    assert labels[4] == 1  # another colour (a different region): keeps its own doubt


def test_labels_have_the_working_size_and_segments_in_range(encoder, astronaut, coffee):
    content, style = _photo(encoder, astronaut.resize((96, 96))), _photo(encoder, coffee)
    lc, ls = match(content, style, MatchOptions(segments=3, match_size=128))
    assert lc.shape == content.superpixels.shape and ls.shape == style.superpixels.shape
    assert lc.min() >= -1 and lc.max() < 3 and ls.min() >= -1 and ls.max() < 3
    assert len(np.unique(ls[ls >= 0])) >= 2
    # one segment: everything in it
    one_c, one_s = match(content, style, MatchOptions(segments=1))
    assert (one_c == 0).all() and (one_s == 0).all()
    # a second style takes the same content segments
    other = match_style(content, lc, style, MatchOptions(match_size=128), 3)
    assert other.shape == ls.shape and other.max() < 3


def test_the_height_prior_pairs_the_top_with_the_top(encoder, astronaut):
    """The same photo as content and as style (flipped upside down): with the prior, the top
    of the content matches the top of the style, which is the other photo half."""
    image = astronaut.resize((128, 128))
    flipped = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    content, style = _photo(encoder, image), _photo(encoder, flipped)
    sim_plain = content.features @ style.features.T
    sim_prior = similarity(content, style, 4.0)
    heights_c, heights_s = content.heights, style.heights
    plain = (heights_c - heights_s[sim_plain.argmax(1)]).abs().mean()
    prior = (heights_c - heights_s[sim_prior.argmax(1)]).abs().mean()
    assert float(prior) < float(plain)


def test_dpst_without_masks_finds_its_own_segments(astronaut, coffee):
    cache = TransferCache()
    cfg = TransferConfig(method="dpst", size=48, steps=2, device="cpu")
    auto = transfer(astronaut, coffee, cfg, cache=cache, quality=False)
    plain = transfer(astronaut, coffee, cfg.with_(extra={"auto_masks": 0}), cache=cache)
    assert auto.status == "ok" and auto.mask_source == "auto"
    assert plain.mask_source == "none"
    assert auto.losses["style"] != pytest.approx(plain.losses["style"], rel=1e-3)
    with pytest.raises(ValueError, match="unknown dpst option"):
        transfer(astronaut, coffee, cfg.with_(extra={"segmnts": 2}), cache=cache)
    with pytest.raises(ValueError, match="auto_masks must be 0 or 1"):
        transfer(astronaut, coffee, cfg.with_(extra={"auto_masks": 3}), cache=cache)


@pytest.mark.parametrize("size", [24, 40])
def test_tiny_flat_photos_match_without_failing(size):
    """A feature grid of one position (relu5_1 of a 24 px picture) and identical features."""
    content = Image.new("RGB", (size, size), (200, 30, 30))
    style = Image.new("RGB", (size, size), (30, 30, 200))
    for method, steps in (("photo-fast", 0), ("dpst", 2)):
        cfg = TransferConfig(method=method, size=size, steps=steps, device="cpu")
        out = transfer(content, style, cfg, cache=TransferCache(), quality=False)
        assert out.status == "ok" and out.mask_source == "auto", out.error
        assert np.isfinite(np.asarray(out.image, dtype=float)).all()
