"""The image store and the query layer."""

from __future__ import annotations

import hashlib

import pytest

from storage import QueryError, Store


def test_put_image_is_content_addressed_and_idempotent(location):
    store = Store(location)
    data = b"\x89PNG fake bytes"
    first = store.put_image(data, "PNG")
    digest = hashlib.sha256(data).hexdigest()
    assert first.image_id == digest and not first.existed
    assert first.path == f"images/{digest[:2]}/{digest}.png"
    again = store.put_image(data, "png")
    assert again.existed and again.path == first.path
    assert store.read_bytes(first.path) == data
    assert store.local_path(first.path).read_bytes() == data


def test_put_image_refuses_empty_bytes(location):
    with pytest.raises(ValueError, match="empty"):
        Store(location).put_image(b"", "jpg")


def test_query_errors_list_the_tables(data_dir):
    store = Store(data_dir)
    with pytest.raises(QueryError) as err:
        store.query("select * from runz")
    assert "runz" in str(err.value) and "loss_curves" in str(err.value)
    with pytest.raises(QueryError, match="syntax"):
        store.query("selec 1")


def test_catalog_view_joins_images_with_their_latest_status(data_dir):
    store = Store(data_dir)
    store.append(
        "images",
        [
            {"image_id": "a", "role": "content", "path": "images/a.png"},
            {"image_id": "b", "role": "style"},
        ],
    )
    store.append("images", [{"image_id": "a", "role": "content", "query": "again"}])
    store.decide(["a"], "accepted", None)
    rows = {r["image_id"]: r for r in store.query("select * from catalog").to_pylist()}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["status"] == "accepted" and rows["b"]["status"] is None


def test_ctrl_c_while_the_views_are_made_is_an_interruption(data_dir, monkeypatch):
    # DuckDB reports a Ctrl-C during a statement as RuntimeError("Query interrupted"); while
    # the views are made (before the query's own statements) it was passed on as an error.
    import storage.query as query

    real = query.connect

    def interrupted(*args, **kwargs):
        conn = real(*args, **kwargs)
        conn.close()
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(query, "connect", interrupted)
    store = Store(data_dir)
    with pytest.raises(KeyboardInterrupt):
        store.query("select count(*) as n from runs")
    with pytest.raises(KeyboardInterrupt):
        store.connect()

    def broken(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(query, "connect", broken)
    with pytest.raises(RuntimeError, match="something else"):
        store.query("select count(*) as n from runs")
