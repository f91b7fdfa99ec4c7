"""Training a multi-style transformer with perceptual losses, with checkpoints and resume."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from styletransfer.fast.config import TrainConfig
from styletransfer.fast.model import (
    CHECKPOINT_DIR,
    ModelMeta,
    StyleInfo,
    checkpoint_paths,
    dataset_fingerprint,
    file_sha256,
    load_checkpoint,
    save_checkpoint,
    save_model,
)
from styletransfer.fast.network import NetworkSpec, TransformerNet
from styletransfer.losses import content_loss, gram_matrix, style_loss, tv_loss

log = logging.getLogger(__name__)

Encoder = Callable[[Tensor], Mapping[str, Tensor]]
CURVE_POINTS = 200  # loss-curve samples kept in the metadata


@dataclass(frozen=True)
class StepInfo:
    """What one training step reports to the caller (for progress bars and logs)."""

    step: int
    steps: int
    losses: Mapping[str, float]
    seconds: float
    resumed_from: int


@dataclass(frozen=True)
class TrainResult:
    """The trained model's directory, metadata and where training started."""

    path: Path
    meta: ModelMeta
    resumed_from: int
    seconds: float


class ImageLoadError(ValueError):
    """A training image cannot be decoded."""


def load_image(path: str | os.PathLike[str], short_side: int) -> Tensor:
    """An image file -> RGB ``[3, H, W]`` float in [0, 1], resized so its short side is given."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img).convert("RGB")
            w, h = img.size
            scale = short_side / min(w, h)
            size = (max(short_side, round(w * scale)), max(short_side, round(h * scale)))
            img = img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
            array = np.asarray(img, dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageLoadError(f"cannot read training image {path}: {exc}") from None
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)  # HWC -> CHW


class ContentBatches:
    """Deterministic batches of random square crops: batch ``t`` depends only on seed and t.

    Each epoch is a seeded permutation of the images, so a resumed run sees exactly the
    batches an uninterrupted one would have. Decoded images are kept in a small LRU cache.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        size: int,
        batch_size: int,
        seed: int,
        cache_size: int = 64,
    ):
        if not paths:
            raise ValueError("no content images to train on: give at least one image")
        self.paths = [Path(p) for p in paths]
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.cache_size = cache_size
        self._cache: OrderedDict[Path, Tensor] = OrderedDict()
        self._perms: dict[int, list[int]] = {}

    def _perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms = {epoch: torch.randperm(len(self.paths), generator=g).tolist()}
        return self._perms[epoch]

    def _image(self, path: Path) -> Tensor:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        image = load_image(path, self.size)
        self._cache[path] = image
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return image

    def indices(self, step: int) -> list[int]:
        """Which images (indices into the paths) make up batch ``step``."""
        n = len(self.paths)
        positions = range(step * self.batch_size, (step + 1) * self.batch_size)
        return [self._perm(p // n)[p % n] for p in positions]

    def batch(self, step: int) -> Tensor:
        """The batch for 0-based ``step``: ``[batch_size, 3, size, size]``."""
        g = torch.Generator().manual_seed(self.seed * 7_919 + step)
        crops = []
        for index in self.indices(step):
            image = self._image(self.paths[index])
            _, h, w = image.shape
            top = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
            left = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
            crops.append(image[:, top : top + self.size, left : left + self.size])
        return torch.stack(crops)


def style_schedule(step: int, batch_size: int, num_styles: int) -> list[int]:
    """The style index of each sample of batch ``step``: styles take turns sample by sample."""
    return [(step * batch_size + k) % num_styles for k in range(batch_size)]


def _resume_key(
    config: TrainConfig, spec: NetworkSpec, styles: Sequence[StyleInfo], fingerprint: str
) -> dict:
    return {
        "training": config.resume_key(),
        "network": spec.to_dict(),
        "styles": [s.sha256 for s in styles],
        "dataset_fingerprint": fingerprint,
    }


def perceptual_losses(
    output: Tensor,
    content: Tensor,
    style_index: Tensor,
    encoder: Encoder,
    style_targets: Mapping[str, Tensor],
    config: TrainConfig,
) -> dict[str, Tensor]:
    """Weighted content, style and TV losses of a stylised batch, and their total.

    ``style_targets[layer]`` is ``[num_styles, C, C]``; sample b is compared with the Gram
    matrix of style ``style_index[b]``.
    """
    with torch.no_grad():
        content_feats = encoder(content)
    out_feats = encoder(output)
    c_loss = sum(
        content_loss(out_feats[layer], content_feats[layer]) for layer in config.content_layers
    )
    s_loss = output.new_zeros(())
    for layer, weight in config.layer_weights().items():
        target = style_targets[layer][style_index]  # [B, C, C]
        s_loss = s_loss + weight * style_loss(gram_matrix(out_feats[layer]), target)
    t_loss = tv_loss(output)
    total = (
        config.content_weight * c_loss + config.style_weight * s_loss + config.tv_weight * t_loss
    )
    return {"total": total, "content": c_loss, "style": s_loss, "tv": t_loss}


def style_grams(
    style_images: Sequence[Tensor], encoder: Encoder, layers: Sequence[str], device: torch.device
) -> dict[str, Tensor]:
    """Per layer, the stacked Gram matrices ``[num_styles, C, C]`` of the style images."""
    grams: dict[str, list[Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for image in style_images:
            feats = encoder(image.unsqueeze(0).to(device))
            for layer in layers:
                grams[layer].append(gram_matrix(feats[layer])[0].float())
    return {layer: torch.stack(g) for layer, g in grams.items()}


def _check_encoder(encoder: Encoder, config: TrainConfig, device: torch.device) -> None:
    probe = torch.rand(1, 3, 32, 32, device=device)
    with torch.no_grad():
        feats = encoder(probe)
    missing = [
        layer for layer in (*config.content_layers, *config.style_layers) if layer not in feats
    ]
    if missing:
        raise ValueError(
            f"the feature network does not return layer(s) {', '.join(missing)}; "
            f"it returns: {', '.join(feats)}"
        )


def train(
    content_paths: Sequence[str | os.PathLike[str]],
    style_paths: Sequence[str | os.PathLike[str]],
    encoder: Encoder,
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    style_labels: Sequence[str] | None = None,
    dataset_ids: Sequence[str] | None = None,
    device: torch.device | str | None = None,
    resume: bool = True,
    on_step: Callable[[StepInfo], None] | None = None,
) -> TrainResult:
    """Train one network for all ``style_paths`` on ``content_paths``; write it to ``out_dir``.

    ``encoder`` maps RGB ``[B, 3, H, W]`` in [0, 1] to a dict holding at least the config's
    content and style layers (``styletransfer.features.load_encoder`` or any stand-in).
    Checkpoints go to ``out_dir/checkpoints`` every ``config.checkpoint_every`` steps; with
    ``resume`` the latest one whose setup matches is continued (a different setup raises
    CheckpointMismatch), without it old checkpoints are deleted first. ``dataset_ids`` names
    the content images for the fingerprint (default: the file paths). ``on_step`` is called
    after every step; an exception it raises stops training (the last checkpoint remains).
    """
    if not config.content_layers or not config.style_layers:
        raise ValueError(
            "config has no content or style layers: fill them with "
            "config.with_layers(...) (e.g. from styletransfer.features.default_layers)"
        )
    if not style_paths:
        raise ValueError("no style images: give at least one")
    if style_labels is not None and len(style_labels) != len(style_paths):
        raise ValueError("style_labels must have one label per style image")
    device = torch.device(device) if device is not None else torch.device("cpu")
    out_dir = Path(out_dir)
    name = name or out_dir.name
    started = time.perf_counter()

    spec = NetworkSpec(
        num_styles=len(style_paths),
        base_channels=config.base_channels,
        residual_blocks=config.residual_blocks,
    )
    labels = list(style_labels) if style_labels is not None else [Path(p).stem for p in style_paths]
    styles = tuple(
        StyleInfo(label, file_sha256(path)) for label, path in zip(labels, style_paths, strict=True)
    )
    ids = list(dataset_ids) if dataset_ids is not None else [str(p) for p in content_paths]
    fingerprint = dataset_fingerprint(ids)
    feature_weights = str(getattr(encoder, "weights_source", ""))  # engine encoders say
    key = _resume_key(config, spec, styles, fingerprint)
    key["feature_weights"] = feature_weights

    _check_encoder(encoder, config, device)
    style_size = config.style_size or config.size
    targets = style_grams(
        [load_image(p, style_size) for p in style_paths], encoder, config.style_layers, device
    )
    batches = ContentBatches(content_paths, config.size, config.batch_size, config.seed)

    torch.manual_seed(config.seed)
    net = TransformerNet(spec).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step, curve = 0, []
    if not resume and (out_dir / CHECKPOINT_DIR).exists():
        shutil.rmtree(out_dir / CHECKPOINT_DIR)
    found = checkpoint_paths(out_dir) if resume else []
    if found:
        step, extra = load_checkpoint(found[-1][1], net, optimizer, key)
        curve = [dict(c) for c in extra.get("curve", [])]
        log.info("resuming %s from step %d (%s)", name, step, found[-1][1])
    if step > config.steps:
        raise ValueError(
            f"the checkpoint in {out_dir} is at step {step}, past the {config.steps} steps asked "
            f"for: ask for at least {step} steps, or start over with --restart"
        )
    resumed_from = step
    recent: list[dict[str, float]] = []
    sample_every = max(1, config.steps // CURVE_POINTS)
    precision = _precision(device, config.mixed_precision)

    net.train()
    # The next batch is decoded in a worker thread while this step computes.
    with ThreadPoolExecutor(max_workers=1) as loader:
        pending = loader.submit(batches.batch, step) if step < config.steps else None
        while pending is not None:
            content = pending.result().to(device)
            pending = loader.submit(batches.batch, step + 1) if step + 1 < config.steps else None
            index = torch.tensor(
                style_schedule(step, config.batch_size, spec.num_styles), device=device
            )
            weights = torch.nn.functional.one_hot(index, spec.num_styles).float()
            with precision:
                output = net(content, weights=weights)
                losses = perceptual_losses(output, content, index, encoder, targets, config)
            if not torch.isfinite(losses["total"]):
                raise FloatingPointError(
                    f"training loss became {losses['total'].item()} at step {step + 1}; lower "
                    "--lr or the loss weights (the last checkpoint is kept)"
                )
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            optimizer.step()
            step += 1
            values = {k: float(v.detach()) for k, v in losses.items()}
            recent = (recent + [values])[-50:]
            if step % sample_every == 0 or step == 1:
                curve.append({"step": step, **values})
            if step % config.checkpoint_every == 0 and step < config.steps:
                save_checkpoint(
                    out_dir,
                    step,
                    net,
                    optimizer,
                    key,
                    {"curve": curve},
                    keep=config.keep_checkpoints,
                )
            if on_step is not None:
                on_step(
                    StepInfo(
                        step, config.steps, values, time.perf_counter() - started, resumed_from
                    )
                )

    if step > resumed_from or not found or found[-1][0] != step:
        save_checkpoint(
            out_dir, step, net, optimizer, key, {"curve": curve}, keep=config.keep_checkpoints
        )
    final = {k: float(np.mean([r[k] for r in recent])) for k in recent[0]} if recent else {}
    meta = ModelMeta(
        name=name,
        network=spec,
        styles=styles,
        training=config,
        steps=step,
        dataset_fingerprint=fingerprint,
        dataset_size=len(set(ids)),
        feature_weights=feature_weights,
        final_losses=final if final else _last(curve),
        curve=tuple(curve),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    net.eval()
    save_model(out_dir, net, meta)
    return TrainResult(
        path=out_dir, meta=meta, resumed_from=resumed_from, seconds=time.perf_counter() - started
    )


def _precision(device: torch.device, enabled: bool):
    """bf16 autocast for the network and loss network where the hardware has it, else none."""
    from styletransfer.device import autocast, autocast_dtype

    return autocast(device, autocast_dtype(device, enabled))


def _last(curve: Sequence[Mapping[str, float]]) -> dict[str, float]:
    if not curve:
        return {}
    return {k: float(v) for k, v in curve[-1].items() if k != "step"}
