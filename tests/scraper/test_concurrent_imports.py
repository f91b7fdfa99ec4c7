"""Imports at the same time never reject an image as a near duplicate of itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scraper import import_sources
from scraper.curate import CurationConfig, Deduper, features
from storage import Store
from storage.catalog import Catalog, Snapshot
from tests.barrier import let_go
from tests.scraper.helpers import PHOTOS, jpeg, photo

REPO = Path(__file__).resolve().parents[2]
# Each process imports the photos one at a time, in its own order: many snapshots, each
# racing the others' appends.
IMPORTER = """
import random, sys
from pathlib import Path
from scraper import CurationConfig, import_sources
from storage import Store
from tests.barrier import wait_at_the_line
files = sorted(Path(sys.argv[2]).iterdir())
random.Random(int(sys.argv[5])).shuffle(files)
wait_at_the_line(sys.argv[3], sys.argv[4])
store = Store(sys.argv[1])
for _ in range(2):
    for f in files:
        import_sources(store, [str(f)], "content", curation=CurationConfig(min_side=64))
"""


def _folder(tmp_path: Path, n: int = 6) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in PHOTOS[:n]:
        (folder / f"{name}.jpg").write_bytes(jpeg(name))
    return folder


def _statuses(store: Store) -> dict[str, str]:
    rows = store.query("select image_id, status from catalog where path is not null").to_pylist()
    return {r["image_id"]: r["status"] for r in rows}


def test_an_image_is_never_a_near_duplicate_of_itself():
    image = photo("coffee").convert("RGB")
    from tests.scraper.helpers import encode

    data = encode(image, "JPEG", quality=90)
    f = features(data, image)
    deduper = Deduper(CurationConfig(min_side=64), [(f.sha256, f.phash)])  # accepted elsewhere
    assert deduper.decide(f) is None
    other = features(encode(image, "JPEG", quality=60), image)  # another file, same picture
    assert deduper.decide(other).startswith("near-duplicate")


def test_a_torn_view_of_the_catalog_keeps_every_image_accepted(tmp_path, monkeypatch, probe):
    # Another import accepted the same files and its curation rows are visible, but its
    # images rows were not listed yet: the old code then rejected all 6 as their own duplicates.
    folder = _folder(tmp_path)
    store = Store(str(tmp_path / "data"))
    first = import_sources(store, [str(folder)], "content")
    assert first.accepted == 6
    torn = store.catalog.snapshot()
    monkeypatch.setattr(
        Catalog,
        "snapshot",
        lambda self: Snapshot(frozenset(), frozenset(), frozenset(), torn.accepted),
    )
    again = import_sources(store, [str(folder)], "content")
    statuses = _statuses(store)
    flipped = sum(s != "accepted" for s in statuses.values())
    probe.record("import racing an import of the same files (torn view)", rejected=False,
                 rows_lost=flipped)  # fmt: skip
    assert flipped == 0 and len(statuses) == 6
    assert again.rejected_by_reason == {"duplicate": 6}


@pytest.mark.concurrency
def test_four_importers_at_once_accept_each_image(tmp_path, probe):
    folder = _folder(tmp_path)
    data = str(tmp_path / "data")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{n}" for n in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", IMPORTER, data, str(folder), str(ready[n]), str(go), str(n)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    let_go(procs, ready, go)
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    store = Store(data)
    statuses = _statuses(store)
    flipped = sum(s != "accepted" for s in statuses.values())
    rejected = store.query(
        "select count(*) as n from curation where status = 'rejected'"
    ).to_pylist()[0]["n"]
    probe.record("four importers of the same photos at once", rejected=False,
                 rows_lost=flipped)  # fmt: skip
    assert len(statuses) == 6 and flipped == 0 and rejected == 0
