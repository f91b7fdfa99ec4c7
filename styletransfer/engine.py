"""The optimiser loop and what every method shares: the range map, method I/O, timers."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
Objective = Callable[[Tensor], dict[str, Tensor]]  # free variable -> weighted terms, each [B]
LossFn = Callable[[Tensor], dict[str, Tensor]]  # image [B,3,H,W] -> weighted terms, each [B]


@dataclass(frozen=True)
class OptimizeOptions:
    """How ``minimize`` runs.

    ``steps`` L-BFGS iterations (strong-Wolfe line search) or Adam steps with learning rate
    ``lr``. ``normalize``: the optimiser sees the loss relative to its initial value (O(1)
    values and gradients). ``max_seconds``: the run ends once that much time has passed, within
    a line search too (the best accepted iterate is kept). ``patience`` > 0: it ends once the
    best loss improved by less than ``tolerance`` (relative) over the last ``patience`` steps.
    ``step_offset`` and ``time_offset`` shift the curve's steps and times (a second stage goes
    on from the first). ``on_stall``: called when the line search cannot move twice running;
    it may make the loss more exact (e.g. leave bf16) and return True to go on, else the run
    has converged. ``callback`` gets ``{"step", "elapsed_s", "loss_total"}`` after each step.
    """

    steps: int
    optimizer: str = "lbfgs"
    lr: float = 0.02
    normalize: bool = False
    max_seconds: float | None = None
    tolerance: float = 0.0
    patience: int = 0
    step_offset: int = 0
    time_offset: float = 0.0
    on_stall: Callable[[], bool] | None = None
    callback: StepCallback | None = None

    @classmethod
    def of(cls, config: TransferConfig, **changes: Any) -> OptimizeOptions:
        """The steps, optimiser and learning rate of a resolved ``config``, with ``changes``."""
        return cls(
            **{"steps": config.steps, "optimizer": config.optimizer, "lr": config.lr, **changes}
        )


@dataclass
class OptimizeResult:
    """The best iterate of a run and its record."""

    best: Tensor  # minimize: the free variable; optimize: the image [B, 3, H, W]
    status: str  # ok or diverged
    error: str | None
    losses: list[dict[str, float]]  # per sample, weighted terms and total
    curves: list[list[dict[str, float]]]  # per sample
    steps: int
    seconds: float


class _NonFinite(RuntimeError):
    """A loss or gradient that is not a finite number."""


class _OutOfTime(RuntimeError):
    """The time budget ran out within a line search."""


class _Converged(Exception):
    """The line search cannot move and the loss cannot be made more exact."""


class _Diverged(RuntimeError):
    """The loss exploded or kept rising."""


def _terms(parts: dict[str, Tensor], i: int) -> dict[str, float]:
    return {name: float(parts[name][i]) if name in parts else 0.0 for name in LOSS_TERMS}


def _row(step: int, elapsed: float, parts: dict[str, Tensor], i: int) -> dict[str, float]:
    terms = _terms(parts, i)
    row: dict[str, float] = {"step": step, "elapsed_s": elapsed, "loss_total": sum(terms.values())}
    row.update({f"loss_{name}": value for name, value in terms.items()})
    return row


class _Evaluations:
    """The objective where the variable stands, as the optimiser sees it.

    Memoised by iterate, so the re-evaluation torch's LBFGS makes at the start of each step costs
    nothing; a non-finite loss or gradient raises ``_NonFinite``; with ``normalize`` the loss is
    divided by the first value; past the time budget a new point raises ``_OutOfTime``.
    """

    def __init__(
        self, param: Tensor, objective: Objective, options: OptimizeOptions, start: float
    ) -> None:
        self.param = param
        self.objective = objective
        self.normalize = options.normalize
        self.max_seconds = options.max_seconds
        self.start = start
        self.memo: list[tuple[Tensor, Tensor, Tensor, dict[str, Tensor]]] = []
        self.scale: float | None = None

    def forget(self) -> None:
        """The loss changed: evaluate afresh, and normalise by the next value."""
        self.memo.clear()
        self.scale = None

    def __call__(self) -> tuple[Tensor, dict[str, Tensor]]:
        param = self.param
        for seen, total, grad, parts in self.memo:
            if torch.equal(seen, param.detach()):
                param.grad = grad.clone()
                return total, parts
        if (
            self.memo
            and self.max_seconds is not None
            and time.perf_counter() - self.start >= self.max_seconds
        ):
            raise _OutOfTime  # within a line search: stop with the best accepted iterate
        param.grad = None
        parts = self.objective(param)
        total = sum(parts.values()).sum()
        if not torch.isfinite(total):
            raise _NonFinite(f"loss became {float(total.detach())}")
        if self.normalize:
            if self.scale is None:
                self.scale = abs(float(total.detach())) or 1.0
            total = total / self.scale
        total.backward()
        if not torch.isfinite(param.grad).all():
            raise _NonFinite("gradient became non-finite")
        detached = {k: v.detach() for k, v in parts.items()}
        self.memo.append((param.detach().clone(), total.detach(), param.grad.clone(), detached))
        del self.memo[:-4]
        return total.detach(), detached


class _Run:
    """One minimisation's state: the optimiser, the best iterate, the recovery counters."""

    def __init__(
        self,
        param: Tensor,
        evaluate: _Evaluations,
        options: OptimizeOptions,
        initial: float,
        parts: dict[str, Tensor],
    ) -> None:
        self.param = param
        self.evaluate = evaluate
        self.options = options
        self.lbfgs = options.optimizer == "lbfgs"
        self.opt = self._optimizer()
        self.initial = initial
        self.best_value, self.best_parts = initial, parts
        self.best_param = param.detach().clone()
        self.history = [initial]  # the best value after each step
        self.previous = param.detach().clone()
        self.stalled = False
        self.restarts = 0
        self.bad_trials = 0

    def _optimizer(self) -> torch.optim.Optimizer:
        if self.lbfgs:
            return torch.optim.LBFGS(
                # max_eval bounds the line search of each one-iteration step (torch's default,
                # 5/4 of max_iter, would leave it no evaluation at all).
                [self.param],
                lr=1.0,
                max_iter=1,
                max_eval=1 + LINE_SEARCH_EVALS,
                history_size=100,
                line_search_fn="strong_wolfe",
                tolerance_grad=0.0,
                tolerance_change=1e-12,
            )
        return torch.optim.Adam([self.param], lr=self.options.lr)

    def step(self) -> tuple[Tensor, dict[str, Tensor]]:
        """One step: the loss where it ends (L-BFGS) or where it started (Adam)."""
        if not self.lbfgs:
            self.opt.zero_grad(set_to_none=True)
            value, parts = self.evaluate()
            self.opt.step()
            return value, parts
        try:
            self.opt.step(lambda: self.evaluate()[0])
            self.bad_trials = 0
        except _NonFinite:
            # A trial point of the line search (not an accepted iterate) was not finite: step
            # back once and go on as after a line search that could not move; the same again
            # at once means the loss itself is broken.
            self.bad_trials += 1
            if self.bad_trials > 1:
                raise
            with torch.no_grad():
                self.param.copy_(self.previous)
        return self.evaluate()  # memoised: the line search already evaluated it

    def accept(
        self, step: int, value: Tensor, parts: dict[str, Tensor]
    ) -> tuple[float, dict[str, Tensor]]:
        """Judge where the step ended; the loss to record for it."""
        value_f = float(value)
        if self.lbfgs and torch.equal(self.param.detach(), self.previous):
            value_f, parts = self._stalled(value_f, parts)
        else:
            self.stalled = False
        self.previous = self.param.detach().clone()
        if value_f > EXPLOSION_FACTOR * max(self.initial, 1e-12):
            raise _Diverged(f"loss exploded to {value_f:.4g} at step {step}")
        if value_f < self.best_value:
            self.best_value, self.best_parts = value_f, parts
            self.best_param = self.param.detach().clone()
        elif self.lbfgs and value_f > self.best_value * (1 + RESTART_TOLERANCE):
            value_f, parts = self._restart(step)
        self.history.append(self.best_value)
        return value_f, parts

    def _stalled(self, value_f: float, parts: dict[str, Tensor]) -> tuple[float, dict[str, Tensor]]:
        """The line search found no lower point along the L-BFGS direction: drop the history and
        try steepest descent; if that cannot move either, ``on_stall`` may make the loss more
        exact (the run goes on from here, its best reset), else it has converged."""
        if self.stalled:
            on_stall = self.options.on_stall
            if on_stall is None or not on_stall():
                raise _Converged
            self.evaluate.forget()
            value, parts = self.evaluate()
            value_f = self.best_value = float(value)
            self.best_parts, self.best_param = parts, self.param.detach().clone()
            self.history = [self.best_value]
        self.stalled = True
        self.opt = self._optimizer()
        return value_f, parts

    def _restart(self, step: int) -> tuple[float, dict[str, Tensor]]:
        """The loss rose: back to the best iterate with a fresh L-BFGS history."""
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            raise _Diverged(f"loss kept rising (step {step})")
        with torch.no_grad():
            self.param.copy_(self.best_param)
        self.opt = self._optimizer()
        return self.best_value, self.best_parts

    def patience_ran_out(self) -> bool:
        """The best loss improved by less than the tolerance over the last ``patience`` steps."""
        patience, history = self.options.patience, self.history
        return (
            patience > 0
            and len(history) > patience
            and history[-1 - patience] - self.best_value
            <= self.options.tolerance * abs(self.best_value)
        )


