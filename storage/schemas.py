"""The pyarrow schemas of every stylebench table, in one place.

Columns may be added (old files still read: queries use ``union_by_name``);
none may be renamed or dropped without a migration.
"""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

IMAGES = pa.schema(
    [
        ("image_id", pa.string()),  # sha256 of the stored bytes
        ("path", pa.string()),  # relative to the data directory
        ("role", pa.string()),  # content | style
        ("query", pa.string()),
        ("engine", pa.string()),
        ("rank", pa.int32()),
        ("image_url", pa.string()),
        ("page_url", pa.string()),
        ("license", pa.string()),
        ("license_url", pa.string()),
        ("creator", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("format", pa.string()),
        ("bytes", pa.int64()),
        ("phash", pa.string()),
        ("blur", pa.float64()),
        ("is_grayscale", pa.bool_()),
        ("fetched_at", TS),
        ("batch_id", pa.string()),
        ("title", pa.string()),  # as the source gives it
        ("date", pa.string()),  # the work's date as the source states it ("ca. 1660")
        ("size_taken", pa.string()),  # the rendition fetched ("original", "large 2048", ...)
    ]
)

CURATION = pa.schema(
    [
        ("image_id", pa.string()),
        ("status", pa.string()),  # accepted | rejected
        ("reason", pa.string()),
        ("decided_by", pa.string()),  # auto | user
        ("decided_at", TS),
    ]
)

PAIRS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("content_id", pa.string()),
        ("style_ids", pa.list_(pa.string())),
        ("style_weights", pa.list_(pa.float64())),
        ("strategy", pa.string()),
        ("created_at", TS),
        # Segmentation masks (colour label images) stored under masks/, when the pair has them:
        # one for the content, one per style in the order of style_ids.
        ("content_mask", pa.string()),
        ("style_masks", pa.list_(pa.string())),
        ("mask_source", pa.string()),  # given | none
    ]
)

RUNS = pa.schema(
    [
        ("run_id", pa.string()),
        ("pair_id", pa.string()),
        ("content_id", pa.string()),
        ("style_ids", pa.list_(pa.string())),
        ("method", pa.string()),
        ("feature_model", pa.string()),
        ("config", pa.string()),  # JSON
        ("config_hash", pa.string()),
        ("device", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("steps", pa.int32()),
        ("status", pa.string()),  # ok | failed | diverged
        ("error", pa.string()),
        # Seconds of a run by phase (its share where a stacked batch ran together):
        # seconds_total = load + prepare + laplacian + optimize, the run without scoring and
        # writing; prepare: the method's set-up (feature network, style targets, moving
        # tensors); laplacian: building the matting Laplacian; optimize: the optimisation,
        # closed form or forward pass. The load, score, write, wall and wait columns follow.
        ("seconds_total", pa.float64()),
        ("seconds_prepare", pa.float64()),
        ("seconds_optimize", pa.float64()),
        ("seconds_laplacian", pa.float64()),
        ("loss_total", pa.float64()),
        ("loss_content", pa.float64()),
        ("loss_style", pa.float64()),
        ("loss_tv", pa.float64()),
        ("loss_photoreal", pa.float64()),
        ("output_path", pa.string()),
        ("started_at", TS),  # the run's own span: the start of its first phase
        ("finished_at", TS),  # and the end of its last (its output written)
        ("host", pa.string()),
        ("stylebench_version", pa.string()),
        # Quality of the output (styletransfer.quality), independent of any loss network:
        # luma SSIM against the content, per-segment sliced Wasserstein-2 distance to the
        # style in CIELAB, share of local variance not explained by a local affine map.
        ("quality_ssim", pa.float64()),
        ("quality_colour_distance", pa.float64()),
        ("quality_affine_residual", pa.float64()),
        # load: reading and resizing the run's images (styles shared by a batch: a share);
        # score: the quality metrics; write: encoding and writing the output; wall: the span,
        # finished_at - started_at, what the user waited for this run; wait: the part of the
        # span spent on no phase of this run (queued for the accelerator or a worker, waiting
        # for an idle core, or on the other images of its stacked batch). A CPU batch's worker
        # at the lowest priority times load, score and write by its CPU time. load + prepare +
        # laplacian + optimize + score + write + wait = wall.
        ("seconds_load", pa.float64()),
        ("seconds_score", pa.float64()),
        ("seconds_write", pa.float64()),
        ("seconds_wall", pa.float64()),
        ("seconds_wait", pa.float64()),
        # Where the run's segment correspondence came from: given (the pair's masks), auto
        # (found by the method from the two photos) or none (one global style).
        ("mask_source", pa.string()),
        ("experiment", pa.string()),  # the name of the experiment that planned the run
    ]
)

LOSS_CURVES = pa.schema(
    [
        ("run_id", pa.string()),
        ("step", pa.int32()),
        ("elapsed_s", pa.float64()),
        ("loss_total", pa.float64()),
        ("loss_content", pa.float64()),
        ("loss_style", pa.float64()),
        ("loss_tv", pa.float64()),
        ("loss_photoreal", pa.float64()),
    ]
)

LOSS_MATRIX = pa.schema(
    [
        ("experiment_id", pa.string()),
        ("feature_model", pa.string()),
        ("image_a", pa.string()),
        ("image_b", pa.string()),
        ("content_loss", pa.float64()),
        ("style_loss", pa.float64()),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "images": IMAGES,
    "curation": CURATION,
    "pairs": PAIRS,
    "runs": RUNS,
    "loss_curves": LOSS_CURVES,
    "loss_matrix": LOSS_MATRIX,
}

TABLES: tuple[str, ...] = tuple(SCHEMAS)


def schema_for(table: str) -> pa.Schema:
    """Return the schema of ``table`` or raise a ValueError listing the tables."""
    try:
        return SCHEMAS[table]
    except KeyError:
        raise ValueError(f"unknown table {table!r}; the tables are: {', '.join(TABLES)}") from None
