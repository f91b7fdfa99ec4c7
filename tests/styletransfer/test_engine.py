"""The optimiser loop on pure functions: range map, convergence, divergence guard, determinism."""

from __future__ import annotations

import os

import torch

from styletransfer.engine import OptimizeOptions, from_image, optimize, to_image


def test_range_map_is_smooth_monotone_and_invertible():
    y = torch.linspace(-5, 6, 1001, dtype=torch.float64)
    x = to_image(y)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert bool((x[1:] >= x[:-1]).all())
    middle = to_image(torch.linspace(-0.2, 1.2, 101, dtype=torch.float64))
    assert bool((middle[1:] > middle[:-1]).all())
    inside = torch.linspace(0.2, 0.8, 7)
    assert torch.allclose(to_image(inside), inside, atol=1e-5)
    image = torch.rand(1, 3, 6, 6)
    assert torch.allclose(to_image(from_image(image)), image.clamp(1 / 510, 1 - 1 / 510), atol=1e-5)


def _quadratic(target):
    def loss(image):
        return {"content": ((image - target) ** 2).flatten(1).sum(1)}

    return loss


def test_lbfgs_reaches_an_in_range_minimum_and_clipped_targets_stay_valid():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 5, 5) * 1.4 - 0.2  # partly outside [0, 1]
    init = torch.full_like(target, 0.5)
    result = optimize(init, _quadratic(target), OptimizeOptions(steps=60))
    assert result.status == "ok"
    assert float(result.best.min()) >= 0 and float(result.best.max()) <= 1
    assert torch.allclose(result.best, target.clamp(0, 1), atol=0.05)
    totals = [row["loss_total"] for row in result.curves[0]]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(totals, totals[1:], strict=False))
    assert len(result.curves) == 2 and result.losses[0]["total"] < totals[0]


def test_nan_stops_the_run_with_the_best_iterate():
    target = torch.rand(1, 3, 4, 4)
    calls = {"n": 0}

    def loss(image):
        calls["n"] += 1
        value = ((image - target) ** 2).flatten(1).sum(1)
        return {"content": value * float("nan") if calls["n"] > 6 else value}

    result = optimize(torch.full_like(target, 0.5), loss, OptimizeOptions(steps=50))
    assert result.status == "diverged" and "step" in result.error
    assert torch.isfinite(result.best).all()
    first = float(((torch.full_like(target, 0.5) - target) ** 2).sum())
    assert result.losses[0]["total"] < first


def test_explosion_is_caught_with_adam():
    target = torch.rand(1, 3, 4, 4)
    calls = {"n": 0}

    def loss(image):
        calls["n"] += 1
        value = ((image - target) ** 2).flatten(1).sum(1) + 1e-3
        return {"style": value * (1e6 if calls["n"] > 5 else 1.0)}

    result = optimize(
        torch.full_like(target, 0.5), loss, OptimizeOptions(steps=30, optimizer="adam", lr=0.05)
    )
    assert result.status == "diverged" and "exploded" in result.error
    assert result.steps < 30


def test_runs_are_deterministic():
    target = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    a = optimize(torch.full_like(target, 0.5), _quadratic(target), OptimizeOptions(steps=10))
    b = optimize(torch.full_like(target, 0.5), _quadratic(target), OptimizeOptions(steps=10))
    assert torch.equal(a.best, b.best)


def test_a_stalled_line_search_switches_to_the_exact_loss():
    target = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(4)) * 0.6 + 0.2
    state = {"coarse": True, "switches": 0}

    def loss(image):
        value = ((image - target) ** 2).flatten(1).sum(1)
        if state["coarse"]:  # values rounded to 0.05, gradients exact: like a low precision
            value = value + (torch.round(value * 20) / 20 - value).detach()
        return {"content": value}

    def on_stall():
        state["switches"] += 1
        was_coarse, state["coarse"] = state["coarse"], False
        return was_coarse

    result = optimize(
        torch.full_like(target, 0.5), loss, OptimizeOptions(steps=80, on_stall=on_stall)
    )
    assert state["switches"] >= 1 and not state["coarse"]
    assert result.status == "ok" and result.losses[0]["total"] < 1e-6


def test_aten_cpu_capability_avx2_turns_bf16_autocast_off():
    """ATEN_CPU_CAPABILITY=avx2 stands in for a CPU without bf16 units: fp32 everywhere."""
    import subprocess
    import sys

    code = (
        "import torch; from styletransfer.device import autocast_dtype, cpu_has_bf16; "
        "print(torch.backends.cpu.get_cpu_capability(), cpu_has_bf16(), "
        "autocast_dtype(torch.device('cpu'), True))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["AVX2", "False", "None"]
