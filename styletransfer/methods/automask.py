"""Segments found from the photos themselves, for the methods that use masks (photo-fast, dpst).

Wraps ``styletransfer.correspond`` for a ``MethodInput``: the VGG19 it reads is loaded once
per process, each style's features and superpixels are computed once per process (a batch
reuses them for every content), and the labels come back either as label images (photo-fast's
per-segment colour transfer) or as the per-segment masks dpst's masked style loss takes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer import correspond
from styletransfer.engine import MethodInput
from styletransfer.options import AutoMaskOptions, PhotoFastOptions


def match_options(opts: AutoMaskOptions | PhotoFastOptions) -> correspond.MatchOptions:
    """The matching a method's options ask for (its segments, match_size and height_prior)."""
    return correspond.MatchOptions(opts.segments, opts.match_size, opts.height_prior)


def match_encoder(inp: MethodInput) -> torch.nn.Module:
    """The VGG19 the matching reads (the config's weights where its network is vgg19)."""
    from styletransfer.features import load_encoder

    weights = inp.config.weights if inp.config.feature_model == "vgg19" else None
    key = ("vgg19", str(weights), correspond.LAYERS, str(inp.device))
    return inp.cache.get_or_compute(
        "encoder", key, lambda: load_encoder("vgg19", correspond.LAYERS, weights, inp.device)
    )


def auto_labels(
    inp: MethodInput, index: int, match: correspond.MatchOptions
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Content ``index``'s segments and each style's: one (content, style) label pair per style.

    Label images at the working size (``correspond.WORK_SIZE``); -1 marks no segment.
    Several styles share the first style's content segments.
    """
    encoder = match_encoder(inp)
    content = correspond.prepare(encoder, inp.contents[index : index + 1], match.match_size)
    styles = [
        inp.cache.get_or_compute(
            "match",
            (inp.style_keys[s], correspond.WORK_SIZE, match.match_size, str(inp.device)),
            lambda s=s: correspond.prepare(encoder, inp.styles[s], match.match_size),
        )
        for s in range(len(inp.styles))
    ]
    first_c, first_s = correspond.match(content, styles[0], match, inp.config.seed)
    out = [(first_c, first_s)]
    for style in styles[1:]:
        out.append(
            (first_c, correspond.match_style(content, first_c, style, match, match.segments))
        )
    return out


def _resized(labels: np.ndarray, like: Tensor) -> Tensor:
    t = torch.from_numpy(labels.astype(np.float32))[None, None]
    return F.interpolate(t, size=tuple(like.shape[-2:]), mode="nearest")[0, 0].long()


def auto_masks(
    inp: MethodInput, index: int, match: correspond.MatchOptions
) -> tuple[list[tuple[Tensor, list[Tensor]]], str]:
    """The segments of ``auto_labels`` as masks (content mask, one mask per style) on the
    device, at the method's sizes, and a key naming them for caches.

    Content pixels of no segment form one more segment, matched with the whole of each style.
    """
    pairs = auto_labels(inp, index, match)
    content_labels = _resized(pairs[0][0], inp.contents)
    style_labels = [_resized(ls, style) for (_, ls), style in zip(pairs, inp.styles, strict=True)]
    for j in torch.unique(content_labels).tolist():
        if j >= 0 and any(not bool((ls == j).any()) for ls in style_labels):
            content_labels[content_labels == j] = -1  # a segment some style lacks: whole styles
    segments = []
    for j in torch.unique(content_labels).tolist():
        cm = (content_labels == j).float()[None, None]
        if j < 0:
            sms = [torch.ones(1, 1, *ls.shape) for ls in style_labels]
        else:
            sms = [(ls == j).float()[None, None] for ls in style_labels]
        segments.append((cm.to(inp.device), [m.to(inp.device) for m in sms]))
    digest = hashlib.sha256()
    for _, ls in pairs:
        digest.update(np.ascontiguousarray(ls).tobytes())
    digest.update(np.ascontiguousarray(pairs[0][0]).tobytes())
    return segments, f"auto:{digest.hexdigest()}"
