"""Matching segments of two photos without masks: dense VGG19 correspondence, superpixels, votes.

The coarse levels of He, Liao, Yuan and Sander (2019), "Progressive Color Transfer with Dense
Semantic Correspondences": deep features of both photos matched densely. Here, on copies whose
longer side is ``match_size``:

1. relu4_1 and (upsampled) relu5_1 of the VGG19, each standardised per image and channel (so
   a day and a night photo of the same kind of scene look alike), concatenated and normalised
   per position; the similarity of two positions is their cosine less ``height_prior`` times
   the squared difference of their heights in the picture (0 at the top, 1 at the bottom).
2. Both photos are cut into about ``SUPERPIXELS`` superpixels (SLIC, Achanta et al. 2012), so
   that segments follow the photos' own edges.
3. The style's superpixels are clustered into ``segments`` by their mean features (k-means++);
   each content superpixel takes the segment its positions vote for, every position voting
   with the softmax of its similarities (temperature ``TEMPERATURE``) over the style's
   positions.
4. The labels of each photo are smoothed by a few mean-field steps over neighbouring
   superpixels of similar colour (``SMOOTHING``, ``COLOUR_SIGMA`` in CIELAB units), so that a
   flat region (a white ground, a clear sky) is not split.
5. The style's superpixels vote back the same way for the content's segments; a style
   superpixel whose vote disagrees with its cluster gives its colours to no segment (where
   most of its segment agrees, ``CONSISTENT_SHARE``), which keeps a segment that straddles
   two regions (the foot of a skyline) from carrying one region's colours into the other.

A content segment that covers less than ``MIN_SHARE`` of either photo is left unlabelled (-1):
the colour transfer gives it the whole style. Measured on the DPST paper's 12 pairs with their
masks as truth, about 80% of the content's pixels draw their colours from the matching region
(bench/bench_photo.py; one global transfer: about 50%). Pure functions over tensors and arrays;
the feature network is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from scipy.cluster.vq import kmeans2
from skimage.segmentation import slic
from torch import Tensor

from styletransfer.colour import rgb_to_lab
from styletransfer.images import downsize
from styletransfer.options import AutoMaskOptions

# The feature network's layers the matching reads (VGG19 names).
LAYERS = ("relu4_1", "relu5_1")
WORK_SIZE = 320  # longer side of the copies cut into superpixels; labels come at this size
SUPERPIXELS = 200  # SLIC segments per photo at the working size
COMPACTNESS = 10.0  # SLIC's balance of colour against position (its documented default)
TEMPERATURE = 0.05  # of the softmax over cosine similarities in each vote
SMOOTHING = 1.0  # weight of the neighbours' labels in each mean-field step
SMOOTHING_STEPS = 5
COLOUR_SIGMA = 8.0  # CIELAB distance at which neighbours' pull falls to exp(-1/2)
MIN_SHARE = 0.02  # of a photo's pixels, for a segment to be kept
RESTARTS = 4  # k-means++ restarts; the one of least inertia is kept
# A style segment keeps only the superpixels whose own votes (style to content) agree with it,
# when at least this share of it agrees; the others give their colours to no segment.
CONSISTENT_SHARE = 0.3


@dataclass(frozen=True)
class MatchOptions:
    """How two photos are matched: ``segments`` of the style (1: one global segment),
    ``match_size`` (longest side of the copies the network sees) and ``height_prior``."""

    segments: int = AutoMaskOptions.segments
    match_size: int = AutoMaskOptions.match_size
    height_prior: float = AutoMaskOptions.height_prior


@dataclass(frozen=True)
class PhotoFeatures:
    """One photo prepared for matching: position features, superpixels and their colours."""

    features: Tensor  # [N, D] unit vectors, N = grid[0] * grid[1] positions, row-major
    grid: tuple[int, int]  # the feature grid (rows, columns)
    superpixels: np.ndarray  # [H, W] superpixel index of each pixel at the working size
    cells: sp.csr_matrix  # [S, N] share of each superpixel's pixels in each feature position
    lab: np.ndarray  # [S, 3] mean CIELAB colour of each superpixel

    @property
    def heights(self) -> Tensor:
        rows, cols = self.grid
        y = (torch.arange(rows, dtype=torch.float32) + 0.5) / rows
        return y.repeat_interleave(cols)  # [N]


def _standardised(x: Tensor) -> Tensor:
    mean = x.mean((2, 3), keepdim=True)
    std = x.std((2, 3), keepdim=True, correction=0)
    return (x - mean) / (std + 1e-5)


def deep_features(encoder: torch.nn.Module, image: Tensor, match_size: int) -> tuple[Tensor, tuple]:
    """Standardised relu4_1 + relu5_1 of ``image`` ([1, 3, H, W]) as unit vectors [N, D]."""
    small = downsize(image, match_size)
    param = next(encoder.parameters())
    with torch.inference_mode():
        feats = encoder(small.to(device=param.device, dtype=param.dtype))
    f4 = _standardised(feats["relu4_1"].float())
    f5 = F.interpolate(
        _standardised(feats["relu5_1"].float()),
        size=f4.shape[-2:],
        mode="bilinear",
        align_corners=False,
    )
    x = torch.cat([f4, f5], 1)[0]  # [D, rows, cols]
    grid = (int(x.shape[1]), int(x.shape[2]))
    x = x.reshape(x.shape[0], -1).T  # [N, D]
    return F.normalize(x, dim=1).cpu(), grid


def _cells(labels: np.ndarray, grid: tuple[int, int]) -> sp.csr_matrix:
    """[S, N]: the share of each superpixel's pixels that fall in each feature position."""
    h, w = labels.shape
    rows = np.minimum((np.arange(h) * grid[0]) // h, grid[0] - 1)
    cols = np.minimum((np.arange(w) * grid[1]) // w, grid[1] - 1)
    cell = (rows[:, None] * grid[1] + cols[None, :]).reshape(-1)
    s = labels.reshape(-1)
    count = int(s.max()) + 1
    m = sp.coo_matrix((np.ones(s.shape[0]), (s, cell)), shape=(count, grid[0] * grid[1])).tocsr()
    return sp.csr_matrix(m.multiply(1.0 / np.maximum(m.sum(1), 1)))


def prepare(
    encoder: torch.nn.Module, image: Tensor, match_size: int, work_size: int = WORK_SIZE
) -> PhotoFeatures:
    """One photo ([1, 3, H, W] in [0, 1]) ready to match: features of a copy at ``match_size``,
    superpixels and their colours on a copy at ``work_size`` (labels come at that size)."""
    image = image.float()
    features, grid = deep_features(encoder, image, match_size)
    work = downsize(image, work_size)
    rgb = work[0].permute(1, 2, 0).detach().cpu().double().clamp(0, 1).numpy()
    labels = slic(
        rgb, n_segments=SUPERPIXELS, compactness=COMPACTNESS, start_label=0, convert2lab=True
    ).astype(np.int64)
    _, labels = np.unique(labels, return_inverse=True)  # indices 0..S-1 without gaps
    labels = labels.reshape(rgb.shape[:2])
    lab = rgb_to_lab(work[:1].detach().cpu().double())[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    count = int(labels.max()) + 1
    sizes = np.bincount(labels.reshape(-1), minlength=count)
    means = (
        np.stack(
            [np.bincount(labels.reshape(-1), weights=lab[:, c], minlength=count) for c in range(3)],
            1,
        )
        / np.maximum(sizes, 1)[:, None]
    )
    return PhotoFeatures(features, grid, labels, _cells(labels, grid), means)


def similarity(content: PhotoFeatures, style: PhotoFeatures, height_prior: float) -> Tensor:
    """[Nc, Ns] cosine similarity of positions less the height prior."""
    sim = content.features @ style.features.T
    if height_prior:
        dy = content.heights[:, None] - style.heights[None, :]
        sim = sim - height_prior * dy * dy
    return sim


def kmeans(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means++ labels of ``points`` [n, d]: the best of ``RESTARTS`` runs by inertia."""
    if k <= 1 or points.shape[0] <= k:
        return np.arange(points.shape[0]) % max(k, 1)
    best, best_inertia = None, np.inf
    for r in range(RESTARTS):
        centroids, labels = kmeans2(points, k, iter=30, minit="++", seed=seed + r)
        inertia = float(((points - centroids[labels]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = labels, inertia
    return np.asarray(best)


def _neighbours(photo: PhotoFeatures) -> sp.csr_matrix:
    """[S, S] weights of adjacent superpixels: exp(-dE^2 / 2 sigma^2) of their mean colours."""
    s = photo.superpixels
    a = np.concatenate([s[:, :-1].reshape(-1), s[:-1, :].reshape(-1)])
    b = np.concatenate([s[:, 1:].reshape(-1), s[1:, :].reshape(-1)])
    keep = a != b
    pairs = np.unique(np.stack([a[keep], b[keep]], 1), axis=0)
    i = np.concatenate([pairs[:, 0], pairs[:, 1]])
    j = np.concatenate([pairs[:, 1], pairs[:, 0]])
    dist = ((photo.lab[i] - photo.lab[j]) ** 2).sum(1)
    n = photo.lab.shape[0]
    return sp.csr_matrix((np.exp(-dist / (2 * COLOUR_SIGMA**2)), (i, j)), shape=(n, n))


def smooth(unary: np.ndarray, photo: PhotoFeatures) -> np.ndarray:
    """Mean-field steps over neighbouring superpixels; ``unary`` [S, k] probabilities."""
    weights = _neighbours(photo)
    log_unary = np.log(np.clip(unary, 1e-3, None))
    q = unary
    for _ in range(SMOOTHING_STEPS):
        z = log_unary + SMOOTHING * (weights @ q)
        z -= z.max(1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(1, keepdims=True)
    return q


def _votes(sim: Tensor, labels_of_positions: np.ndarray, k: int) -> np.ndarray:
    """[N, k]: each row position's softmax-weighted vote for the segments of the columns."""
    onehot = torch.from_numpy(np.eye(k)[labels_of_positions]).float()
    return (torch.softmax(sim / TEMPERATURE, dim=1) @ onehot).numpy()


def _position_labels(photo: PhotoFeatures, labels: np.ndarray, k: int) -> np.ndarray:
    """The segment of each feature position: the one most of its pixels belong to."""
    return np.asarray((photo.cells.T @ np.eye(k)[labels]).argmax(1)).reshape(-1)


def _unary(photo: PhotoFeatures, votes: np.ndarray) -> np.ndarray:
    per_superpixel = photo.cells @ votes
    return per_superpixel / np.maximum(per_superpixel.sum(1, keepdims=True), 1e-12)


def match(
    content: PhotoFeatures, style: PhotoFeatures, options: MatchOptions, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Corresponding label images (content, style) at the working size; -1: no segment."""
    k = options.segments
    if k <= 1:
        return np.zeros_like(content.superpixels), np.zeros_like(style.superpixels)
    means = np.asarray(style.cells @ style.features.double().numpy())
    means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    style_sp = kmeans(means, k, seed)
    style_sp = smooth(np.eye(k)[style_sp] * 0.9 + 0.1 / k, style).argmax(1)
    sim = similarity(content, style, options.height_prior)
    votes = _votes(sim, _position_labels(style, style_sp, k), k)
    content_sp = smooth(_unary(content, votes), content).argmax(1)
    content_labels = content_sp[content.superpixels]
    style_labels = style_sp[style.superpixels]
    back = match_style(content, content_labels, style, options, k, sim)
    for j in range(k):
        segment = style_labels == j
        agreed = segment & (back == j)
        if agreed.sum() >= CONSISTENT_SHARE * segment.sum():
            style_labels = np.where(segment & ~agreed, -1, style_labels)
    return _finish(content_labels, style_labels, k)


def match_style(
    content: PhotoFeatures,
    content_labels: np.ndarray,
    style: PhotoFeatures,
    options: MatchOptions,
    k: int,
    sim: Tensor | None = None,
) -> np.ndarray:
    """Labels of a ``style`` for given content labels: each style position votes.

    ``sim`` is ``similarity(content, style, options.height_prior)`` where already computed.
    """
    known = np.where(content_labels >= 0, content_labels, k).reshape(-1)  # unlabelled: k
    per_position = _pixel_cells(content).T @ np.eye(k + 1)[known]  # [N, k + 1]
    if sim is None:
        sim = similarity(content, style, options.height_prior)
    votes = _votes(sim.T, np.asarray(per_position).argmax(1), k + 1)
    labels = smooth(_unary(style, votes), style).argmax(1)[style.superpixels]
    return np.where(labels == k, -1, labels)


def _pixel_cells(photo: PhotoFeatures) -> sp.csr_matrix:
    """[H*W, N]: the feature position of each pixel at the working size."""
    h, w = photo.superpixels.shape
    rows = np.minimum((np.arange(h) * photo.grid[0]) // h, photo.grid[0] - 1)
    cols = np.minimum((np.arange(w) * photo.grid[1]) // w, photo.grid[1] - 1)
    cell = (rows[:, None] * photo.grid[1] + cols[None, :]).reshape(-1)
    n = photo.grid[0] * photo.grid[1]
    ones = np.ones(cell.shape[0])
    return sp.csr_matrix((ones, (np.arange(cell.shape[0]), cell)), shape=(h * w, n))


def _finish(content: np.ndarray, style: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    content = content.copy()
    for j in range(k):
        if (style == j).mean() < MIN_SHARE or (content == j).mean() < MIN_SHARE:
            content[content == j] = -1
    return content, style
