"""The matting Laplacian: symmetric, L 1 = 0, positive semi-definite, gradient 2 L x."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data
from skimage.transform import resize

from styletransfer.laplacian import matting_laplacian, to_torch
from styletransfer.losses import photoreal_loss


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    flat = np.full((9, 11, 3), 0.4)
    grey = np.repeat(rng.random((10, 8, 1)), 3, axis=2)  # rank-deficient colours
    return {
        "flat": flat,
        "grey": grey,
        "noise": rng.random((12, 10, 3)),
        "astronaut": resize(data.astronaut(), (14, 14), anti_aliasing=True),
        "binary": (rng.random((8, 8, 3)) > 0.5).astype(float),
    }


IMAGES = _images()


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_laplacian_is_symmetric_psd_and_annihilates_constants(name):
    image = IMAGES[name]
    lap = matting_laplacian(image)
    h, w, _ = image.shape
    assert lap.shape == (h * w, h * w)
    dense = lap.toarray()
    assert np.abs(dense - dense.T).max() <= 1e-12 * max(1.0, np.abs(dense).max())
    assert np.abs(lap @ np.full(h * w, 3.7)).max() < 1e-9
    eigenvalues = np.linalg.eigvalsh(dense)
    assert eigenvalues[-1] > 0
    assert eigenvalues[0] >= -1e-6 * eigenvalues[-1]


def test_laplacian_is_the_sum_of_window_terms():
    """Against Levin et al.'s definition computed window by window with a Python loop."""
    image = IMAGES["astronaut"][:6, :5]
    eps = 1e-5
    h, w, _ = image.shape
    expected = np.zeros((h * w, h * w))
    for cy in range(1, h - 1):
        for cx in range(1, w - 1):
            idx = [(cy + dy) * w + cx + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = image.reshape(-1, 3)[idx]
            mu = win.mean(0)
            cov = (win - mu).T @ (win - mu) / 9
            inv = np.linalg.inv(cov + eps / 9 * np.eye(3))
            affinity = (1 + (win - mu) @ inv @ (win - mu).T) / 9
            expected[np.ix_(idx, idx)] += np.eye(9) - affinity
    assert np.allclose(matting_laplacian(image, eps=eps).toarray(), expected, atol=1e-9)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        matting_laplacian(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="at least 3x3"):
        matting_laplacian(np.zeros((2, 5, 3)))


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    contrast=st.sampled_from([1.0, 1e-2, 1e-4]),
)
def test_photoreal_loss_is_never_negative(seed, h, w, contrast):
    rng = np.random.default_rng(seed)
    guide = 0.5 + contrast * (rng.random((h, w, 3)) - 0.5)
    lap = to_torch(matting_laplacian(guide))
    image = torch.from_numpy(rng.random((1, 3, h, w))).float()
    assert float(photoreal_loss(image, lap)) >= 0.0


def test_photoreal_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    lap = to_torch(matting_laplacian(rng.random((5, 6, 3))))
    x = torch.from_numpy(rng.random((1, 3, 5, 6))).double().requires_grad_(True)

    def f(x):
        return photoreal_loss(x, lap, reduction="sum").double()

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


def test_photoreal_gradient_is_two_l_x():
    rng = np.random.default_rng(2)
    sparse = matting_laplacian(rng.random((4, 5, 3)))
    x = torch.from_numpy(rng.random((1, 3, 4, 5))).float().requires_grad_(True)
    photoreal_loss(x, to_torch(sparse), reduction="sum").backward()
    flat = x.detach().double().reshape(3, -1).numpy().T  # [HW, 3]
    expected = 2 * (sparse @ flat)  # [HW, 3]
    got = x.grad.reshape(3, -1).T.double().numpy()
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-6)
