"""The matting Laplacian of Levin et al. (2008), 3x3 windows, built in float64 as a sparse matrix."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

# Luan et al. 2017 use epsilon = 1e-7 with 3x3 windows (deep-photo-styletransfer gen_laplacian).
DEFAULT_EPS = 1e-7
_OFFSETS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
_BANDS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]


def matting_laplacian(image: np.ndarray, eps: float = DEFAULT_EPS) -> sp.csr_matrix:
    """The [HW, HW] matting Laplacian of an [H, W, 3] image with values in [0, 1].

    Built in float64 from centred window covariances, with its diagonal set to the row sums of
    the affinities so that L @ 1 = 0; symmetric positive semi-definite. Windows are the 3x3
    neighbourhoods of interior pixels; no Python loop runs per pixel.
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] image, got shape {img.shape}")
    h, w, _ = img.shape
    if h < 3 or w < 3:
        raise ValueError(f"the image must be at least 3x3 pixels, got {h}x{w}")
    hk, wk = h - 2, w - 2
    # Window pixels: [9, 3, hk, wk], one slice per position in the 3x3 window.
    chw = img.transpose(2, 0, 1)
    win = np.stack([chw[:, 1 + dy : 1 + dy + hk, 1 + dx : 1 + dx + wk] for dy, dx in _OFFSETS])
    centred = win - win.mean(axis=0, keepdims=True)
    cov = np.einsum("pakl,pbkl->klab", centred, centred) / 9.0  # [hk, wk, 3, 3]
    cov += (eps / 9.0) * np.eye(3)
    inv = np.linalg.inv(cov)  # [hk, wk, 3, 3]
    proj = np.einsum("klab,pbkl->pakl", inv, centred)  # inv @ (I_p - mu): [9, 3, hk, wk]
    affinity = (1.0 + np.einsum("pakl,qakl->pqkl", centred, proj)) / 9.0  # [9, 9, hk, wk]
    # Symmetric in exact arithmetic; made so in floating point (near-singular windows).
    affinity = 0.5 * (affinity + affinity.transpose(1, 0, 2, 3))
    # Accumulate window affinities into 25 bands: band (dy, dx) at pixel i holds A[i, i + (dy, dx)].
    bands = np.zeros((len(_BANDS), h, w))
    band_index = {d: n for n, d in enumerate(_BANDS)}
    for p, (py, px) in enumerate(_OFFSETS):
        for q, (qy, qx) in enumerate(_OFFSETS):
            bands[band_index[(qy - py, qx - px)], 1 + py : 1 + py + hk, 1 + px : 1 + px + wk] += (
                affinity[p, q]
            )
    values = -bands
    centre = band_index[(0, 0)]
    values[centre] = bands.sum(axis=0) - bands[centre]  # L = D - A, D = row sums of A
    ys, xs = np.mgrid[0:h, 0:w]
    cols = np.empty((len(_BANDS), h, w), dtype=np.int64)
    valid = np.empty((len(_BANDS), h, w), dtype=bool)
    for n, (dy, dx) in enumerate(_BANDS):
        cols[n] = (ys + dy) * w + (xs + dx)
        valid[n] = (ys + dy >= 0) & (ys + dy < h) & (xs + dx >= 0) & (xs + dx < w)
    # Row-major per pixel, bands in increasing column order: [HW, 25].
    values = values.reshape(len(_BANDS), -1).T
    cols = cols.reshape(len(_BANDS), -1).T
    valid = valid.reshape(len(_BANDS), -1).T
    indptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    return sp.csr_matrix((values[valid], cols[valid], indptr), shape=(h * w, h * w))


def to_torch(laplacian: sp.csr_matrix, device: torch.device | str | None = None) -> torch.Tensor:
    """A scipy CSR matrix as a float64 torch sparse CSR tensor on ``device``."""
    csr = laplacian.tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        tensor = torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float64)),
            size=csr.shape,
            check_invariants=False,
        )
    return tensor.to(device) if device is not None else tensor
