"""Tests of styletransfer.quality: the metrics are pure functions with known values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from styletransfer.colour import lab_to_rgb, rgb_to_lab
from styletransfer.images import label_codes
from styletransfer.quality import (
    affine_residual_share,
    colour_distance,
    labels_from_label_images,
    luma_ssim,
    score,
    sliced_wasserstein,
)


def _photo(astronaut, size=64) -> torch.Tensor:
    array = np.asarray(astronaut.resize((size, size)), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def test_ssim_is_one_against_itself_and_lower_for_noise(astronaut):
    x = _photo(astronaut)
    assert luma_ssim(x, x) == pytest.approx(1.0)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert luma_ssim(noisy, x) < 0.8
    # Content of another size is resized to the output's.
    assert luma_ssim(x, astronaut) > 0.95


def test_sliced_wasserstein_of_a_shift_is_the_shift_times_the_mean_projection():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    assert sliced_wasserstein(a, a) == 0.0
    shift = np.array([3.0, 0.0, 0.0])
    from styletransfer.quality import _directions

    expected = 3.0 * np.sqrt((_directions()[:, 0] ** 2).mean())
    assert sliced_wasserstein(a, a + shift) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        sliced_wasserstein(a[:0], a)


def test_colour_distance_is_per_segment_and_area_weighted():
    # Two segments: the output's left half matches the style's left half exactly, its right
    # half is 10 L units off.
    lab = torch.zeros(1, 3, 8, 8, dtype=torch.float64)
    lab[:, 0] = 50
    lab[:, 0, :, 4:] = 70
    style = lab_to_rgb(lab).clamp(0, 1)
    shifted = lab.clone()
    shifted[:, 0, :, 4:] += 10
    out = lab_to_rgb(shifted).clamp(0, 1)
    labels = np.zeros((8, 8), dtype=int)
    labels[:, 4:] = 1
    got = colour_distance(out.float(), style.float(), labels, labels)
    from styletransfer.quality import _directions

    per_segment = 10 * np.sqrt((_directions()[:, 0] ** 2).mean())
    assert got == pytest.approx(0.5 * per_segment, rel=0.02)
    # Segments absent from the style are left out; none at all in common is an error.
    other = np.full((8, 8), 5)
    with pytest.raises(ValueError, match="no segment"):
        colour_distance(out.float(), style.float(), labels, other)
    assert np.isfinite(rgb_to_lab(out)).all()


def test_affine_residual_is_zero_for_affine_recolourings_and_high_for_other_pictures(
    astronaut, coffee
):
    x = _photo(astronaut).double()
    matrix = torch.tensor([[0.8, 0.1, 0.0], [0.0, 0.5, 0.2], [0.1, 0.0, 0.7]], dtype=torch.float64)
    recoloured = torch.einsum("ij,bjhw->bihw", matrix, x) + 0.05
    assert affine_residual_share(recoloured, x) < 1e-6
    assert affine_residual_share(_photo(coffee).double(), x) > 0.3


def test_score_and_label_images_with_noisy_colours():
    # Anti-aliased, lossy label images: near-palette colours are read as the palette colour.
    mask = np.zeros((20, 20, 3), dtype=np.uint8)
    mask[:, 10:] = 255
    mask[0, 9] = (3, 1, 2)
    mask[1, 10] = (250, 252, 251)
    mask[2, 10] = (128, 128, 128)  # grey is a label colour of its own
    codes = label_codes(Image.fromarray(mask))
    assert set(np.unique(codes)) == {0, 0x808080, 0xFFFFFF}
    style_mask = mask[:, ::-1].copy()
    style_mask[2, 9] = 0
    lc, ls = labels_from_label_images(Image.fromarray(mask), Image.fromarray(style_mask))
    assert lc[2, 10] == -1  # grey only in the content
    assert (lc[:, :9] == 0).all() and (ls[:, 11:] == 0).all()
    image = torch.rand(1, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    q = score(image, image, image, lc, lc)
    assert q.ssim == pytest.approx(1.0) and q.colour_distance == 0.0
    assert q.affine_residual < 1e-6
    assert set(q.to_dict()) == {"ssim", "colour_distance", "affine_residual"}


# -- the bounded cost against the full-resolution values ---------------------------------------
def _pictures(astronaut, coffee, chelsea, size=700):
    """A 700 px content, a locally recoloured output of it, and a style photo."""
    from styletransfer.images import resize

    content = resize(astronaut, size)
    array = np.asarray(content).astype(np.float32)
    ramp = np.linspace(0.7, 1.2, array.shape[1], dtype=np.float32)[None, :, None]
    output = Image.fromarray(np.clip(array * ramp + [10, -5, 0], 0, 255).astype(np.uint8))
    return content, output, resize(coffee, size)


def test_the_full_resolution_paths_are_the_reference_definitions(astronaut, coffee, chelsea):
    from skimage.metrics import structural_similarity

    from styletransfer.guided import LUMA, local_residual_variance
    from styletransfer.quality import _tensor

    content, output, style = _pictures(astronaut, coffee, chelsea, size=200)
    weights = np.asarray(LUMA)
    ya = np.asarray(output, dtype=np.float64) / 255 @ weights
    yb = np.asarray(content, dtype=np.float64) / 255 @ weights
    expected = structural_similarity(ya, yb, data_range=1.0)
    assert luma_ssim(output, content, max_windows=None) == pytest.approx(expected, abs=1e-5)
    residual, variance = local_residual_variance(_tensor(content), _tensor(output), 2)
    expected = float(residual.sum() / variance.sum())
    # (window sums in float32: a residual of 1e-3 of the variance is kept to 1e-3 of itself)
    assert affine_residual_share(output, content, max_windows=None) == pytest.approx(
        expected, rel=1e-3
    )
    # Every pixel, and quantiles within a histogram bin of np.quantile's over all of them.
    from styletransfer.quality import lab_points

    lab_o = lab_points(np.asarray(output).reshape(-1, 3)).T
    lab_s = lab_points(np.asarray(style).reshape(-1, 3)).T
    expected = sliced_wasserstein(lab_o.astype(np.float64), lab_s.astype(np.float64))
    got = colour_distance(output, style, max_pixels=None)
    assert got == pytest.approx(expected, rel=0.005)


def test_bounded_metrics_stay_within_2_percent_of_full_resolution(astronaut, coffee, chelsea):
    from styletransfer.quality import grid_stride

    content, output, style = _pictures(astronaut, coffee, chelsea)
    labels = np.zeros((output.height, output.width), dtype=int)
    labels[: output.height // 3] = 1  # a "sky" segment
    style_labels = np.zeros((style.height, style.width), dtype=int)
    style_labels[: style.height // 2] = 1
    pairs = [
        (luma_ssim(output, content), luma_ssim(output, content, max_windows=None)),
        (
            affine_residual_share(output, content),
            affine_residual_share(output, content, max_windows=None),
        ),
        (
            colour_distance(output, style, labels, style_labels),
            colour_distance(output, style, labels, style_labels, max_pixels=None),
        ),
    ]
    for bounded, full in pairs:
        assert bounded == pytest.approx(full, rel=0.02)
    # The cost is bounded: at 700 px SSIM reads a window in 16, the residual one in 4 ...
    assert grid_stride(694 * 694, 1 << 14) == 6 and grid_stride(700 * 700, 1 << 17) == 2
    # ... and a 4096 px picture's colours are read on a grid of a fixed stride.
    assert grid_stride(4096 * 2304, 1 << 19) == 5


def test_cielab_of_bytes_and_floats_is_rgb_to_lab():
    from styletransfer.quality import lab_points

    rng = np.random.default_rng(0)
    bytes_ = rng.integers(0, 256, size=(500, 3)).astype(np.uint8)
    expected = rgb_to_lab(torch.from_numpy(bytes_.T / 255.0)[None, :, :, None])[0, :, :, 0]
    assert np.allclose(lab_points(bytes_), expected.numpy(), atol=2e-4)
    floats = bytes_ / 255.0
    assert np.allclose(lab_points(floats), expected.numpy(), atol=2e-4)


def test_a_scorer_reads_each_style_once_and_scores_as_score_run(astronaut, coffee, chelsea):
    from styletransfer.quality import RunScorer, score_run

    content, output, style = _pictures(astronaut, coffee, chelsea, size=128)
    scorer = RunScorer([style, chelsea], (0.25, 0.75))
    first = scorer.score(output, content)
    assert set(scorer._colours) == {0, 1}
    cached = scorer._colours[0]
    again = scorer.score(content, content)
    assert scorer._colours[0] is cached  # not read again
    assert first == pytest.approx(score_run(output, content, [style, chelsea], (0.25, 0.75)))
    assert again["ssim"] == pytest.approx(1.0) and again["affine_residual"] < 1e-6
    # A picture too small for SSIM still gets the other metrics.
    tiny = output.resize((5, 5))
    small = scorer.score(tiny, content.resize((5, 5)))
    assert small["ssim"] is None and small["colour_distance"] is not None


def test_matched_share_is_one_for_the_truth_and_zero_for_swapped_segments():
    from styletransfer.quality import matched_share

    content = np.repeat(np.array([[0], [0], [1], [1]]), 4, axis=1)  # top 0, bottom 1
    style = np.repeat(np.array([[0], [1], [1], [1]]), 4, axis=1)
    assert matched_share(content, style, content, style) == 1.0
    assert matched_share(content, 1 - style, content, style) == 0.0
    # one global segment: each content pixel draws on the whole style (1/4 of it is region 0)
    whole = np.zeros_like(content)
    assert matched_share(whole, np.zeros_like(style), content, style) == (0.5 * 0.25 + 0.5 * 0.75)
    # content pixels of no segment draw on the whole style too
    assert matched_share(-np.ones_like(content), style, content, style) == 0.5


def test_histograms_of_every_segment_at_once_equal_each_segment_alone():
    from styletransfer.quality import histogram_quantiles, lab_points, projection_histograms

    rng = np.random.default_rng(1)
    points = lab_points(rng.integers(0, 256, size=(3000, 3)).astype(np.uint8))
    weights = rng.integers(1, 9, size=3000).astype(float)
    slots = rng.integers(-1, 3, size=3000)  # three segments and points of none
    together = projection_histograms(points, weights, slots, 3)
    assert together.shape[0] == 3
    quantiles = histogram_quantiles(together)
    for k in range(3):
        alone = projection_histograms(points[:, slots == k], weights[slots == k])
        assert np.array_equal(together[k], alone)
        assert np.allclose(quantiles[k], histogram_quantiles(alone))


@pytest.mark.parametrize("size,stride", [(5, 1), (5, 2), (7, 4), (7, 6), (3, 5), (1, 2)])
@pytest.mark.parametrize("clipped", [True, False])
def test_window_means_are_the_means_of_their_windows(size, stride, clipped):
    """Grouped window sums (for every stride against the window) against a plain loop."""
    from styletransfer import quality

    rng = np.random.default_rng(size * 10 + stride)
    height, width = 23, 31
    planes = rng.random((2, height, width)).astype(np.float32)

    def fill(block, top, bottom):
        block[:] = planes[:, top:bottom]

    r = size // 2
    first = 0 if clipped else r
    ys = np.arange(first, height - (0 if clipped else r), stride)
    xs = np.arange(first, width - (0 if clipped else r), stride)
    expected = np.empty((2, len(ys), len(xs)))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            window = planes[:, max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]
            expected[:, i, j] = window.astype(np.float64).mean((1, 2))
    small = 2 * (width + 2 * r) * 4 * (size + stride)  # blocks of a few rows: several blocks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quality, "BLOCK_BYTES", small)
        got = quality.window_means(fill, 2, height, width, size, stride, clipped, np.float32)
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_running_sums_by_blocks_are_cumsum_exactly_for_counts():
    from styletransfer.quality import _running_sum

    rng = np.random.default_rng(2)
    for n in (32 * 4096, 32, 100):  # a whole number of blocks, one block, a ragged vector
        counts = rng.integers(0, 1000, size=n) * (rng.random(n) < 0.3)
        assert np.array_equal(_running_sum(counts.astype(np.float64)), np.cumsum(counts))


def test_a_scorer_with_masks_reads_each_style_mask_once_and_scores_as_labels_do(
    astronaut, coffee, chelsea, tmp_path
):
    from styletransfer.quality import RunScorer

    content, output, style = _pictures(astronaut, coffee, chelsea, size=96)
    mask = np.zeros((content.height, content.width, 3), dtype=np.uint8)
    mask[content.height // 2 :] = 255
    mask[:8, :8] = (0, 0, 255)  # blue: only in the content's mask, scored with no segment
    style_mask = np.zeros((style.height, style.width, 3), dtype=np.uint8)
    style_mask[style.height // 3 :] = 255
    style_mask[-8:, -8:] = (255, 0, 0)  # red: only in the style's
    paths = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(mask).save(paths[0])
    Image.fromarray(style_mask).save(paths[1])
    lc, ls = labels_from_label_images(
        Image.fromarray(mask), Image.fromarray(style_mask), output.size, style.size
    )
    expected = colour_distance(output, style, lc, ls)
    scorer = RunScorer([style], (1.0,))
    got = scorer.score(output, content, (str(paths[0]), [str(paths[1])]))
    assert got["colour_distance"] == pytest.approx(expected, rel=1e-9)
    assert len(scorer._masked) == 1
    entry = next(iter(scorer._masked.values()))
    again = scorer.score(content, content, (str(paths[0]), [str(paths[1])]))
    assert next(iter(scorer._masked.values())) is entry  # the style's colours not read again
    assert again["colour_distance"] != got["colour_distance"]
    # Images as masks score the same; a style mask per style is required.
    images = (Image.fromarray(mask), [Image.fromarray(style_mask)])
    assert scorer.score(output, content, images)["colour_distance"] == pytest.approx(expected)
    assert scorer.score(output, content, (images[0], []))["colour_distance"] is None


def test_a_picture_of_very_many_colours_is_merged_to_a_bounded_count():
    from styletransfer.quality import DISTINCT_COLOURS, colour_segments

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:400, 0:400]
    noise = rng.integers(-3, 4, (3, 400, 400))
    rgb = np.stack([x * 255 // 399 + noise[0], y * 255 // 399 + noise[1], 128 + 2 * noise[2]], -1)
    picture = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    every = colour_segments(picture, max_pixels=None)
    merged = colour_segments(picture)
    # 135 091 colours, 86 331 cells of 7 bits a channel: more than the bound, merged to 6 bits.
    assert len(every.weights) > 4 * DISTINCT_COLOURS
    assert len(merged.weights) <= DISTINCT_COLOURS
    assert merged.weights.sum() == every.weights.sum() == 400 * 400
    style = Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    bounded = colour_distance(picture, style)
    assert bounded == pytest.approx(colour_distance(picture, style, max_pixels=None), rel=0.01)
