"""photo-fast on two of the DPST paper's own pairs, read in place from ../shared (not copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from styletransfer import SegmentationMasks, TransferConfig, transfer
from styletransfer.quality import labels_from_label_images, score

pytestmark = pytest.mark.dataset

ROOT = Path(__file__).resolve().parents[2]
FOLDER = Path(
    os.environ.get("STYLEBENCH_DPST_DIR", ROOT.parent / "shared" / "datasets" / "dpst-paper")
)


def _rgb(name: str) -> Image.Image:
    path = FOLDER / name
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: these tests read the DPST paper's pairs from "
            "../shared/datasets/dpst-paper (or $STYLEBENCH_DPST_DIR)"
        )
    with Image.open(path) as img:
        return img.convert("RGB")


@pytest.mark.parametrize("n", [2, 13])
def test_default_holds_the_paper_criteria(n, cache):
    content, style = _rgb(f"in{n}.png"), _rgb(f"tar{n}.png")
    cmask, smask, paper = _rgb(f"seg_in{n}.png"), _rgb(f"seg_tar{n}.png"), _rgb(f"luan{n}.png")
    cfg = TransferConfig(method="photo-fast", size=700, device="cpu", mixed_precision=False)
    out = transfer(content, style, cfg, masks=SegmentationMasks(cmask, [smask]), cache=cache)
    assert out.status == "ok" and out.image.size == content.size
    lc, ls = labels_from_label_images(cmask, smask, content.size, style.size)
    ours = score(out.image, content, style, lc, ls)
    theirs = score(paper.resize(content.size), content, style, lc, ls)
    assert ours.colour_distance <= 1.25 * theirs.colour_distance
    assert ours.ssim >= theirs.ssim - 0.05
    assert ours.affine_residual <= theirs.affine_residual
