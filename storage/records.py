"""Typed records, one per table row, with the columns of ``storage/schemas.py`` (a test checks).

Code outside ``storage/`` builds these instead of dicts; ``row()`` gives the dict the
table writer takes. Unset fields are nulls.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any


def now() -> datetime:
    return datetime.now(timezone.utc)


class _Record:
    def row(self) -> dict[str, Any]:
        values = asdict(self)  # type: ignore[call-overload]
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


@dataclass(frozen=True)
class ImageRecord(_Record):
    """One sighting of an image (``images``): the stored file and where it was found."""

    image_id: str
    path: str | None = None
    role: str | None = None
    query: str | None = None
    engine: str | None = None
    rank: int | None = None
    image_url: str | None = None
    page_url: str | None = None
    license: str | None = None
    license_url: str | None = None
    creator: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    bytes: int | None = None
    phash: str | None = None
    blur: float | None = None
    is_grayscale: bool | None = None
    fetched_at: datetime | None = None
    batch_id: str | None = None
    title: str | None = None
    date: str | None = None
    size_taken: str | None = None


@dataclass(frozen=True)
class Decision(_Record):
    """One curation decision (``curation``); the latest per image wins."""

    image_id: str
    status: str  # accepted | rejected
    reason: str | None = None
    decided_by: str = "auto"  # auto | user
    decided_at: datetime = field(default_factory=now)


@dataclass(frozen=True)
class PairRecord(_Record):
    """A content image with the styles blended on it (``pairs``)."""

    pair_id: str
    content_id: str
    style_ids: tuple[str, ...]
    style_weights: tuple[float, ...]
    strategy: str
    created_at: datetime = field(default_factory=now)
    # colour label images under masks/: the content's and one per style (None: no masks)
    content_mask: str | None = None
    style_masks: tuple[str, ...] | None = None
    mask_source: str | None = "none"  # given | none


@dataclass(frozen=True)
class RunRecord(_Record):
    """One style-transfer run of a (pair, config) (``runs``)."""

    run_id: str
    pair_id: str | None = None
    content_id: str | None = None
    style_ids: tuple[str, ...] = ()
    method: str | None = None
    feature_model: str | None = None
    config: str | None = None  # JSON of the settings that ran
    config_hash: str | None = None  # the planned config's hash: what "done" is keyed on
    device: str | None = None
    height: int | None = None
    width: int | None = None
    steps: int | None = None
    status: str = "ok"  # ok | failed | diverged
    error: str | None = None
    seconds_total: float | None = None
    seconds_prepare: float | None = None
    seconds_optimize: float | None = None
    seconds_laplacian: float | None = None
    loss_total: float | None = None
    loss_content: float | None = None
    loss_style: float | None = None
    loss_tv: float | None = None
    loss_photoreal: float | None = None
    output_path: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    host: str | None = None
    stylebench_version: str | None = None
    # the output's quality (styletransfer.quality), independent of any loss network
    quality_ssim: float | None = None
    quality_colour_distance: float | None = None
    quality_affine_residual: float | None = None
    # the phases not in seconds_total, the span and the rest of it (schemas.RUNS says more)
    seconds_load: float | None = None
    seconds_score: float | None = None
    seconds_write: float | None = None
    seconds_wall: float | None = None
    seconds_wait: float | None = None
    mask_source: str | None = None  # given | auto | none; null: failed, the pair had no masks
    experiment: str | None = None  # the name of the experiment that planned the run


@dataclass(frozen=True)
class CurvePoint(_Record):
    """One step of a run's loss curve (``loss_curves``)."""

    run_id: str
    step: int
    elapsed_s: float | None = None
    loss_total: float | None = None
    loss_content: float | None = None
    loss_style: float | None = None
    loss_tv: float | None = None
    loss_photoreal: float | None = None


@dataclass(frozen=True)
class MatrixCell(_Record):
    """The losses between two images under one feature network (``loss_matrix``)."""

    experiment_id: str
    feature_model: str
    image_a: str
    image_b: str
    content_loss: float | None = None
    style_loss: float | None = None


RECORDS: dict[str, type[_Record]] = {
    "images": ImageRecord,
    "curation": Decision,
    "pairs": PairRecord,
    "runs": RunRecord,
    "loss_curves": CurvePoint,
    "loss_matrix": MatrixCell,
}
