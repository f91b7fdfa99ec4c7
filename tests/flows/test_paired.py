"""Paired datasets with masks: finding the pairs, checks, idempotent import, stylize with masks."""

from __future__ import annotations

import pytest
from PIL import Image

from flows.paired import find_pairs, import_pairs
from storage import Store

from .paired_data import BLUE, GREEN, RED, halves, paths, write_pair


def _rows(store: Store) -> dict[str, int]:
    counts = {t: store.read(t).num_rows for t in ("images", "curation", "pairs")}
    counts["masks"] = store.disk_usage("masks")[0]
    counts["images_files"] = store.disk_usage("images")[0]
    return counts


def test_both_layouts_are_found_and_extra_files_are_counted(tmp_path):
    authors, flat = tmp_path / "authors", tmp_path / "flat"
    for n in (1, 2):
        write_pair(authors, "authors", n)
        write_pair(flat, "flat", n)
    write_pair(flat, "flat", 3, masks=False)
    (authors / "final_results").mkdir()
    Image.new("RGB", (8, 8)).save(authors / "final_results" / "best1.png")
    Image.new("RGB", (8, 8)).save(flat / "luan1.png")
    Image.new("RGB", (8, 8)).save(flat / "luan2.png")
    (flat / "README.md").write_text("pairs")

    got = find_pairs(authors)
    assert got.layout == "authors" and [p.number for p in got.pairs] == [1, 2]
    assert got.pairs[0].content_mask == paths(authors.resolve(), "authors", 1)["content_mask"]
    assert got.ignored == {"final_results/ (a folder)": 1} and got.problems == ()

    got = find_pairs(flat)
    assert got.layout == "flat" and [p.number for p in got.pairs] == [1, 2, 3]
    assert got.pairs[2].content_mask is None and got.pairs[2].style_mask is None
    assert got.ignored == {"luanN": 2, "other": 1}


def test_import_lands_photos_masks_and_pairs_once_and_a_changed_mask_is_a_new_pair(tmp_path):
    folder = tmp_path / "pairs"
    files = write_pair(folder, "flat", 1)
    write_pair(folder, "flat", 2, masks=False)
    store = Store(str(tmp_path / "data"))

    dry = import_pairs(store, folder, dry_run=True)
    assert (dry.found, dry.new, dry.with_masks, dry.images_new, dry.masks_new) == (2, 2, 1, 4, 2)
    assert _rows(store) == {"images": 0, "curation": 0, "pairs": 0, "masks": 0, "images_files": 0}

    first = import_pairs(store, folder)
    assert (first.new, first.known, first.images_new, first.masks_new) == (2, 0, 4, 2)
    assert first.refused == () and first.pair_ids == dry.pair_ids
    pairs = {p["pair_id"]: p for p in store.read("pairs").to_pylist()}
    masked = next(p for p in pairs.values() if p["mask_source"] == "given")
    plain = next(p for p in pairs.values() if p["mask_source"] == "none")
    assert masked["strategy"] == "imported" and masked["style_weights"] == [1.0]
    assert masked["content_mask"].startswith("masks/") and len(masked["style_masks"]) == 1
    assert plain["content_mask"] is None and plain["style_masks"] is None
    # the stored mask is the file's bytes, content-addressed
    assert store.read_bytes(masked["content_mask"]) == files["content_mask"].read_bytes()
    catalog = store.catalog.select()
    assert {r["status"] for r in catalog} == {"accepted"}
    assert {r["engine"] for r in catalog} == {"local"}
    assert {r["query"] for r in catalog} == {str(folder.resolve())}
    titles = {r["title"]: r["role"] for r in catalog}
    assert titles == {"in1.png": "content", "tar1.png": "style", "in2.png": "content",
                      "tar2.png": "style"}  # fmt: skip
    before = _rows(store)

    again = import_pairs(store, folder)
    assert (again.new, again.known, again.images_new, again.masks_new) == (0, 2, 0, 0)
    assert _rows(store) == before

    halves(BLUE, RED, size=(24, 16)).save(files["style_mask"])  # the same labels, half size
    changed = import_pairs(store, folder)
    assert (changed.new, changed.known, changed.masks_new, changed.images_new) == (1, 1, 1, 0)
    after = _rows(store)
    assert after["pairs"] == before["pairs"] + 1 and after["images"] == before["images"]
    assert after["masks"] == before["masks"] + 1
    again = import_pairs(store, folder)
    assert again.new == 0 and _rows(store) == after


