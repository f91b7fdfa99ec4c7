"""The Prefect flows under a test harness, and the batch runner they wrap."""

from __future__ import annotations

import json

import pytest

from flows.batch import WorkItem, make_batches, plan, run_batch
from flows.catalog import pair_catalog
from flows.specs import ExperimentSpec, expand_configs, load_spec

TINY = {
    "name": "tiny",
    "methods": ["gatys"],
    "batch_size": 2,
    "settings": {"size": 32, "steps": 4, "optimizer": "adam"},
}


@pytest.mark.slow
def test_stylize_nightly_records_every_pair_once_and_a_rerun_adds_nothing(
    prefect_harness, small_catalog
):
    from flows.pipeline import pair_images, stylize_nightly

    store = small_catalog
    paired = pair_images(strategy="all", data_dir=store.url)
    assert paired == {"strategy": "all", "pairs": 6, "new": 6}
    again = pair_images(strategy="all", data_dir=store.url)
    assert again["new"] == 0 and store.read("pairs").num_rows == 6

    first = stylize_nightly(TINY, data_dir=store.url)
    assert (
        first["planned"] == 6
        and first["batches"] == 3
        and first["ok"] == 6
        and first["pending"] == 0
    )
    runs = store.query(
        "select pair_id, config_hash, status, output_path, seconds_total from runs"
    ).to_pylist()
    assert len(runs) == 6 and len({(r["pair_id"], r["config_hash"]) for r in runs}) == 6
    assert all(r["status"] == "ok" and store.exists(r["output_path"]) for r in runs)
    curves = store.query("select count(distinct run_id) as n from loss_curves").to_pylist()[0]["n"]
    assert curves == 6

    second = stylize_nightly(TINY, data_dir=store.url)
    assert second["planned"] == 0 and store.read("runs").num_rows == 6


def test_a_failing_item_is_a_row_and_the_batch_carries_on(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    configs = expand_configs(load_spec(TINY, ExperimentSpec))
    items = plan(store, configs)
    broken = WorkItem(
        **{**items[0].to_dict(), "pair_id": "broken", "style_paths": ("images/00/missing.png",)}
    )
    outcome = run_batch(store, [broken, items[1]])
    assert (outcome.ok, outcome.failed) == (1, 1)
    rows = {r["pair_id"]: r for r in store.read("runs").to_pylist()}
    assert rows["broken"]["status"] == "failed" and "missing" in rows["broken"]["error"]
    assert rows["broken"]["loss_total"] is None and rows["broken"]["loss_style"] is None
    assert rows[items[1].pair_id]["status"] == "ok"
    # The failed item is planned again; the ok one is not.
    pending = {i.pair_id for i in plan(store, configs)}
    assert items[1].pair_id not in pending and items[0].pair_id in pending


def test_a_method_that_evaluates_no_loss_records_null_losses_not_zero(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    spec = {**TINY, "methods": ["photo-fast", "gatys"]}
    items = plan(store, expand_configs(load_spec(spec, ExperimentSpec)))
    run_batch(store, [i for i in items if json.loads(i.config)["method"] == "photo-fast"])
    outcome = run_batch(store, [i for i in items if json.loads(i.config)["method"] == "gatys"][:2])
    assert outcome.ok == 2
    rows = store.query(
        "select method, count(*) as n, count(loss_total) as measured, avg(loss_style) as style,"
        " count(quality_ssim) as scored from runs where status = 'ok' group by 1 order by 1"
    ).to_pylist()
    fast, gatys = rows[1], rows[0]
    assert (fast["method"], fast["n"], fast["measured"], fast["style"]) == (
        "photo-fast",
        6,
        0,
        None,
    )
    assert fast["scored"] == 6  # what the method is judged by is recorded
    assert gatys["measured"] == 2 and gatys["style"] > 0


def test_batches_keep_one_config_and_style_set_together(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    spec = load_spec({**TINY, "grid": {"steps": [2, 3]}}, ExperimentSpec)
    configs = expand_configs(spec)
    assert len(configs) == 2 and configs[0].config_hash() != configs[1].config_hash()
    items = plan(store, configs)
    assert len(items) == 12
    batches = make_batches(items, 4)
    assert [len(b) for b in batches] == [4, 2, 4, 2]
    for batch in batches:
        assert len({i.config_hash for i in batch}) == 1
    assert json.loads(items[0].config)["method"] == "gatys"


def test_build_dataset_imports_a_folder(prefect_harness, tmp_path):
    from flows.pipeline import build_dataset
    from storage import Store

    from .conftest import _picture

    folder = tmp_path / "photos"
    folder.mkdir()
    for s in (21, 22):
        _picture(s, size=300).save(folder / f"p{s}.png")
    data_dir = str(tmp_path / "data")
    rows = build_dataset(
        {"name": "t", "imports": [{"source": str(folder), "role": "content"}]}, data_dir=data_dir
    )
    assert rows[0]["accepted"] == 2
    assert Store(data_dir).query(
        "select count(*) as n from catalog where status = 'accepted'"
    ).to_pylist() == [{"n": 2}]


def test_a_mixed_experiment_gives_each_method_its_own_options_and_refuses_orphans():
    from flows.specs import SpecError

    spec = {
        **TINY,
        "methods": ["photo-fast", "dpst", "gatys"],
        "settings": {**TINY["settings"], "extra": {"semantic": 0, "auto_masks": 0}},
    }
    by_method = {c.method: dict(c.extra) for c in expand_configs(load_spec(spec, ExperimentSpec))}
    assert by_method == {"photo-fast": {"semantic": 0}, "dpst": {"auto_masks": 0}, "gatys": {}}
    # An option that none of the experiment's methods has is refused, its owner named.
    orphan = {**spec, "methods": ["gatys", "dpst"], "settings": {"extra": {"semantic": 0}}}
    with pytest.raises(SpecError, match="semantic is an option of photo-fast"):
        expand_configs(load_spec(orphan, ExperimentSpec))
    with pytest.raises(SpecError, match="unknown .*option.*nonsense"):
        expand_configs(load_spec({**spec, "settings": {"extra": {"nonsense": 1}}}, ExperimentSpec))