def minimize(param0: Tensor, objective: Objective, options: OptimizeOptions) -> OptimizeResult:
    """The one optimiser loop: minimise the batch sum of ``objective(param)`` from ``param0``.

    Each step is one L-BFGS iteration (or one Adam step). A non-finite or exploding loss, or
    one that keeps rising after ``MAX_RESTARTS`` restarts from the best iterate, ends the run
    with status ``diverged``; the best iterate seen is returned either way, with each sample's
    weighted terms and its curve (see ``OptimizeOptions`` for the budget, patience and stalls).
    """
    start = time.perf_counter()
    param = param0.detach().clone().requires_grad_(True)
    evaluate = _Evaluations(param, objective, options, start)
    batch = param0.shape[0]
    curves: list[list[dict[str, float]]] = [[] for _ in range(batch)]
    try:
        initial, parts = evaluate()
    except _NonFinite as exc:
        seconds = time.perf_counter() - start
        empty: list[dict[str, float]] = [{} for _ in range(batch)]
        return OptimizeResult(
            param0.detach().clone(), "diverged", str(exc), empty, curves, 0, seconds
        )
    run = _Run(param, evaluate, options, float(initial), parts)
    elapsed = options.time_offset + time.perf_counter() - start
    for i in range(batch):
        curves[i].append(_row(options.step_offset, elapsed, parts, i))
    status, error, done = "ok", None, 0
    for step in range(1, options.steps + 1):
        try:
            value, parts = run.step()
            done = step
            value_f, parts = run.accept(step, value, parts)
        except (_OutOfTime, _Converged):
            break
        except _NonFinite as exc:
            status, error = "diverged", f"stopped at step {step}: {exc}"
            break
        except _Diverged as exc:
            status, error = "diverged", str(exc)
            break
        elapsed = options.time_offset + time.perf_counter() - start
        for i in range(batch):
            curves[i].append(_row(step + options.step_offset, elapsed, parts, i))
        if options.callback is not None:
            row = {"step": step + options.step_offset, "elapsed_s": elapsed, "loss_total": value_f}
            options.callback(row)
        if options.max_seconds is not None and time.perf_counter() - start >= options.max_seconds:
            break
        if run.patience_ran_out():
            break
    losses = []
    for i in range(batch):
        terms = _terms(run.best_parts, i)
        losses.append({**terms, "total": sum(terms[name] for name in LOSS_TERMS)})
    seconds = time.perf_counter() - start
    return OptimizeResult(run.best_param, status, error, losses, curves, done, seconds)


def optimize(init: Tensor, loss_fn: LossFn, options: OptimizeOptions) -> OptimizeResult:
    """``minimize`` over images: ``best`` is the best image, in [0, 1], of ``init``'s dtype.

    The image is ``to_image(y)`` of a free float64 variable ``y``: with losses of 1e10 and
    more, the line search's curvature terms (gradient squared) overflow float32 into NaN. A run
    that diverged before its first step returns ``init``.
    """
    y0 = from_image(init).detach().double()
    result = minimize(y0, lambda y: loss_fn(to_image(y).to(init.dtype)), options)
    if result.steps == 0 and result.status == "diverged":
        return dataclasses.replace(result, best=init.detach().clone())
    with torch.no_grad():
        return dataclasses.replace(result, best=to_image(result.best).clamp(0, 1).to(init.dtype))


@contextlib.contextmanager
def timer(seconds: dict[str, float], key: str) -> Iterator[None]:
    """Add the wall time of the block to ``seconds[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