def test_pairs_that_fail_a_check_are_refused_by_file_and_the_others_imported(tmp_path, probe):
    folder = tmp_path / "pairs"
    write_pair(folder, "authors", 1)
    write_pair(folder, "authors", 2, content_mask=halves(RED, BLUE, size=(48, 24)))
    write_pair(folder, "authors", 3, style_mask=halves(GREEN, GREEN))
    write_pair(folder, "authors", 4, content_mask=halves(RED, BLUE, size=(24, 16)))  # scaled
    where = write_pair(folder, "authors", 5)
    where["style_mask"].unlink()
    where = write_pair(folder, "authors", 6)
    where["content"].write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    where = write_pair(folder, "authors", 7, masks=False)
    where["style"].unlink()
    store = Store(str(tmp_path / "data"))

    result = import_pairs(store, folder)
    refused = "\n".join(result.refused)
    probe.record("import-pairs: bad masks and photos", rejected=len(result.refused) == 5)
    assert len(result.refused) == 5, refused
    assert (
        "segmentation/in2.png: the mask does not fit input/in2.png: it is 48x24 (aspect 2.000), "
        "its image 48x32 (aspect 1.500)"
    ) in refused
    assert "segmentation/tar3.png: shares no label colour with segmentation/in3.png " in refused
    assert "(segmentation/in3.png: blue, red; segmentation/tar3.png: green)" in refused
    assert "segmentation/in5.png: pair 5 has a content mask but no style mask" in refused
    assert "input/in6.png: cannot be read (corrupt" in refused
    assert "input/in7.png: pair 7 has no style photo" in refused
    assert "refused 5 pair(s)" in result.render()
    # pairs 1 and 4 (a mask at half size fits) are imported, nothing of the others is stored
    assert result.new == 2 and store.read("pairs").num_rows == 2
    titles = {r["title"] for r in store.catalog.select()}
    assert titles == {"in1.png", "tar1.png", "in4.png", "tar4.png"}
    assert store.disk_usage("masks")[0] == 3  # in1, tar1 (the bytes of tar4 too), in4


def test_a_content_colour_the_style_mask_lacks_is_a_warning(tmp_path):
    folder = tmp_path / "pairs"
    write_pair(folder, "flat", 1, style_mask=halves(BLUE, BLUE))
    result = import_pairs(Store(str(tmp_path / "data")), folder)
    assert result.new == 1 and result.refused == ()
    assert result.warnings == (
        "seg_in1.png: red marks 50% of the content and is not in seg_tar1.png: those pixels "
        "match no region of the style",
    )


def test_a_folder_without_pairs_is_an_error_naming_both_layouts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no pairs in .*input/inN, style/tarN"):
        import_pairs(Store(str(tmp_path / "data")), tmp_path / "empty")
    with pytest.raises(ValueError, match="is not a folder"):
        import_pairs(Store(str(tmp_path / "data")), tmp_path / "missing")


def _import(tmp_path) -> Store:
    """A data directory with two imported pairs: 1 with masks, 2 without."""
    folder = tmp_path / "pairs"
    write_pair(folder, "authors", 1)
    write_pair(folder, "authors", 2, masks=False)
    store = Store(str(tmp_path / "data"))
    assert import_pairs(store, folder).new == 2
    return store


def _by_pair(store: Store, extra: str = "") -> dict[tuple[str, str], dict]:
    rows = store.query(
        "SELECT r.method, p.mask_source AS pair_masks, r.mask_source, r.status, r.error "
        f"FROM runs r JOIN pairs p USING (pair_id) {extra}"
    ).to_pylist()
    return {(r["method"], r["pair_masks"]): r for r in rows}


def test_a_failed_run_says_given_when_its_pair_had_masks_and_fast_takes_none(tmp_path):
    from dataclasses import replace
    from pathlib import Path

    from flows.batch import plan, run_batch
    from styletransfer import TransferConfig

    from .test_fast_runs import _model

    store = _import(tmp_path)
    items = plan(store, [TransferConfig(method="gatys", size=32, steps=1)])
    masked = next(i for i in items if i.content_mask)
    assert masked.content_mask.startswith("masks/") and masked.style_masks[0].startswith("masks/")
    broken = [replace(i, style_paths=("images/00/missing.png",)) for i in items]
    assert run_batch(store, broken).failed == 2
    got = _by_pair(store)
    assert got[("gatys", "given")]["mask_source"] == "given"
    assert got[("gatys", "none")]["mask_source"] is None

    style_ids = sorted({s for p in store.read("pairs").to_pylist() for s in p["style_ids"]})
    _model(Path(store.loc.join("models", "duo")), style_ids)
    fast = plan(store, [TransferConfig(method="fast", model="duo", size=32, device="cpu")])
    assert run_batch(store, fast).ok == 2
    got = _by_pair(store, "WHERE r.method = 'fast'")
    assert {k: r["mask_source"] for k, r in got.items()} == {
        ("fast", "given"): "none",
        ("fast", "none"): "none",
    }


@pytest.mark.slow
def test_the_flows_import_a_paired_dataset_and_stylize_it_with_its_masks(prefect_harness, tmp_path):
    from flows.pipeline import import_pairs as import_flow
    from flows.pipeline import stylize_nightly

    folder = tmp_path / "pairs"
    write_pair(folder, "flat", 1)
    write_pair(folder, "flat", 2, masks=False)
    data_dir = str(tmp_path / "data")
    result = import_flow(str(folder), data_dir=data_dir)
    assert (result["new"], result["with_masks"], result["refused"]) == (2, 1, ())
    spec = {
        "name": "masks",
        "methods": ["gatys", "dpst", "photo-fast"],
        "batch_size": 4,
        "settings": {"size": 32, "steps": 3},
    }
    night = stylize_nightly(spec, data_dir=data_dir)
    assert (night["planned"], night["ok"], night["pending"]) == (6, 6, 0), night
    got = {k: r["mask_source"] for k, r in _by_pair(Store(data_dir)).items()}
    assert got[("gatys", "given")] == got[("dpst", "given")] == "given"
    assert got[("photo-fast", "given")] == "given"
    assert got[("photo-fast", "none")] == "auto"
    assert got[("gatys", "none")] == "none"
    assert got[("dpst", "none")] in ("none", "auto")  # never "given" without masks
    assert import_flow(str(folder), data_dir=data_dir)["new"] == 0
