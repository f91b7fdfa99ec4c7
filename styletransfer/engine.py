"""The optimiser loop and what every method shares: devices, precision, the range map, method I/O."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer.cache import TransferCache
from styletransfer.config import Runtime, TransferConfig

LOSS_TERMS = ("content", "style", "tv", "photoreal")


def unmeasured_losses() -> dict[str, float]:
    """The losses of a run that evaluated none (a closed form, a failure): NaN, null when stored."""
    return {"total": math.nan, **{name: math.nan for name in LOSS_TERMS}}


# A step whose loss exceeds this multiple of the initial loss, or is not finite, ends the run.
EXPLOSION_FACTOR = 1e3
# L-BFGS restarts from the best iterate (history dropped) when a step raises the loss by more
# than this fraction; after MAX_RESTARTS of them the run is called diverged.
RESTART_TOLERANCE = 1e-3
MAX_RESTARTS = 20
LINE_SEARCH_EVALS = 25
# Sharpness of the smooth map from the optimised variable to pixel values (see to_image).
RANGE_SHARPNESS = 50.0
StepCallback = Callable[[dict[str, Any]], None]


# -- devices and precision ---------------------------------------------------------------
def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; other names are checked for availability."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available; use auto or cpu")
    return device


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (avx512_bf16 or AMX) and torch uses it.

    ``ATEN_CPU_CAPABILITY=avx2`` (or lower) caps torch's kernels below AVX-512, and with it
    bf16: then this is False, as on a CPU without those units.
    """
    if torch.backends.cpu.get_cpu_capability() not in ("AVX512", "AVX512_BF16", "AMX"):
        return False
    try:
        with open("/proc/cpuinfo") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_dtype(device: torch.device, enabled: bool) -> torch.dtype | None:
    """bf16 where the hardware has it (CUDA, CPUs with bf16 units), else None (float32)."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """An autocast context for the feature network, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_threads() -> int:
    """Cap torch's intra-op threads at the cores this process may use (containers see more)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    if torch.get_num_threads() > usable:
        torch.set_num_threads(usable)
    return torch.get_num_threads()


# -- keeping pixels in range ---------------------------------------------------------------
# The optimiser works on an unconstrained variable y; the image is
#   x = softplus(y) - softplus(y - 1)   (softplus with sharpness RANGE_SHARPNESS),
# a smooth, increasing map onto (0, 1) that is the identity to within 2e-4 from 0.1 to 0.9
# (1e-6 from 0.2 to 0.8). Clamping inside an L-BFGS closure would make the objective non-smooth and the
# gradient inconsistent with the step, corrupting the curvature pairs (the divergence of the
# old port); a smooth map keeps the objective smooth, and every iterate is a valid image.
def to_image(y: Tensor) -> Tensor:
    """Unconstrained variable -> image in (0, 1)."""
    b = RANGE_SHARPNESS
    return F.softplus(y, beta=b) - F.softplus(y - 1.0, beta=b)


def from_image(x: Tensor, margin: float = 1.0 / 510.0) -> Tensor:
    """The y with ``to_image(y) == x`` (``x`` clipped ``margin`` inside (0, 1)), by bisection."""
    target = x.detach().double().clamp(margin, 1.0 - margin)
    lo, hi = target - 1.0, target + 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        below = to_image(mid) < target
        lo = torch.where(below, mid, lo)
        hi = torch.where(below, hi, mid)
    return ((lo + hi) / 2).to(x.dtype)


# -- method inputs and outputs --------------------------------------------------------------
@dataclass
class MethodInput:
    """What a method gets: tensors on the device at the working size, plus shared services."""

    contents: Tensor  # [B, 3, H, W] in [0, 1]
    content_keys: list[str]
    styles: list[Tensor]  # each [1, 3, h, w] in [0, 1]
    style_keys: list[str]
    style_blend: tuple[float, ...]  # sums to 1
    config: TransferConfig  # resolved and validated
    device: torch.device
    cache: TransferCache
    masks: list[list[tuple[Tensor, list[Tensor]]]] | None = None  # per content: (cmask, smasks)
    mask_keys: list[str] | None = None
    callback: StepCallback | None = None
    runtime: Runtime = field(default_factory=Runtime)  # where models and such live


@dataclass
class MethodOutput:
    """What a method returns for one content image."""

    image: Tensor  # [1, 3, H, W] in [0, 1]
    status: str = "ok"
    error: str | None = None
    losses: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    # which segment correspondence the run used: "given" (masks passed in), "auto" (found by
    # the method itself) or "none" (one global style)
    mask_source: str = "none"


# -- the optimiser loop ----------------------------------------------------------------------
class _NonFinite(RuntimeError):
    pass


class _OutOfTime(RuntimeError):
    pass


@dataclass
class OptimizeResult:
    """The best iterate of a run and its record."""

    images: Tensor  # [B, 3, H, W]
    status: str
    error: str | None
    losses: list[dict[str, float]]  # per sample, weighted terms and total
    curves: list[list[dict[str, float]]]  # per sample
    steps: int
    seconds: float


LossFn = Callable[[Tensor], dict[str, Tensor]]  # image [B,3,H,W] -> weighted terms, each [B]


def _row(step: int, elapsed: float, parts: dict[str, Tensor], i: int) -> dict[str, float]:
    terms = {name: float(parts[name][i]) if name in parts else 0.0 for name in LOSS_TERMS}
    row: dict[str, float] = {"step": step, "elapsed_s": elapsed, "loss_total": sum(terms.values())}
    row.update({f"loss_{name}": value for name, value in terms.items()})
    return row


@dataclass
class MinimizeResult:
    """The best value of a free variable and its record (see ``minimize``)."""

    param: Tensor
    status: str
    error: str | None
    losses: list[dict[str, float]]  # per sample, weighted terms and total
    curves: list[list[dict[str, float]]]  # per sample
    steps: int
    seconds: float


Objective = Callable[[Tensor], dict[str, Tensor]]  # free variable -> weighted terms, each [B]


def minimize(
    param0: Tensor,
    objective: Objective,
    *,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float = 0.02,
    callback: StepCallback | None = None,
    step_offset: int = 0,
    time_offset: float = 0.0,
    on_stall: Callable[[], bool] | None = None,
    normalize: bool = False,
    max_seconds: float | None = None,
    tolerance: float = 0.0,
    patience: int = 0,
) -> MinimizeResult:
    """The one optimiser loop: minimise the batch sum of ``objective(param)`` from ``param0``.

    L-BFGS uses a strong-Wolfe line search; each step is one L-BFGS iteration. Evaluations are
    memoised by iterate, so the re-evaluation torch's LBFGS makes at the start of each step
    costs nothing. A non-finite or exploding loss stops the run with status ``diverged``;
    the best iterate seen is returned either way. When the line search cannot move twice
    running, ``on_stall`` may make the loss more exact (e.g. leave bf16) and return True to go
    on; otherwise the run has converged and stops early. ``normalize`` makes the optimiser
    see the loss relative to its initial value (O(1) values and gradients); ``max_seconds``
    ends the run once that much time has passed, within a line search too (the best accepted
    iterate is kept); with ``patience`` > 0 it ends once the best
    loss improved by less than ``tolerance`` (relative) over the last ``patience`` steps.
    """
    start = time.perf_counter()
    param = param0.detach().clone().requires_grad_(True)
    memo: list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]] = []
    norm: list[float] = []

    def evaluate() -> tuple[Tensor, dict[str, Tensor]]:
        for seen, total, grad, parts in memo:
            if torch.equal(seen, param.detach()):
                param.grad = grad.clone()
                return total, parts
        if memo and max_seconds is not None and time.perf_counter() - start >= max_seconds:
            raise _OutOfTime  # within a line search: stop with the best accepted iterate
        param.grad = None
        parts = objective(param)
        total = sum(parts.values()).sum()
        if not torch.isfinite(total):
            raise _NonFinite(f"loss became {float(total.detach())}")
        if normalize:
            if not norm:
                norm.append(abs(float(total.detach())) or 1.0)
            total = total / norm[0]
        total.backward()
        if not torch.isfinite(param.grad).all():
            raise _NonFinite("gradient became non-finite")
        detached = {k: v.detach() for k, v in parts.items()}
        memo.append((param.detach().clone(), total.detach(), param.grad.clone(), detached))
        del memo[:-4]
        return total.detach(), detached

    def make_optimizer() -> torch.optim.Optimizer:
        if optimizer == "lbfgs":
            return torch.optim.LBFGS(
                # max_eval bounds the line search of each one-iteration step (torch's default,
                # 5/4 of max_iter, would leave it no evaluation at all).
                [param],
                lr=1.0,
                max_iter=1,
                max_eval=1 + LINE_SEARCH_EVALS,
                history_size=100,
                line_search_fn="strong_wolfe",
                tolerance_grad=0.0,
                tolerance_change=1e-12,
            )
        return torch.optim.Adam([param], lr=lr)

    def closure() -> Tensor:
        total, _ = evaluate()
        return total

    opt = make_optimizer()
    status, error = "ok", None
    batch = param0.shape[0]
    curves: list[list[dict[str, float]]] = [[] for _ in range(batch)]
    try:
        initial, parts = evaluate()
    except _NonFinite as exc:
        return MinimizeResult(
            param0.detach().clone(),
            "diverged",
            str(exc),
            [{} for _ in range(batch)],
            curves,
            0,
            time.perf_counter() - start,
        )
    best_value, best_param, best_parts = float(initial), param.detach().clone(), parts
    history = [best_value]
    elapsed = time_offset + time.perf_counter() - start
    for i in range(batch):
        curves[i].append(_row(step_offset, elapsed, parts, i))
    restarts = 0
    done = 0
    stalled = False
    bad_trials = 0
    previous = param.detach().clone()
    for step in range(1, steps + 1):
        try:
            if optimizer == "lbfgs":
                try:
                    opt.step(closure)
                    bad_trials = 0
                except _NonFinite:
                    # A trial point of the line search (not an accepted iterate) was not
                    # finite: step back once and go on as after a line search that could
                    # not move; the same again at once means the loss itself is broken.
                    bad_trials += 1
                    if bad_trials > 1:
                        raise
                    with torch.no_grad():
                        param.copy_(previous)
                value, parts = evaluate()  # memoised: the line search already evaluated it
            else:
                # Adam: a step records the loss of the iterate it started from.
                opt.zero_grad(set_to_none=True)
                value, parts = evaluate()
                opt.step()
        except _NonFinite as exc:
            status, error = "diverged", f"stopped at step {step}: {exc}"
            break
        except _OutOfTime:
            break
        done = step
        value_f = float(value)
        if optimizer == "lbfgs" and torch.equal(param.detach(), previous):
            # The line search found no lower point along the L-BFGS direction: drop the
            # history and try steepest descent; if that cannot move either, it has converged.
            if stalled:
                if on_stall is None or not on_stall():
                    break
                memo.clear()  # the loss changed: re-evaluate where we stand
                norm.clear()
                try:
                    value, parts = evaluate()
                except _NonFinite as exc:
                    status, error = "diverged", f"stopped at step {step}: {exc}"
                    break
                value_f = best_value = float(value)
                best_parts, best_param = parts, param.detach().clone()
                history = [best_value]
            stalled = True
            opt = make_optimizer()
        else:
            stalled = False
        previous = param.detach().clone()
        if value_f > EXPLOSION_FACTOR * max(float(initial), 1e-12):
            status, error = "diverged", f"loss exploded to {value_f:.4g} at step {step}"
            break
        if value_f < best_value:
            best_value, best_parts = value_f, parts
            best_param = param.detach().clone()
        elif optimizer == "lbfgs" and value_f > best_value * (1 + RESTART_TOLERANCE):
            restarts += 1
            if restarts > MAX_RESTARTS:
                status, error = "diverged", f"loss kept rising (step {step})"
                break
            with torch.no_grad():
                param.copy_(best_param)
            opt = make_optimizer()
            value_f, parts = best_value, best_parts
        history.append(best_value)
        elapsed = time_offset + time.perf_counter() - start
        for i in range(batch):
            curves[i].append(_row(step + step_offset, elapsed, parts, i))
        if callback is not None:
            callback({"step": step + step_offset, "elapsed_s": elapsed, "loss_total": value_f})
        if max_seconds is not None and time.perf_counter() - start >= max_seconds:
            break
        if (
            patience > 0
            and len(history) > patience
            and history[-1 - patience] - best_value <= tolerance * abs(best_value)
        ):
            break
    losses = [
        {**{name: float(best_parts[name][i]) if name in best_parts else 0.0 for name in LOSS_TERMS}}
        for i in range(batch)
    ]
    for row in losses:
        row["total"] = sum(row[name] for name in LOSS_TERMS)
    return MinimizeResult(
        best_param, status, error, losses, curves, done, time.perf_counter() - start
    )


def optimize(
    init: Tensor,
    loss_fn: LossFn,
    *,
    steps: int,
    optimizer: str = "lbfgs",
    lr: float = 0.02,
    callback: StepCallback | None = None,
    step_offset: int = 0,
    time_offset: float = 0.0,
    on_stall: Callable[[], bool] | None = None,
) -> OptimizeResult:
    """Minimise the sum over the batch of ``loss_fn`` over images, starting from ``init``.

    The image is ``to_image(y)`` of a free float64 variable ``y`` (see ``minimize`` for the
    loop): with losses of 1e10 and more, the line search's curvature terms (gradient squared)
    overflow float32 into NaN.
    """
    y0 = from_image(init).detach().double()
    result = minimize(
        y0,
        lambda y: loss_fn(to_image(y).to(init.dtype)),
        steps=steps,
        optimizer=optimizer,
        lr=lr,
        callback=callback,
        step_offset=step_offset,
        time_offset=time_offset,
        on_stall=on_stall,
    )
    if result.steps == 0 and result.status == "diverged":
        images = init.detach().clone()
    else:
        with torch.no_grad():
            images = to_image(result.param).clamp(0, 1).to(init.dtype)
    return OptimizeResult(
        images,
        result.status,
        result.error,
        result.losses,
        result.curves,
        result.steps,
        result.seconds,
    )


@contextlib.contextmanager
def timer(seconds: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
