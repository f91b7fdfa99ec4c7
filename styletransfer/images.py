"""Image I/O and conversions: paths or PIL images in, [1, 3, H, W] tensors in [0, 1] out."""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ImageLike = str | Path | Image.Image


def _rgb(image: Image.Image) -> Image.Image:
    """RGB, with 16-bit and float greyscale scaled to 8 bits (``convert`` clips them to white)."""
    if image.mode.startswith("I") or image.mode == "F":
        array = np.asarray(image).astype(np.float64)
        if image.mode != "F":
            array = array / 257.0  # 0..65535 -> 0..255
        grey = np.round(np.clip(array, 0, 255)).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def open_rgb(image: ImageLike) -> Image.Image:
    """A path or PIL image as an RGB PIL image (a FileNotFoundError/ValueError names the problem).

    An image Pillow flags as a possible decompression bomb is refused before it is decoded.
    """
    if isinstance(image, Image.Image):
        return _rgb(image)
    path = Path(image)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return _rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(
            f"image {path} has more than {Image.MAX_IMAGE_PIXELS:,} pixels (a decompression "
            "bomb, or a scan far larger than any output size): downscale it first"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc


def fit_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``size`` pixels."""
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(
    image: Image.Image,
    size: int,
    resample: int = Image.Resampling.LANCZOS,
    *,
    upscale: bool = True,
) -> Image.Image:
    """``image`` with its longer side resized to ``size`` (never enlarged with ``upscale=False``)."""
    if not upscale:
        size = min(size, max(image.size))
    target = fit_size(*image.size, size)
    return image if image.size == target else image.resize(target, resample)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> [1, 3, H, W] float32 in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # [H, W, 3]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """[1, 3, H, W] or [3, H, W] in [0, 1] -> RGB PIL image (rounded, clipped)."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    array = (tensor.detach().float().clamp(0, 1) * 255.0).round().byte().permute(1, 2, 0)
    return Image.fromarray(array.cpu().numpy(), "RGB")


def image_key(image: Image.Image) -> str:
    """sha256 of an image's size and RGB pixels: identifies it for caches."""
    digest = hashlib.sha256(f"{image.size}".encode())
    digest.update(image.convert("RGB").tobytes())
    return digest.hexdigest()


# YIQ (NTSC) transforms for luminance-only transfer (Gatys et al. 2016, "Preserving colour").
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB -> YIQ."""
    return torch.einsum("ij,bjhw->bihw", _RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] YIQ -> RGB."""
    return torch.einsum("ij,bjhw->bihw", _YIQ_TO_RGB.to(image), image)


def luminance_image(image: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """The luminance of ``image`` as a grey RGB image, its mean/std matched to ``like``'s if given."""
    y = rgb_to_yiq(image)[:, :1]
    if like is not None:
        ref = rgb_to_yiq(like)[:, :1]
        y = (y - y.mean()) / y.std().clamp_min(1e-6) * ref.std() + ref.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def recolour(luminance_result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The result's luminance with the content's chrominance (I, Q), as RGB in [0, 1]."""
    y = rgb_to_yiq(luminance_result)[:, :1]
    iq = rgb_to_yiq(content)[:, 1:]
    return yiq_to_rgb(torch.cat([y, iq], dim=1)).clamp(0, 1)


# The label colours of Luan et al.'s masks (deep-photo-styletransfer's ExtractMask): blue,
# green, black, white, red, yellow, grey, light blue, purple. Label images saved with
# anti-aliased edges or lossy compression hold thousands of colours near these; each pixel
# within LABEL_SNAP of one (Euclidean RGB distance, 0-255) counts as that colour.
LABEL_COLOURS = np.array(
    [
        (0, 0, 255),
        (0, 255, 0),
        (0, 0, 0),
        (255, 255, 255),
        (255, 0, 0),
        (255, 255, 0),
        (128, 128, 128),
        (0, 255, 255),
        (255, 0, 255),
    ],
    dtype=np.int64,
)
LABEL_NAMES = ("blue", "green", "black", "white", "red", "yellow", "grey", "light blue", "purple")
LABEL_SNAP = 100.0
# Other colours label a segment only where they cover at least this share of the image.
MIN_LABEL_SHARE = 0.001


def label_codes(mask: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """A colour label image as integer codes [H, W] (``0xRRGGBB``; -1: no label).

    Pixels near a paper label colour (``LABEL_COLOURS``) take that colour; other colours count
    where they cover at least ``MIN_LABEL_SHARE`` of the image, and the rest is unlabelled.
    ``size`` (width, height) resizes by nearest neighbour first.
    """
    rgb = mask.convert("RGB")
    if size is not None and rgb.size != size:
        rgb = rgb.resize(size, Image.Resampling.NEAREST)
    # Each pixel as one 32-bit word, red in its low byte (the alpha byte dropped).
    words = np.asarray(rgb.convert("RGBA")).view("<u4").reshape(-1) & np.uint32(0xFFFFFF)
    unique, counts = np.unique(words, return_counts=True)
    inverse = np.searchsorted(unique, words)  # a sort and a search: faster than an argsort
    unique = unique.astype(np.int64)
    colours = np.stack([unique & 255, (unique >> 8) & 255, unique >> 16], axis=1)
    dist = np.sqrt(((colours[:, None, :] - LABEL_COLOURS[None]) ** 2).sum(-1))  # [U, 9]
    nearest = dist.argmin(1)
    palette_codes = LABEL_COLOURS @ np.array([65536, 256, 1])
    own_codes = colours @ np.array([65536, 256, 1])
    mapped = np.where(dist.min(1) <= LABEL_SNAP, palette_codes[nearest], own_codes)
    keep = (dist.min(1) <= LABEL_SNAP) | (counts >= MIN_LABEL_SHARE * words.size)
    mapped = np.where(keep, mapped, -1)
    return mapped[inverse].reshape(rgb.size[1], rgb.size[0])


# The label codes of mask files lately read, by (path, modification time, file size, size):
# a run's method reads its masks and the run's scoring reads them again. At most this many
# bytes are kept, the least recently used dropped first.
MASK_CODES_BYTES = 1 << 26
_mask_codes: OrderedDict[tuple, np.ndarray] = OrderedDict()
_mask_codes_lock = threading.Lock()


def mask_codes(
    mask: ImageLike, size: tuple[int, int] | None = None, opened: Image.Image | None = None
) -> np.ndarray:
    """``label_codes`` of a mask given as a path or an image (read-only for a path).

    A file's codes are kept while the file is unchanged (``MASK_CODES_BYTES``), so the method
    of a run and the scoring of its output read its masks once. ``opened``: the file's image,
    where the caller has read it already.
    """
    if isinstance(mask, Image.Image):
        return label_codes(open_rgb(mask), size)
    stat = os.stat(mask)
    key = (os.path.abspath(mask), stat.st_mtime_ns, stat.st_size, size)
    with _mask_codes_lock:
        if key in _mask_codes:
            _mask_codes.move_to_end(key)
            return _mask_codes[key]
    codes = label_codes(opened if opened is not None else open_rgb(mask), size)
    codes = codes.astype(np.int32)  # 24-bit colours and -1
    codes.flags.writeable = False
    if codes.nbytes <= MASK_CODES_BYTES:
        with _mask_codes_lock:
            _mask_codes[key] = codes
            total = sum(c.nbytes for c in _mask_codes.values())
            while total > MASK_CODES_BYTES:
                total -= _mask_codes.popitem(last=False)[1].nbytes
    return codes


def colour_names(codes: np.ndarray) -> str:
    """The label colours in an array of ``label_codes``: paper colours by name, others #rrggbb."""
    palette = dict(zip((int(c) for c in LABEL_COLOURS @ (65536, 256, 1)), LABEL_NAMES, strict=True))
    found = sorted(set(np.unique(codes).tolist()) - {-1})
    return ", ".join(palette.get(c, f"#{c:06x}") for c in found) or "no label colour"


def label_masks(
    content_mask: Image.Image,
    style_mask: Image.Image,
    content_size: tuple[int, int],
    style_size: tuple[int, int],
    names: tuple[str, str] = ("the content mask", "the style mask"),
    files: tuple[ImageLike, ImageLike] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Colour label images -> one (content [1,1,H,W], style [1,1,h,w]) pair per shared colour.

    Sizes are (width, height). Colours are read by ``label_codes``; colours present in only
    one of the two images are dropped. ``names`` name the two masks in errors; ``files``: what
    the two images were read from (paths: their codes are kept, ``mask_codes``).
    """
    content_file, style_file = files if files is not None else (content_mask, style_mask)
    c_codes = mask_codes(content_file, content_size, content_mask)
    s_codes = mask_codes(style_file, style_size, style_mask)
    shared = sorted((set(np.unique(c_codes)) & set(np.unique(s_codes))) - {-1})
    if not shared:
        raise ValueError(
            f"{names[0]} and {names[1]} share no label colour ({names[0]}: "
            f"{colour_names(c_codes)}; {names[1]}: {colour_names(s_codes)}): the same colour "
            "must mark matching regions in both"
        )
    pairs = []
    for code in shared:
        cm = torch.from_numpy((c_codes == code).astype(np.float32))
        sm = torch.from_numpy((s_codes == code).astype(np.float32))
        pairs.append((cm[None, None], sm[None, None]))
    return pairs


def downsize(image: torch.Tensor, longest: int) -> torch.Tensor:
    """A [B, C, H, W] tensor shrunk (antialiased) so its longer side is at most ``longest``."""
    h, w = image.shape[-2:]
    if max(h, w) <= longest:
        return image
    scale = longest / max(h, w)
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return torch.nn.functional.interpolate(
        image, size=size, mode="bilinear", antialias=True, align_corners=False
    )
