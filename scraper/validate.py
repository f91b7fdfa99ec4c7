"""Turn untrusted bytes into a checked, normalised image: sniff, decode, orient, convert."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from scraper.errors import InvalidImage

# Formats Pillow may use on downloaded bytes; every other decoder stays off.
FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
MAX_PIXELS = 64_000_000  # a 8000 x 8000 photo; anything larger is treated as a bomb
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
KEPT_MODES = frozenset({"RGB", "L"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)


@dataclass(frozen=True)
class Decoded:
    """A valid image: the bytes to store and the decoded, normalised picture (RGB or L)."""

    data: bytes
    ext: str
    format: str  # of the stored bytes
    width: int
    height: int
    image: Image.Image
    converted: str | None  # what normalisation changed, if anything


def sniff(data: bytes) -> str:
    """The image format from the first bytes; the Content-Type header is never trusted."""
    if not data:
        raise InvalidImage("empty", "zero bytes")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"<svg")):
        raise InvalidImage("not-an-image", "HTML/XML document")
    # never the bytes themselves: a local import may name any file on the machine
    raise InvalidImage(
        "unsupported-format", "not a JPEG, PNG, WebP, GIF, BMP or TIFF file (unknown signature)"
    )


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite a transparent image on white (style transfer has no alpha channel)."""
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit or 32-bit integer/float greyscale to 8-bit, scaling the 16-bit range down.

    Float images hold 0..1 by convention (scaled to 0..255); a float image with larger
    values is taken as 0..255. Values that are not numbers become 0.
    """
    array = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        peak = float(values.max()) if values.size else 0.0
        scaled = np.clip(values * 255.0 if peak <= 1.0 else values, 0, 255)
    else:
        scaled = np.clip(array.astype(np.float64) / 257.0, 0, 255)
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def normalise(image: Image.Image) -> tuple[Image.Image, str | None]:
    """An RGB or L image and a note of the conversion (None when nothing changed)."""
    mode = image.mode
    if mode in KEPT_MODES:
        return image, None
    if mode == "1":
        return image.convert("L"), "1->L"
    if mode.startswith("I") or mode == "F":
        return _to_8bit(image), f"{mode}->L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        return _flatten_alpha(image), f"{mode}->RGB (alpha on white)"
    return image.convert("RGB"), f"{mode}->RGB"


def decode(data: bytes, max_pixels: int = MAX_PIXELS) -> Decoded:
    """Check and decode ``data``; raise InvalidImage with a short reason when it is not usable."""
    fmt = sniff(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > max_pixels:
                raise InvalidImage(
                    "decompression-bomb", f"{width}x{height} is more than {max_pixels:,} pixels"
                )
            if getattr(image, "is_animated", False):
                raise InvalidImage("animated", f"{getattr(image, 'n_frames', '?')} frames or pages")
            image.load()
    except InvalidImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage("decompression-bomb", str(exc)) from None
    except UnidentifiedImageError:
        raise InvalidImage("corrupt", f"{fmt} signature, but Pillow cannot decode it") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage("corrupt", f"{fmt}: {exc}") from None
    if width < 1 or height < 1:
        raise InvalidImage("corrupt", f"{width}x{height}")
    notes = []
    orientation = image.getexif().get(0x0112, 1)
    if orientation not in (1, None):
        image = ImageOps.exif_transpose(image)
        notes.append(f"EXIF orientation {orientation} applied")
    image, converted = normalise(image)
    if converted:
        notes.append(converted)
    if not notes and fmt in EXTENSIONS:
        stored, out_fmt = data, fmt
    else:
        out_fmt = "JPEG" if fmt == "JPEG" else "PNG"
        buffer = io.BytesIO()
        if out_fmt == "JPEG":
            image.save(buffer, format="JPEG", quality=95)
        else:
            image.save(buffer, format="PNG", optimize=False)
        stored = buffer.getvalue()
        if fmt not in EXTENSIONS:
            notes.append(f"{fmt}->PNG")
    return Decoded(
        data=stored,
        ext=EXTENSIONS[out_fmt],
        format=out_fmt,
        width=image.width,
        height=image.height,
        image=image,
        converted="; ".join(notes) or None,
    )
