"""photo-fast: a bilateral grid of affine colour maps fitted small, applied at full size.

Training-free and photorealistic by construction: the output is ``A(x) @ content(x) + b(x)``,
where the 3x3 matrix A and offset b are read by trilinear lookup from a coarse grid over
(row, column, content luma) (Chen et al. 2016, "Bilateral guided upsampling"; the grid of
Gharbi et al. 2017, HDRNet, here optimised per image instead of predicted by a trained
network). The grid is optimised against Gatys' content and (blended, optionally masked)
style losses on a small copy of the images, then sliced with the full-resolution content as
the guide, so edges and textures of the photo survive and the cost barely grows with size.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer.engine import LOSS_TERMS, MethodInput, MethodOutput, timer, to_image
from styletransfer.guided import apply_grid, grid_roughness, identity_grid, luminance

# Its loss weights: styletransfer.registry.PhotoFastDefaults.

# A step that raises the loss above this multiple of the initial loss, or a non-finite loss,
# ends the fit with status "diverged" (the best grid so far is kept), as in the engine's loop.
EXPLOSION_FACTOR = 1e3
# L-BFGS steps without any improvement after which the fit goes on with Adam.
STALL_STEPS = 3


_FLOAT_OPTIONS = ("smoothness", "tolerance")


@dataclass(frozen=True)
class PhotoFastOptions:
    """Settings of photo-fast, given as ``TransferConfig(extra={...})``.

    ``steps`` of the config is the most optimiser steps of the grid fit; the fit stops early
    once the loss improved by less than ``tolerance`` (relative) over the last ``patience``
    steps. The defaults were chosen at 256 px on four photo pairs against dpst at 2 x 300 steps
    (bench/bench_speed.py; style distance and luma SSIM of the output, bundled VGG19). A
    12 x 12 x 8 grid fitted at 128 px left the style distance 1.3-6.7x dpst's; fitting at
    256 px and refining the grid to 64 x 64 x 16 brought it to 0.1-0.6x, and a content weight of
    15 (gatys: 5) kept the SSIM above dpst's on every pair. Coarse-to-fine fitting (``levels``
    2) did not pay on astronaut / coffee: at most a tenth of the time saved (the early stop ends
    each level on its own plateau), and a lower SSIM (0.63 against 0.68 with a 32-cell grid).
    Stopping at a 1% gain per 20 steps rather than 0.1% halved the steps and cost little.
    """

    fit_size: int = 256  # longest side of the images the grid is fitted on, at the finest level
    grid: int = 64  # grid cells along the longer image side
    bins: int = 16  # grid cells along the luma axis
    smoothness: float = 30.0  # weight of the grid's roughness, relative to the content's loss
    levels: int = 1  # coarse-to-fine fitting sizes: fit_size / 2^k for k < levels
    tolerance: float = 1e-2
    patience: int = 20

    @classmethod
    def from_extra(cls, extra: tuple[tuple[str, Any], ...]) -> PhotoFastOptions:
        """Parse and check the config's ``extra`` items (a ValueError lists the valid keys)."""
        names = {f.name: f.type for f in dataclasses.fields(cls)}
        values = dict(extra)
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(
                f"unknown photo-fast option(s) {', '.join(unknown)}; the options are: "
                f"{', '.join(names)}"
            )
        try:
            opts = cls(
                **{k: (float(v) if k in _FLOAT_OPTIONS else int(v)) for k, v in values.items()}
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"photo-fast options must be numbers: {exc}") from exc
        if opts.fit_size < 32:
            raise ValueError(f"photo-fast fit_size must be >= 32 pixels, got {opts.fit_size}")
        if opts.grid < 2 or opts.bins < 2:
            raise ValueError(f"photo-fast grid and bins must be >= 2, got {opts.grid}, {opts.bins}")
        if opts.smoothness < 0:
            raise ValueError(f"photo-fast smoothness must be >= 0, got {opts.smoothness}")
        if opts.levels < 1:
            raise ValueError(f"photo-fast levels must be >= 1, got {opts.levels}")
        if opts.tolerance < 0 or opts.patience < 1:
            raise ValueError("photo-fast tolerance must be >= 0 and patience >= 1")
        return opts


def _downsize(image: Tensor, longest: int) -> Tensor:
    h, w = image.shape[-2:]
    if max(h, w) <= longest:
        return image
    scale = longest / max(h, w)
    size = (max(8, round(h * scale)), max(8, round(w * scale)))
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def _row(step: int, elapsed: float, parts: dict[str, Tensor], i: int) -> dict[str, float]:
    terms = {name: float(parts[name][i]) if name in parts else 0.0 for name in LOSS_TERMS}
    return {
        "step": step,
        "elapsed_s": elapsed,
        "loss_total": sum(terms.values()),
        **{f"loss_{name}": value for name, value in terms.items()},
    }


