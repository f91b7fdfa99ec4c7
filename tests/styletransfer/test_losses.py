"""Loss functions against their definitions."""

from __future__ import annotations

import pytest
import torch

from styletransfer.losses import (
    content_loss,
    gram_matrix,
    masked_gram_matrix,
    masked_style_loss,
    style_loss,
    tv_loss,
)


def test_gram_matrix_matches_definition_and_is_float32():
    feats = torch.randn(2, 4, 3, 5, dtype=torch.bfloat16)
    gram = gram_matrix(feats)
    assert gram.shape == (2, 4, 4) and gram.dtype == torch.float32
    flat = feats.float().reshape(2, 4, 15)
    expected = flat @ flat.transpose(1, 2) / (4 * 3 * 5)
    assert torch.allclose(gram, expected, atol=1e-6)
    assert torch.allclose(gram, gram.transpose(1, 2))


def test_masked_gram_with_full_mask_is_the_gram_and_partial_masks_select_pixels():
    feats = torch.randn(1, 3, 4, 4)
    assert torch.allclose(masked_gram_matrix(feats, torch.ones(1, 1, 4, 4)), gram_matrix(feats))
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    top = feats[..., :2, :]
    assert torch.allclose(masked_gram_matrix(feats, mask), gram_matrix(top), atol=1e-6)
    with pytest.raises(ValueError, match="resize"):
        masked_gram_matrix(feats, torch.ones(1, 1, 2, 2))


def test_content_and_style_losses():
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert float(content_loss(a, a)) == 0.0
    assert torch.allclose(content_loss(a, b), ((a - b) ** 2).mean())
    per_sample = content_loss(a, b, reduction="none")
    assert per_sample.shape == (2,)
    assert torch.allclose(per_sample.sum(), content_loss(a, b, reduction="sum"))
    ga, gb = gram_matrix(a), gram_matrix(b)
    assert float(style_loss(ga, ga)) == 0.0
    assert torch.allclose(style_loss(ga, gb), ((ga - gb) ** 2).mean())
    # a single target broadcasts over the batch
    assert style_loss(ga, gb[:1], reduction="none").shape == (2,)
    with pytest.raises(ValueError, match="reduction"):
        content_loss(a, b, reduction="max")


def test_masked_style_loss_weights_segments():
    ga, gb = gram_matrix(torch.randn(1, 3, 4, 4)), gram_matrix(torch.randn(1, 3, 4, 4))
    got = masked_style_loss([ga, ga], [gb, ga], [2.0, 5.0])
    assert torch.allclose(got, 2.0 * style_loss(ga, gb))
    with pytest.raises(ValueError, match="one entry per segment"):
        masked_style_loss([ga], [gb, ga], [1.0])


def test_tv_loss_is_zero_for_constant_images_and_positive_otherwise():
    assert float(tv_loss(torch.full((1, 3, 5, 5), 0.3))) == 0.0
    ramp = torch.linspace(0, 1, 5).view(1, 1, 1, 5).expand(1, 3, 5, 5)
    assert torch.allclose(tv_loss(ramp), torch.tensor(0.25**2))
