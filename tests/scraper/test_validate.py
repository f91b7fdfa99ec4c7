"""Sniffing, decoding and normalising untrusted bytes (adversarial payloads made in code)."""

from __future__ import annotations

import io
import random
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from scraper.errors import InvalidImage
from scraper.validate import decode, sniff
from tests.scraper.helpers import encode, jpeg, photo


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` but carries a tiny payload: a decompression bomb."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def reason(data: bytes) -> str:
    with pytest.raises(InvalidImage) as info:
        decode(data)
    return info.value.reason


def test_sniff_trusts_bytes_not_names():
    assert sniff(jpeg("coffee")) == "JPEG"
    assert sniff(encode(photo("coffee"), "PNG")) == "PNG"
    assert sniff(encode(photo("coffee"), "WEBP")) == "WEBP"
    assert sniff(encode(photo("coffee"), "GIF")) == "GIF"


def test_rejections_carry_reasons():
    assert reason(b"") == "empty"
    assert reason(b"<!DOCTYPE html><html><body>Not found</body></html>") == "not-an-image"
    assert reason(b"  <html>\n") == "not-an-image"
    assert reason(b"%PDF-1.7 ...") == "unsupported-format"
    full = jpeg("coffee")
    assert reason(full[: len(full) // 2]) == "corrupt"  # truncated JPEG
    assert reason(png_header_only(100_000, 100_000)) == "decompression-bomb"
    frames = [Image.new("RGB", (300, 300), c) for c in ("red", "blue", "green")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    assert reason(buffer.getvalue()) == "animated"


def test_plain_jpeg_is_kept_byte_for_byte():
    data = jpeg("coffee")
    out = decode(data)
    assert out.data == data and out.ext == "jpg" and out.converted is None
    assert (out.width, out.height) == (320, 213)


def test_cmyk_jpeg_becomes_rgb():
    source = photo("astronaut").convert("RGB")
    out = decode(encode(source.convert("CMYK"), "JPEG", quality=95))
    assert out.image.mode == "RGB" and out.format == "JPEG" and "CMYK->RGB" in out.converted
    # colours survive the round trip (a naive inversion would not)
    diff = np.abs(np.asarray(out.image, float) - np.asarray(source, float)).mean()
    assert diff < 12


def test_16bit_png_scaled_to_8bit():
    ramp = (np.arange(256 * 300, dtype=np.uint32).reshape(300, 256) % 256 * 257).astype(np.uint16)
    image = Image.fromarray(ramp)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = decode(data)
    assert out.image.mode == "L" and out.format == "PNG"
    np.testing.assert_array_equal(np.asarray(out.image), (ramp // 257).astype(np.uint8))


def test_alpha_and_palette_flattened_on_white():
    rgba = Image.new("RGBA", (300, 300), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 150, 300))
    out = decode(encode(rgba, "PNG"))
    pixels = np.asarray(out.image)
    assert out.image.mode == "RGB"
    assert tuple(pixels[10, 10]) == (0, 0, 255) and tuple(pixels[10, 290]) == (255, 255, 255)
    palette = photo("coffee").convert("P", palette=Image.Palette.ADAPTIVE)
    out = decode(encode(palette, "PNG"))
    assert out.image.mode == "RGB" and out.ext == "png"


def test_exif_rotation_applied():
    upright = photo("astronaut").convert("RGB")  # 320 x 320: use a non-square crop
    upright = upright.crop((0, 0, 320, 200))
    stored = upright.rotate(90, expand=True)  # what a camera writes: pixels sideways + a tag
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    out = decode(data)
    assert (out.width, out.height) == (320, 200)
    assert "EXIF orientation 6" in out.converted
    diff = np.abs(np.asarray(out.image, float) - np.asarray(upright, float)).mean()
    assert diff < 8
    assert Image.open(io.BytesIO(out.data)).getexif().get(0x0112) in (None, 1)


def test_bmp_stored_as_png():
    out = decode(encode(photo("coffee"), "BMP"))
    assert out.ext == "png" and out.data.startswith(b"\x89PNG")


def test_mutated_images_fail_only_with_invalid_image():
    """Random byte flips and cuts of every accepted format: decoded, or InvalidImage, nothing else."""
    rng = random.Random(0)
    small = photo("coffee", 120)
    seeds = [encode(small.convert("RGB"), fmt) for fmt in ("JPEG", "PNG", "GIF", "WEBP", "TIFF")]
    outcomes = {"decoded": 0, "invalid": 0}
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(1, len(data))]
        try:
            decode(bytes(data))
            outcomes["decoded"] += 1
        except InvalidImage:
            outcomes["invalid"] += 1
    assert outcomes["invalid"] > 0 and outcomes["decoded"] > 0
