"""Imports that name devices, FIFOs, other schemes or private files: refused with a reason."""

from __future__ import annotations

import os
import threading

import pytest

from scraper import import_sources
from scraper.download import DownloadConfig
from scraper.errors import DownloadError
from scraper.sources import is_url, read_list, read_regular_file
from storage import Store
from tests.scraper.helpers import jpeg


def _in_time(fn, seconds: float = 30.0):
    """Run ``fn`` on a thread; fail (instead of hanging the suite) if it does not return."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised on the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def specials(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    link = tmp_path / "zero.jpg"
    link.symlink_to("/dev/zero")
    return {"fifo": fifo, "/dev/zero": "/dev/zero", "link to /dev/zero": link}


def test_read_regular_file_refuses_devices_and_fifos(specials, tmp_path):
    for name, path in specials.items():
        with pytest.raises(DownloadError) as info:
            _in_time(lambda path=path: read_regular_file(path, 1_000_000))
        assert info.value.reason == "not-a-file", name
    with pytest.raises(DownloadError, match="not-a-file"):
        read_regular_file(tmp_path, 10)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"x" * 11)
    with pytest.raises(DownloadError, match="too-large"):
        read_regular_file(big, 10)
    assert read_regular_file(big, 11) == b"x" * 11


def test_url_list_naming_devices_and_fifos_lands_rejected(specials, tmp_path, probe):
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg("coffee", 200))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join([str(good), *(str(p) for p in specials.values())]) + "\n")
    store = Store(str(tmp_path / "data"))
    summary = _in_time(lambda: import_sources(store, [str(listing)], "style"))
    # the link resolves to /dev/zero itself: one candidate for both
    assert summary.found == 3 and summary.accepted == 1
    assert summary.failed_by_reason == {"not-a-file": 2}
    reasons = store.query(
        "SELECT reason FROM catalog WHERE status = 'rejected' ORDER BY rank"
    ).column(0)
    for reason in reasons.to_pylist():
        assert reason.startswith("not-a-file:") and "only regular files" in reason
        probe.record(f"import: {reason[:60]}", rejected=True, reason=reason)


def test_a_device_or_fifo_as_the_list_itself_is_refused(specials, tmp_path, probe):
    fifo_list = tmp_path / "urls.txt"
    os.mkfifo(fifo_list)
    store = Store(str(tmp_path / "data"))
    for label, path in (("a FIFO", fifo_list), ("/dev/zero", specials["/dev/zero"])):
        with pytest.raises(ValueError) as info:
            _in_time(lambda path=path: import_sources(store, [str(path)], "style"))
        assert any(k in str(info.value) for k in ("FIFO", "character device"))
        probe.record(f"import: the list is {label}", rejected=True, reason=str(info.value))
    with pytest.raises(ValueError, match="only regular files"):
        read_list(specials["link to /dev/zero"])
    assert store.query("SELECT count(*) FROM images").column(0)[0].as_py() == 0


def test_other_schemes_are_reported_as_unsupported(tmp_path, probe):
    assert is_url("ftp://example.org/a.jpg") and is_url("data:image/png;base64,AAAA")
    assert not is_url("file:///tmp/a.jpg") and not is_url("C:/pictures/a.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text("ftp://example.org/a.jpg\ndata:image/png;base64,iVBORw0KGgo=\n")
    store = Store(str(tmp_path / "data"))
    summary = import_sources(store, [str(listing)], "style", download=DownloadConfig(retries=0))
    assert summary.failed_by_reason == {"bad-url": 2}
    for reason in store.query("SELECT reason FROM catalog").column(0).to_pylist():
        assert "unsupported scheme" in reason
        probe.record("import: non-http scheme", rejected=True, reason=reason)


def test_rejection_reason_never_holds_the_file_bytes(tmp_path, probe):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"PASSWD=hunter2\nzq9:x:0:0\n")
    store = Store(str(tmp_path / "data"))
    summary = import_sources(store, [str(secret)], "style")
    assert summary.failed_by_reason == {"unsupported-format": 1}
    stored = str(store.query("SELECT * FROM catalog").to_pylist())
    assert "PASSWD" not in stored and "hunter2" not in stored and "zq9" not in stored
    probe.record("import: private file's bytes in the reason", rejected=True, reason="not stored")
