"""The domain API: the catalog's rules and questions, and claims on work items."""

from __future__ import annotations

import pytest

from storage import Decision, ImageRecord, PlannedConfig, Store, WorkItem


def _catalog(store: Store) -> None:
    store.catalog.record(
        [
            ImageRecord("abc123", path="images/ab/abc123.png", role="content", fetched_at=None),
            ImageRecord("abd999", path="images/ab/abd999.png", role="style"),
            ImageRecord("failed-1", role="content", image_url="http://x/1"),
        ],
        [
            Decision("abc123", "accepted"),
            Decision("abd999", "accepted"),
            Decision("failed-1", "rejected", "http-404: gone"),
        ],
    )


def test_only_stored_images_can_be_accepted(data_dir):
    store = Store(data_dir)
    _catalog(store)
    with pytest.raises(ValueError, match="has no stored image .*http-404"):
        store.catalog.decide(["failed-1"], "accepted")
    with pytest.raises(ValueError, match="not in the catalog"):
        store.decide(["nope"], "accepted", None)  # the Store shortcut keeps the rule
    with pytest.raises(ValueError, match="has no stored image"):
        store.catalog.record([], [Decision("failed-1", "accepted")])
    assert store.catalog.decide(["failed-1"], "rejected", "still gone") == 1
    assert {i.image_id for i in store.catalog.accepted()} == {"abc123", "abd999"}


def test_catalog_questions(data_dir):
    store = Store(data_dir)
    _catalog(store)
    assert [i.image_id for i in store.catalog.accepted("style")] == ["abd999"]
    assert store.catalog.accepted_counts() == {"content": 1, "style": 1}
    assert store.catalog.resolve(["abc", "ABD9"]) == ["abc123", "abd999"]
    with pytest.raises(ValueError, match="ambiguous"):
        store.catalog.resolve(["ab"])
    with pytest.raises(ValueError, match="no image id starts with"):
        store.catalog.resolve(["ffff"])
    snap = store.catalog.snapshot()
    assert snap.seen_urls == {"http://x/1"} and snap.failed_urls == {"http://x/1"}
    assert snap.stored_ids == {"abc123", "abd999"}
    assert [r["image_id"] for r in store.catalog.select(status="rejected")] == ["failed-1"]


def _item(pair: str) -> WorkItem:
    return WorkItem(pair, "c", "images/c.png", ("s",), ("images/s.png",), (1.0,), "{}", "h1")


def test_claims_leave_out_held_and_done_items(data_dir):
    from storage import RunRecord

    store = Store(data_dir)
    items = [_item(p) for p in ("p1", "p2", "p3")]
    store.runs.record([RunRecord("r0", pair_id="p3", config_hash="h1", status="ok")])
    first = store.runs.claim(items[:2])
    assert [i.pair_id for i in first.items] == ["p1", "p2"]
    second = store.runs.claim(items)
    assert second.items == [] and second.skipped == 3  # two held, one done
    first.release()
    with store.runs.claim(items) as third:
        assert [i.pair_id for i in third.items] == ["p1", "p2"]
    assert [i.pair_id for i in store.runs.claim(items).items] == ["p1", "p2"]  # released


def test_pending_plans_each_pair_under_each_config(data_dir):
    from storage import PairRecord

    store = Store(data_dir)
    _catalog(store)
    store.catalog.record_pairs([PairRecord("p1", "abc123", ("abd999",), (1.0,), "all")])
    assert store.catalog.record_pairs([PairRecord("p1", "abc123", ("abd999",), (1.0,), "all")]) == 0
    configs = [PlannedConfig('{"a":1}', "h1"), PlannedConfig('{"a":2}', "h2")]
    items = store.runs.pending(configs)
    assert [(i.pair_id, i.config_hash) for i in items] == [("p1", "h1"), ("p1", "h2")]
    assert items[0].style_paths == ("images/ab/abd999.png",)
