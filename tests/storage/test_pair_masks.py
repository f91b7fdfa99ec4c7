"""Segmentation masks as data: stored by sha256, carried by pairs and work items, old files read."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq

from storage import (
    SCHEMAS,
    Decision,
    ImageRecord,
    PairRecord,
    PlannedConfig,
    RunRecord,
    Store,
    WorkItem,
)

NEW_PAIR_COLUMNS = ("content_mask", "style_masks", "mask_source")


def test_masks_are_stored_by_content_beside_the_images(data_dir):
    store = Store(data_dir)
    data = b"\x89PNG\r\n\x1a\n a mask's bytes"
    sha = hashlib.sha256(data).hexdigest()
    first = store.put_mask(data, "png")
    assert (first.image_id, first.path, first.existed) == (sha, f"masks/{sha[:2]}/{sha}.png", False)
    assert store.read_bytes(first.path) == data
    again = store.put_mask(data, "PNG")
    assert again.path == first.path and again.existed
    assert store.disk_usage("masks") == (1, len(data)) and store.disk_usage("images") == (0, 0)


def _catalog(store: Store) -> None:
    store.catalog.record(
        [
            ImageRecord("c1", path="images/c1/c1.png", role="content"),
            ImageRecord("s1", path="images/s1/s1.png", role="style"),
        ],
        [Decision("c1", "accepted"), Decision("s1", "accepted")],
    )


def _old_file(store: Store, table: str, row: dict, dropped: tuple[str, ...]) -> None:
    """A Parquet file written before ``dropped`` were columns of ``table``."""
    schema = SCHEMAS[table]
    old = pa.schema([f for f in schema if f.name not in dropped])
    path = store.loc.join("tables", table, "part-00000000T000000000000-old.parquet")
    store.loc.fs.makedirs(store.loc.join("tables", table), exist_ok=True)
    pq.write_table(pa.Table.from_pylist([row], schema=old), path)


def test_old_pairs_and_runs_files_read_with_null_masks_and_new_pairs_carry_theirs(data_dir):
    store = Store(data_dir)
    _catalog(store)
    old_pair = {"pair_id": "old", "content_id": "c1", "style_ids": ["s1"], "style_weights": [1.0]}
    _old_file(store, "pairs", {**old_pair, "strategy": "all"}, NEW_PAIR_COLUMNS)
    _old_file(store, "runs", {"run_id": "r0", "pair_id": "old", "status": "ok"}, ("mask_source",))
    masks = ("masks/aa/aa.png", ("masks/bb/bb.png",))
    store.catalog.record_pairs(
        [PairRecord("new", "c1", ("s1",), (1.0,), "imported", None, *masks, mask_source="given")]
    )
    store.runs.record([RunRecord("r1", pair_id="new", mask_source="given")])

    pairs = {p["pair_id"]: p for p in store.read("pairs").to_pylist()}
    assert [pairs["old"][c] for c in NEW_PAIR_COLUMNS] == [None, None, None]
    assert pairs["new"]["content_mask"] == "masks/aa/aa.png"
    assert pairs["new"]["style_masks"] == ["masks/bb/bb.png"]
    runs = store.query("SELECT run_id, mask_source FROM runs ORDER BY run_id").to_pylist()
    assert runs == [{"run_id": "r0", "mask_source": None}, {"run_id": "r1", "mask_source": "given"}]

    items = {i.pair_id: i for i in store.runs.pending([PlannedConfig("{}", "h")])}
    assert (items["old"].content_mask, items["old"].style_masks) == (None, ())
    assert items["new"].content_mask == "masks/aa/aa.png"
    assert items["new"].style_masks == ("masks/bb/bb.png",)
    assert WorkItem.from_dict(items["new"].to_dict()) == items["new"]
    # a work item planned before masks existed (e.g. queued in a Prefect run) still loads
    planned = {
        k: v for k, v in items["old"].to_dict().items() if k not in ("content_mask", "style_masks")
    }
    assert WorkItem.from_dict(planned) == items["old"]


def test_pairs_made_by_a_strategy_say_they_have_no_masks(data_dir):
    store = Store(data_dir)
    store.catalog.record_pairs([PairRecord("p", "c1", ("s1",), (1.0,), "all")])
    (row,) = store.read("pairs").to_pylist()
    assert (row["mask_source"], row["content_mask"], row["style_masks"]) == ("none", None, None)
