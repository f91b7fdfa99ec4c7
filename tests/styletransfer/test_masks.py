"""Masks against their photos: the shape tolerance, and methods that take no masks refuse them."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styletransfer import METHODS, TransferConfig, register_method, transfer
from styletransfer.engine import MethodOutput
from styletransfer.images import colour_names, label_codes
from styletransfer.masks import check_masks, misfit


@pytest.mark.parametrize(
    ("mask", "image"),
    [
        ((700, 394), (700, 394)),
        ((700, 393), (700, 394)),  # the DPST paper's pair 7: a pixel of rounding
        ((350, 197), (700, 394)),  # a half-size copy
        ((350, 196), (700, 394)),  # ... rounded down
        ((40, 40), (512, 512)),
        ((394, 700), (393, 700)),  # portrait
    ],
)
def test_masks_of_the_photos_shape_fit(mask, image):
    assert misfit(mask, image) is None


@pytest.mark.parametrize(
    ("mask", "image"),
    [
        ((700, 391), (700, 394)),  # three pixels short: cut or padded
        ((700, 400), (700, 394)),
        ((40, 40), (600, 400)),  # stretched
        ((394, 700), (700, 394)),  # on its side
        ((350, 190), (700, 394)),
    ],
)
def test_masks_of_another_shape_do_not(mask, image):
    why = misfit(mask, image)
    assert why is not None and f"is {mask[0]}x{mask[1]}" in why and f"{image[0]}x{image[1]}" in why


def test_check_masks_names_the_file_that_does_not_fit(tmp_path):
    content, style = tmp_path / "in.png", tmp_path / "tar.png"
    Image.new("RGB", (60, 40)).save(content)
    Image.new("RGB", (40, 40)).save(style)
    good, bad = Image.new("RGB", (30, 20)), tmp_path / "seg_tar.png"
    Image.new("RGB", (40, 30)).save(bad)
    check_masks(good, [Image.new("RGB", (40, 40))], content, [style])
    with pytest.raises(ValueError, match=f"mask {bad} does not fit {style}: it is 40x30"):
        check_masks(good, [bad], content, [style])
    with pytest.raises(ValueError, match=f"the content mask does not fit {content}: it is 20x30"):
        check_masks(Image.new("RGB", (20, 30)), [bad], content, [style])
    with pytest.raises(ValueError, match="1 style mask.* for 2 style image"):
        check_masks(good, [bad], content, [style, style])


def test_colour_names_say_the_paper_colours_by_name():
    mask = Image.new("RGB", (10, 10), (0, 0, 250))  # near blue: snapped
    mask.paste((10, 200, 10), (0, 0, 10, 5))  # near green
    assert colour_names(label_codes(mask)) == "blue, green"
    assert colour_names(np.array([0x123456, -1])) == "#123456"
    assert colour_names(np.array([-1])) == "no label colour"


def test_a_method_that_takes_no_masks_refuses_them():
    def identity(inp):
        return [MethodOutput(image=c[None]) for c in inp.contents]

    photo = Image.new("RGB", (32, 32), "grey")
    mask = Image.new("RGB", (32, 32), "white")
    register_method("maskless-test", identity, uses_layers=False, takes_masks=False)
    try:
        config = TransferConfig(method="maskless-test", size=32)
        assert transfer(photo, [photo], config).mask_source == "none"
        with pytest.raises(ValueError, match="method maskless-test takes no segmentation masks"):
            transfer(photo, [photo], config, masks=(mask, [mask]))
    finally:
        METHODS.pop("maskless-test")


def test_a_mask_file_read_for_a_method_is_not_read_again_for_its_scoring(tmp_path, monkeypatch):
    import os

    from styletransfer import images
    from styletransfer.images import label_masks, mask_codes

    content = np.zeros((40, 60, 3), dtype=np.uint8)
    content[20:] = (0, 0, 255)
    style = np.zeros((30, 30, 3), dtype=np.uint8)
    style[:10] = (0, 0, 250)  # near the paper's blue
    paths = tmp_path / "content.png", tmp_path / "style.png"
    Image.fromarray(content).save(paths[0])
    Image.fromarray(style).save(paths[1])
    opened = [Image.open(p).convert("RGB") for p in paths]
    pairs = label_masks(*opened, (30, 20), (30, 30), files=(str(paths[0]), str(paths[1])))
    assert len(pairs) == 2  # black and blue

    def unread(image):
        raise AssertionError(f"{image} read again")

    monkeypatch.setattr(images, "open_rgb", unread)
    codes = mask_codes(str(paths[0]), (30, 20))
    assert np.array_equal(codes, label_codes(opened[0], (30, 20)))
    assert not codes.flags.writeable  # shared: nobody may change it
    assert mask_codes(str(paths[1]), (30, 30)) is mask_codes(str(paths[1]), (30, 30))
    monkeypatch.undo()
    # A file written since is read again.
    Image.fromarray(content[::-1].copy()).save(paths[0])
    stat = os.stat(paths[0])
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = mask_codes(str(paths[0]), (30, 20))
    assert np.array_equal(again, codes[::-1])
