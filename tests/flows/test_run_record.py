"""One place maps a transfer result to a ``runs`` row, tied to storage/schemas.py."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone

from PIL import Image

from flows.batch import PHASES, RunOutcome, curve_points, run_record
from storage import SCHEMAS, CurvePoint, RunRecord, WorkItem
from styletransfer import TransferConfig, TransferResult
from styletransfer.engine import LOSS_TERMS
from styletransfer.quality import QUALITY_METRICS

# Columns an ok run may leave null: no error, and a closed form measures no loss.
NULL_WHEN_OK = {"error"}
CONFIG = TransferConfig(method="gatys", size=32, steps=2)


def _item() -> WorkItem:
    return WorkItem(
        pair_id="p1",
        content_id="c1",
        content_path="images/c1.png",
        style_ids=("s1", "s2"),
        style_paths=("images/s1.png", "images/s2.png"),
        style_weights=(0.5, 0.5),
        config=CONFIG.to_json(),
        config_hash=CONFIG.config_hash(),
        experiment="night",
    )


def _result() -> TransferResult:
    losses = {"total": 3.0, **{name: float(i + 1) for i, name in enumerate(LOSS_TERMS)}}
    row = {"step": 1, "elapsed_s": 0.5, **{f"loss_{k}": v for k, v in losses.items()}}
    return TransferResult(
        image=Image.new("RGB", (32, 32)),
        status="ok",
        error=None,
        device="cpu",
        height=32,
        width=32,
        steps=2,
        seconds={"prepare": 0.1, "laplacian": 0.0, "optimize": 0.2},
        losses=losses,
        curve=[row],
        config=CONFIG.resolved(),
        quality={"ssim": 0.5, "colour_distance": 2.0, "affine_residual": 0.01},
        mask_source="given",
    )


def _outcome(result: TransferResult | None) -> RunOutcome:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    seconds = {name: 0.1 * (i + 1) for i, name in enumerate(PHASES)}
    seconds.update(total=1.0, wall=2.5, wait=0.4)
    return RunOutcome(
        _item(),
        "r1",
        result,
        "ValueError: boom" if result is None else None,
        seconds,
        start,
        start + timedelta(seconds=2.5),
        "outputs/r1.png" if result is not None else None,
    )


def test_an_ok_run_fills_every_column_of_the_runs_schema():
    record = run_record(_outcome(_result()), host="h", version="v")
    row = record.row()
    assert list(row) == SCHEMAS["runs"].names  # the record is the schema (test_records too)
    empty = {k for k, v in row.items() if v is None or v == ()}
    assert empty == NULL_WHEN_OK, f"columns the mapping leaves empty: {sorted(empty)}"
    assert row["experiment"] == "night"
    # Each loss term, quality metric and phase has its column, filled from the result.
    result = _result()
    for name in ("total", *LOSS_TERMS):
        assert row[f"loss_{name}"] == result.losses[name]
    for name in QUALITY_METRICS:
        assert row[f"quality_{name}"] == result.quality[name]
    for name in (*PHASES, "total", "wall", "wait"):
        assert row[f"seconds_{name}"] == _outcome(None).seconds[name]
    assert row["mask_source"] == "given"  # carried from the TransferResult
    assert row["config"] == result.config.to_json() and row["config_hash"] == _item().config_hash
    assert row["style_ids"] == ["s1", "s2"]


def test_a_run_that_failed_before_running_keeps_its_plan_and_timings():
    row = run_record(_outcome(None), host="h", version="v").row()
    assert row["status"] == "failed" and row["error"] == "ValueError: boom"
    assert (row["method"], row["config"]) == ("gatys", CONFIG.to_json())
    assert row["seconds_wall"] == 2.5 and row["mask_source"] is None
    assert all(row[f"loss_{name}"] is None for name in LOSS_TERMS)


def test_unmeasured_losses_are_null_and_curves_fill_every_column():
    result = _result()
    result.losses = {k: math.nan for k in result.losses}
    row = run_record(_outcome(result), host="h", version="v").row()
    assert all(row[f"loss_{name}"] is None for name in ("total", *LOSS_TERMS))
    points = curve_points(_outcome(_result()))
    fields = [f.name for f in dataclasses.fields(CurvePoint)]
    assert fields == SCHEMAS["loss_curves"].names
    assert all(getattr(points[0], f) is not None for f in fields)
    assert isinstance(run_record(_outcome(None), host="h", version="v"), RunRecord)
