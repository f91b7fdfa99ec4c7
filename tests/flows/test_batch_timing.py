"""Every second of a recorded run is accounted for: its phases, its own span, its wall time."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from flows.batch import PHASES, run_batch
from flows.catalog import pair_catalog
from flows.specs import ExperimentSpec, expand_configs, load_spec
from storage import Store

# 400 px: over CPU_BATCH_PIXELS, so that every image runs alone (a stacked batch is shared).
ALONE = {
    "name": "alone",
    "methods": ["photo-fast"],
    "settings": {"size": 400, "device": "cpu", "mixed_precision": False},
}
STACKED = {
    "name": "stacked",
    "methods": ["gatys"],
    "settings": {"size": 32, "steps": 3, "optimizer": "adam", "device": "cpu"},
}


def _runs(store: Store, spec: dict, overlap: bool | None) -> list[dict]:
    from flows.batch import plan

    items = plan(store, expand_configs(load_spec(spec, ExperimentSpec)))
    outcome = run_batch(store, items, overlap=overlap)
    assert outcome.ok == len(items) == 6, outcome
    return store.query(
        "select * from runs where config_hash = ?", params=[items[0].config_hash]
    ).to_pylist()


def _span(run: dict) -> float:
    return (run["finished_at"] - run["started_at"]).total_seconds()


def _phases(run: dict) -> float:
    return sum(run[f"seconds_{name}"] for name in PHASES)


def test_the_phases_of_every_run_add_up_to_its_own_span(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    runs = _runs(store, ALONE, overlap=False)
    for run in runs:
        assert run["seconds_wall"] == pytest.approx(_span(run), abs=2e-3)
        # One image at a time, in turn: the run's phases are its whole span.
        assert _phases(run) == pytest.approx(run["seconds_wall"], rel=0.05), run
        assert run["seconds_wait"] <= 0.05 * run["seconds_wall"]
        assert min(run[f"seconds_{k}"] for k in ("load", "optimize", "score", "write")) > 0
        own = ("load", "prepare", "laplacian", "optimize")
        assert run["seconds_total"] == pytest.approx(sum(run[f"seconds_{k}"] for k in own))
        assert run["mask_source"] == "auto"  # photo-fast found its segments itself
    # Each run has its own span, one after another.
    spans = sorted((r["started_at"], r["finished_at"]) for r in runs)
    assert all(end <= later for (_, end), (later, _) in zip(spans, spans[1:], strict=False))


def test_overlapped_and_stacked_runs_account_for_their_waits(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    stacked_again = {**STACKED, "settings": {**STACKED["settings"], "steps": 4}}
    for spec, overlap in ((ALONE, True), (STACKED, False), (stacked_again, True)):
        runs = _runs(store, spec, overlap)
        for run in runs:
            assert run["seconds_wall"] == pytest.approx(_span(run), abs=2e-3)
            whole = _phases(run) + run["seconds_wait"]
            assert whole == pytest.approx(run["seconds_wall"], rel=0.05), (spec["name"], run)
        if spec["methods"] == ["gatys"]:
            # Three images ran as one stacked batch: each waited while the others' share ran.
            assert all(r["seconds_wait"] > 0 for r in runs)
            assert len({r["started_at"] for r in runs}) == 2  # one batch per style


def _spy_threads(monkeypatch) -> list[tuple[str, bool, int]]:
    """Where _load and _finish run: (name, on the main thread, the thread's nice value)."""
    import flows.batch as batch

    seen: list[tuple[str, bool, int]] = []
    for name in ("_load", "_finish"):

        def spy(*args, _real=getattr(batch, name), _name=name, **kwargs):
            on_main = threading.current_thread() is threading.main_thread()
            seen.append((_name, on_main, os.getpriority(os.PRIO_PROCESS, 0)))
            return _real(*args, **kwargs)

        monkeypatch.setattr(batch, name, spy)
    return seen


def test_a_cpu_batch_reads_scores_and_writes_beside_the_method_at_the_lowest_priority(
    small_catalog, monkeypatch
):
    """The housekeeping thread takes the cores the method's threads leave idle (Linux)."""
    store = small_catalog
    pair_catalog(store, "all")
    seen = _spy_threads(monkeypatch)
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    runs = _runs(store, ALONE, overlap=None)  # as stylize runs a batch
    assert sorted({name for name, *_ in seen}) == ["_finish", "_load"]
    beside = [(name, p) for name, on_main, p in seen if not on_main]
    if sys.platform.startswith("linux"):
        # The worker at nice 19 reads ahead and writes behind; what it has not begun when the
        # method wants it, the method's thread does (how much depends on the machine's speed).
        assert beside and all(p == 19 for _, p in beside), seen
        assert {name for name, _ in beside} == {"_load", "_finish"}, seen
    else:  # no thread of its own priority: each batch in turn
        assert not beside, seen
    assert os.getpriority(os.PRIO_PROCESS, 0) == nice  # the method's thread is as it was
    for run in runs:
        assert run["seconds_wall"] == pytest.approx(_span(run), abs=2e-3)
        whole = _phases(run) + run["seconds_wait"]
        assert whole == pytest.approx(run["seconds_wall"], rel=0.05), run
        assert 0 < run["seconds_score"] < run["seconds_wall"]
        assert 0 < run["seconds_write"] < run["seconds_wall"]


def test_the_method_does_what_a_starved_worker_has_not_begun(small_catalog, monkeypatch):
    """A lowered worker that other processes keep from the cores never holds the batch up:
    the method's thread reads, scores and writes what the worker has not begun."""
    import flows.batch as batch

    store = small_catalog
    pair_catalog(store, "all")
    seen = _spy_threads(monkeypatch)
    released = threading.Event()

    def starved() -> None:  # the worker gets no core until every item is written
        released.wait(120)

    monkeypatch.setattr(batch, "_at_lowest_priority", starved)

    def release_when_written() -> None:
        while sum(name == "_finish" for name, *_ in seen) < 6 and not released.is_set():
            time.sleep(0.05)
        released.set()

    watcher = threading.Thread(target=release_when_written, daemon=True)
    watcher.start()
    started = time.monotonic()
    runs = _runs(store, ALONE, overlap=True)
    released.set()
    assert time.monotonic() - started < 100  # not held up until the worker's wait ran out
    assert [name for name, _, _ in seen].count("_finish") == 6
    assert all(on_main for _, on_main, _ in seen), seen
    assert {r["status"] for r in runs} == {"ok"}
    assert all(r["output_path"] for r in runs)


def test_a_cpu_batch_holds_the_accelerator_slot_once_and_an_accelerator_only_for_the_method(
    small_catalog, monkeypatch
):
    """Each hold is a round trip to Prefect's server: on a CPU, once for the batch."""
    from contextlib import contextmanager

    import flows.batch as batch
    from flows.batch import plan

    store = small_catalog
    pair_catalog(store, "all")
    events: list[str] = []

    @contextmanager
    def slot():
        events.append("hold")
        yield
        events.append("free")

    real_finish = batch._finish

    def finish(*args, **kwargs):
        events.append("finish")
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(batch, "_finish", finish)
    items = plan(store, expand_configs(load_spec(ALONE, ExperimentSpec)))
    assert run_batch(store, items, accelerator_slot=slot, overlap=False).ok == 6
    # Six images, each its own stacked batch, inside one hold.
    assert events == ["hold", *["finish"] * 6, "free"]
    # On an accelerator (told here, none is at hand) the slot is held only around the method:
    # scoring and writing run outside it.
    events.clear()
    monkeypatch.setattr(batch, "_on_accelerator", lambda *_: True)
    again = {**ALONE, "settings": {**ALONE["settings"], "size": 384}}
    items = plan(store, expand_configs(load_spec(again, ExperimentSpec)))
    assert run_batch(store, items, accelerator_slot=slot, overlap=False).ok == 6
    assert events == ["hold", "free", "finish"] * 6