@dataclass
class GridFit:
    """The best grid of a fit and its record."""

    grid: Tensor
    status: str
    error: str | None
    losses: list[dict[str, float]]  # per sample: weighted terms and total at the best grid
    curves: list[list[dict[str, float]]]
    steps: int


def fit_grid(
    grid0: Tensor,
    contents: Tensor,
    loss_fn: Callable[[Tensor], dict[str, Tensor]],
    *,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float = 0.02,
    smoothness: float = 0.0,
    reference: Tensor | None = None,
    tolerance: float = 1e-3,
    patience: int = 20,
    callback: Callable[[dict[str, Any]], None] | None = None,
    step_offset: int = 0,
    time_offset: float = 0.0,
) -> GridFit:
    """Minimise ``loss_fn(image)`` over the bilateral grid that maps ``contents`` to the image.

    ``smoothness`` times ``reference`` (per sample; default: the initial loss) times the grid's
    roughness is added to the ``tv`` term: it keeps neighbouring cells, and so the colour maps
    of nearby pixels and of nearby luma values, alike. L-BFGS (strong-Wolfe line search, one
    iteration per step) or Adam; evaluations are memoised by iterate. A non-finite or exploding loss ends the fit with status
    ``diverged``; the best grid seen is returned either way.
    """
    start = time.perf_counter() - time_offset
    grid = grid0.detach().clone().requires_grad_(True)
    guide = luminance(contents)
    batch = contents.shape[0]
    memo: list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]] = []
    scale: list[Tensor] = [] if reference is None else [reference.detach()]
    norm: list[float] = []  # the initial total, once known

    def evaluate() -> tuple[Tensor, dict[str, Tensor]]:
        for seen, total, grad, parts in memo:
            if torch.equal(seen, grid.detach()):
                grid.grad = grad.clone()
                return total, parts
        grid.grad = None
        parts = loss_fn(to_image(apply_grid(grid, contents, guide)))
        if not scale:
            scale.append(sum(parts.values()).detach())
        if smoothness > 0:
            penalty = smoothness * scale[0] * grid_roughness(grid)
            parts["tv"] = parts["tv"] + penalty if "tv" in parts else penalty
        total = sum(parts.values()).sum()
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {float(total)}")
        if not norm:
            norm.append(float(total.detach()) or 1.0)
        # The optimiser sees the loss relative to its start: O(1) values and gradients, which
        # keeps L-BFGS' first step and line search from stalling on losses of order 1e8.
        total = total / norm[0]
        total.backward()
        if not torch.isfinite(grid.grad).all():
            raise FloatingPointError("gradient became non-finite")
        detached = {k: v.detach() for k, v in parts.items()}
        memo.append((grid.detach().clone(), total.detach(), grid.grad.clone(), detached))
        del memo[:-4]
        return total.detach(), detached

    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS(
            [grid],
            lr=1.0,
            max_iter=1,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=0.0,
            tolerance_change=1e-12,
        )
    else:
        opt = torch.optim.Adam([grid], lr=lr)
    curves: list[list[dict[str, float]]] = [[] for _ in range(batch)]
    try:
        total, parts = evaluate()
    except FloatingPointError as exc:
        return GridFit(
            grid0, "diverged", str(exc), [_losses({}, i) for i in range(batch)], curves, 0
        )
    initial = best = float(total)
    best_grid, best_parts, history = grid.detach().clone(), parts, [best]
    if step_offset == 0:
        for i in range(batch):
            curves[i].append(_row(0, time.perf_counter() - start, parts, i))
    status, error, done = "ok", None, 0
    for step in range(1, steps + 1):
        try:
            if optimizer == "lbfgs":
                opt.step(lambda: evaluate()[0])
                total, parts = evaluate()  # memoised: the line search evaluated it
            else:
                opt.zero_grad(set_to_none=True)
                total, parts = evaluate()
                opt.step()
        except FloatingPointError as exc:
            status, error = "diverged", f"stopped at step {step}: {exc}"
            break
        done, value = step, float(total)
        if value > EXPLOSION_FACTOR * max(initial, 1e-12):
            status, error = "diverged", f"loss exploded to {value:.4g} at step {step}"
            break
        if value < best:
            best, best_grid, best_parts = value, grid.detach().clone(), parts
        history.append(best)
        if (
            optimizer == "lbfgs"
            and len(history) > STALL_STEPS
            and history[-1 - STALL_STEPS] <= best
        ):
            # L-BFGS can stall on this objective (its line search stops moving the grid):
            # carry on with Adam from the best grid.
            optimizer = "adam"
            with torch.no_grad():
                grid.copy_(best_grid)
            opt = torch.optim.Adam([grid], lr=lr)
        elapsed = time.perf_counter() - start
        for i in range(batch):
            curves[i].append(_row(step_offset + step, elapsed, parts, i))
        if callback is not None:
            callback({"step": step_offset + step, "elapsed_s": elapsed, "loss_total": value})
        if len(history) > patience and history[-1 - patience] - best <= tolerance * abs(best):
            break
    return GridFit(
        best_grid, status, error, [_losses(best_parts, i) for i in range(batch)], curves, done
    )


def _losses(parts: dict[str, Tensor], i: int) -> dict[str, float]:
    row = {name: float(parts[name][i]) if name in parts else 0.0 for name in LOSS_TERMS}
    row["total"] = sum(row.values())
    return row


def _level_input(inp: MethodInput, longest: int) -> MethodInput:
    return dataclasses.replace(
        inp,
        contents=_downsize(inp.contents, longest),
        styles=[_downsize(s, longest) for s in inp.styles],
    )


def photo_fast(inp: MethodInput) -> list[MethodOutput]:
    """Fit a bilateral grid of affine colour maps on small copies, apply it at full size.

    The grid does not depend on the image size, so with ``levels`` > 1 it is fitted coarse to
    fine: first on copies at 1/2^(levels-1) of ``fit_size`` (most of the steps, at a fraction
    of the cost), then on each next size up, starting from the grid so far.
    """
    from styletransfer.methods.neural import PerceptualLoss, get_encoder, style_targets
    from styletransfer.multires import MIN_LEVEL_SIZE, Level, plan_levels

    cfg = inp.config
    opts = PhotoFastOptions.from_extra(cfg.extra)
    torch.manual_seed(cfg.seed)
    seconds: dict[str, float] = {"laplacian": 0.0, "prepare": 0.0}
    batch = inp.contents.shape[0]
    content_masks = None
    if inp.masks is not None:
        if batch != 1:
            raise ValueError("segmentation masks need one content image per run")
        content_masks = [cm for cm, _ in inp.masks[0]]
    mask_key = inp.mask_keys[0] if inp.mask_keys else None
    with timer(seconds, "prepare"):
        encoder = get_encoder(inp)

    def level_loss(small: MethodInput) -> tuple[PerceptualLoss, Tensor]:
        targets = []
        for s in range(len(inp.styles)):
            style_masks = None if inp.masks is None else [sms[s] for _, sms in inp.masks[0]]
            targets.append(style_targets(small, encoder, s, style_masks, mask_key))
        loss_fn = PerceptualLoss(
            encoder,
            cfg,
            inp.device,
            small.contents,
            targets,
            inp.style_blend,
            content_masks,
            None,
            photoreal=False,
        )
        with torch.no_grad():  # the content's own loss: the scale of the grid's roughness
            reference = sum(loss_fn(small.contents).values())
        return loss_fn, reference

    h, w = inp.contents.shape[-2:]
    gh = max(2, round(opts.grid * h / max(h, w)))
    gw = max(2, round(opts.grid * w / max(h, w)))
    grid = identity_grid(batch, opts.bins, gh, gw).to(inp.device)
    if cfg.init == "noise":
        generator = torch.Generator().manual_seed(cfg.seed)
        grid = grid + 0.1 * torch.randn(grid.shape, generator=generator).to(inp.device)
    fit_size = min(opts.fit_size, max(h, w))
    levels = [lv for lv in plan_levels(cfg.steps, opts.levels) if lv.steps > 0]
    curves: list[list[dict[str, float]]] = [[] for _ in range(batch)]
    status, error, losses, done, optimize_s = "ok", None, None, 0, 0.0
    for level in levels or [Level(scale=1.0, steps=0)]:
        with timer(seconds, "prepare"):
            small = _level_input(inp, max(MIN_LEVEL_SIZE, round(fit_size * level.scale)))
            loss_fn, reference = level_loss(small)
        start = time.perf_counter()
        fit = fit_grid(
            grid,
            small.contents,
            loss_fn,
            steps=level.steps,
            optimizer=cfg.optimizer,
            lr=cfg.lr,
            smoothness=opts.smoothness,
            reference=reference,
            tolerance=opts.tolerance,
            patience=opts.patience,
            callback=inp.callback,
            step_offset=done,
            time_offset=optimize_s,
        )
        optimize_s += time.perf_counter() - start
        grid, status, error, losses = fit.grid, fit.status, fit.error, fit.losses
        for i in range(batch):
            curves[i] += fit.curves[i]
        done += fit.steps
        if status != "ok":
            break
    start = time.perf_counter()
    with torch.no_grad():
        images = to_image(apply_grid(grid, inp.contents)).clamp(0, 1)
    seconds["optimize"] = optimize_s + time.perf_counter() - start
    return [
        MethodOutput(
            image=images[i : i + 1],
            status=status,
            error=error,
            losses=losses[i],
            curve=curves[i],
            seconds=dict(seconds),
            steps=done,
        )
        for i in range(batch)
    ]
