"""scrape() and import_sources() end to end: adversarial payloads land with their reasons."""

from __future__ import annotations

import dataclasses
import html
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from scraper import ScrapeSummary, import_sources, scrape
from scraper.errors import Captcha
from scraper.pipeline import expand_sources, failed_id
from storage import Store
from tests.localserver import Answer
from tests.scraper.helpers import encode, fixture, jpeg, photo
from tests.scraper.test_validate import png_header_only


def bing_page(urls: list[str]) -> bytes:
    items = []
    for i, url in enumerate(urls):
        m = html.escape(
            json.dumps({"murl": url, "purl": f"https://pages.example.org/{i}", "t": f"item {i}"}),
            quote=True,
        )
        items.append(f'<li><a class="iusc" m="{m}" href="#"><img src="t{i}.jpg"></a></li>')
    return ("<ul>" + "".join(items) + "</ul>").encode()


def animated_gif() -> bytes:
    frames = [photo("rocket", 300).convert("P"), photo("coins", 300).convert("P")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=80)
    return buffer.getvalue()


def exif_rotated() -> bytes:
    stored = photo("chelsea", 400).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=92, exif=exif.tobytes())


def sixteen_bit_png() -> bytes:
    gray = np.asarray(photo("camera", 400), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")


# path -> (answer, expected status, expected reason code)
def adversarial(port: int) -> dict[str, tuple[Answer, str, str | None]]:
    astronaut = jpeg("astronaut", 400)
    brighter = encode(ImageEnhance.Brightness(photo("astronaut", 400)).enhance(1.05), "PNG")
    cmyk = encode(photo("coffee", 400).convert("CMYK"), "JPEG", quality=92)
    return {
        "/good.jpg": (Answer(astronaut, headers={"Content-Type": "image/jpeg"}), "accepted", None),
        "/rocket.jpg": (Answer(jpeg("rocket", 400)), "accepted", None),
        "/cmyk.jpg": (Answer(cmyk), "accepted", None),
        "/16bit.png": (Answer(sixteen_bit_png()), "accepted", None),
        "/rotated.jpg": (Answer(exif_rotated()), "accepted", None),
        "/copy.jpg": (Answer(astronaut), "accepted", "duplicate"),  # same bytes as /good.jpg
        "/near.png": (Answer(brighter), "rejected", "near-duplicate"),
        "/small.jpg": (Answer(jpeg("moon", 100)), "rejected", "too-small"),
        "/page.jpg": (
            Answer(
                b"<!doctype html><html><body>Login</body></html>",
                headers={"Content-Type": "image/jpeg"},
            ),
            "rejected",
            "not-an-image",
        ),
        "/truncated.jpg": (Answer(astronaut[:4000]), "rejected", "corrupt"),
        "/zero.jpg": (Answer(b""), "rejected", "empty"),
        "/bomb.png": (Answer(png_header_only(60_000, 60_000)), "rejected", "decompression-bomb"),
        "/huge.jpg": (Answer(b"\xff\xd8\xff" + b"\0" * 700_000), "rejected", "too-large"),
        "/slow.jpg": (Answer(astronaut[:200], drip=0.05), "rejected", "timeout"),
        "/loop.jpg": (
            Answer(status=302, headers={"Location": "/loop.jpg?again"}),
            "rejected",
            "redirect-loop",
        ),
        "/to-loopback.jpg": (
            Answer(status=302, headers={"Location": f"http://127.0.0.1:{port}/good.jpg"}),
            "rejected",
            "private-address",
        ),
        "/to-metadata.jpg": (
            Answer(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/iam"}),
            "rejected",
            "private-address",
        ),
        "/animated.gif": (Answer(animated_gif()), "rejected", "animated"),
        "/noai.jpg": (
            Answer(jpeg("horse", 400), headers={"X-Robots-Tag": "noai"}),
            "rejected",
            "noai",
        ),
        "/missing.jpg": (Answer(b"no", 404), "rejected", "http-404"),
    }


@pytest.fixture
def guarded(fast, monkeypatch, server):
    """Private addresses refused except the literal host ``localhost`` the server is reached by."""
    monkeypatch.delenv("STYLEBENCH_ALLOW_PRIVATE")
    monkeypatch.setenv("STYLEBENCH_BING_URL", f"http://localhost:{server.port}")
    return dataclasses.replace(
        fast,
        allow_private=False,
        allow_hosts=("localhost",),
        max_bytes=500_000,
        total_timeout=1,
        retries=1,
    )


def test_adversarial_scrape_lands_everything_with_reasons(tmp_path, server, guarded):
    cases = adversarial(server.port)
    base = f"http://localhost:{server.port}"
    urls = [base + path for path in cases]
    for path, (answer, _, _) in cases.items():
        server.routes[path] = answer
    server.routes["/images/async"] = lambda q: Answer(
        bing_page(urls) if q["first"] == ["1"] else b""
    )
    store = Store(tmp_path / "data")
    calls = []
    summary = scrape(
        store,
        "astronauts",
        "content",
        "bing",
        50,
        download=guarded,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert isinstance(summary, ScrapeSummary)
    assert summary.found == len(cases) and summary.skipped == 0
    assert calls[-1] == (len(cases), len(cases))
    expected_failed = {}
    expected_rejected = {}
    for _, _status, reason in cases.values():
        if reason in ("near-duplicate", "too-small", "duplicate"):
            expected_rejected[reason] = expected_rejected.get(reason, 0) + 1
        elif reason:
            expected_failed[reason] = expected_failed.get(reason, 0) + 1
    assert summary.rejected_by_reason == expected_rejected
    assert summary.failed_by_reason == expected_failed
    assert summary.accepted == 5 and len(summary.image_ids) == 5
    assert summary.downloaded == summary.accepted + summary.rejected

    rows = store.query(
        "SELECT i.image_url, i.image_id, i.path, i.width, i.height, i.format, i.rank, i.engine, "
        "i.query, i.page_url, i.is_grayscale, c.status, c.reason FROM images i "
        "LEFT JOIN curation_latest c USING (image_id)"
    ).to_pylist()
    by_path = {r["image_url"][len(base) :]: r for r in rows}
    assert set(by_path) == set(cases)  # every candidate has a row
    for path, (_, status, code) in cases.items():
        row = by_path[path]
        assert row["status"] == status, (path, row)
        assert row["engine"] == "bing" and row["query"] == "astronauts" and row["rank"] >= 1
        if code and code != "duplicate":
            assert row["reason"].split(":")[0] == code, (path, row["reason"])
        if status == "rejected" and code not in ("near-duplicate", "too-small"):
            assert row["path"] is None and row["image_id"] == failed_id(base + path)
    # the exact duplicate is a second sighting of the same image, not a second image
    assert by_path["/copy.jpg"]["image_id"] == by_path["/good.jpg"]["image_id"]
    assert (
        store.query("SELECT count(*) FROM catalog WHERE path IS NOT NULL").column(0)[0].as_py()
        == summary.downloaded - 1
    )
    # conversions were applied to what was stored
    rotated = by_path["/rotated.jpg"]
    assert (rotated["width"], rotated["height"]) == photo("chelsea", 400).size
    assert Image.open(store.local_path(by_path["/cmyk.jpg"]["path"])).mode == "RGB"
    sixteen = by_path["/16bit.png"]
    assert Image.open(store.local_path(sixteen["path"])).mode == "L" and sixteen["is_grayscale"]
    assert server.hits["/good.jpg"] == 1  # the redirect to 127.0.0.1 never connected

    # idempotent: the same scrape again adds no rows and fetches no image
    counts = {
        t: store.query(f"SELECT count(*) FROM {t}").column(0)[0].as_py()
        for t in ("images", "curation")
    }
    before = sum(server.hits[p] for p in cases)
    again = scrape(store, "astronauts", "content", "bing", 50, download=guarded)
    assert again.skipped == len(cases) and again.downloaded == 0 and again.accepted == 0
    assert {
        t: store.query(f"SELECT count(*) FROM {t}").column(0)[0].as_py()
        for t in ("images", "curation")
    } == counts
    assert sum(server.hits[p] for p in cases) == before
    assert "already in catalog" in again.render()


def test_retry_failed_refetches_only_failures(tmp_path, server, fast, monkeypatch):
    monkeypatch.setenv("STYLEBENCH_BING_URL", server.base)
    urls = [server.url("/a.jpg"), server.url("/b.jpg")]
    server.routes["/images/async"] = lambda q: Answer(
        bing_page(urls) if q["first"] == ["1"] else b""
    )
    server.routes["/a.jpg"] = Answer(jpeg("rocket", 400))
    server.routes["/b.jpg"] = Answer(b"", 503)
    store = Store(tmp_path / "data")
    first = scrape(store, "q", "style", "bing", 10, download=fast)
    assert first.accepted == 1 and first.failed_by_reason == {"http-503": 1}
    server.routes["/b.jpg"] = Answer(jpeg("coins", 400))
    second = scrape(store, "q", "style", "bing", 10, download=fast, retry_failed=True)
    assert second.skipped == 1 and second.accepted == 1
    assert server.hits["/a.jpg"] == 1
    third = scrape(store, "q", "style", "bing", 10, download=fast, retry_failed=True)
    assert third.skipped == 2 and third.downloaded == 0  # /b.jpg succeeded: not retried again
    statuses = store.query("SELECT status FROM curation_latest ORDER BY status").column(0)
    assert statuses.to_pylist() == ["accepted", "accepted", "rejected"]  # failure row kept


def test_min_side_and_engine_errors(tmp_path, server, fast, monkeypatch):
    monkeypatch.setenv("STYLEBENCH_BING_URL", server.base)
    server.routes["/images/async"] = lambda q: Answer(
        bing_page([server.url("/a.jpg")]) if q["first"] == ["1"] else b""
    )
    server.routes["/a.jpg"] = Answer(jpeg("rocket", 400))
    store = Store(tmp_path / "data")
    summary = scrape(store, "q", "style", "bing", 10, min_side=500, download=fast)
    assert summary.rejected_by_reason == {"too-small": 1}
    server.routes["/images/async"] = Answer(fixture("bing_captcha.html"))
    with pytest.raises(Captcha):
        scrape(store, "other", "style", "bing", 10, download=fast)
    with pytest.raises(ValueError, match="choose from: content, style"):
        scrape(store, "q", "painting", "bing", 10, download=fast)


def test_import_folder_list_and_url(tmp_path, server, fast):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name in ("astronaut", "coffee"):
        (folder / f"{name}.jpg").write_bytes(jpeg(name, 300))
    (folder / "sub" / "rocket.png").write_bytes(encode(photo("rocket", 300), "PNG"))
    (folder / "notes.md").write_text("not an image")
    server.routes["/remote.jpg"] = Answer(jpeg("coins", 300))
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# my picks\n{server.url('/remote.jpg')}\nphotos/coffee.jpg\nphotos/absent.jpg\n\n"
    )
    store = Store(tmp_path / "data")
    summary = import_sources(store, [str(folder), str(listing)], "style", download=fast)
    assert summary.found == 5  # 3 files in the folder (coffee once), 1 URL, 1 missing file
    assert summary.accepted == 4 and summary.failed_by_reason == {"missing-file": 1}
    engines = store.query("SELECT engine, count(*) AS n FROM images GROUP BY 1 ORDER BY 1")
    assert engines.to_pylist() == [{"engine": "local", "n": 4}, {"engine": "url", "n": 1}]
    roles = store.query("SELECT DISTINCT role FROM catalog").column(0).to_pylist()
    assert roles == ["style"]
    again = import_sources(store, [str(folder), str(listing)], "style", download=fast)
    assert again.skipped == 5 and again.accepted == 0
    assert store.query("SELECT count(*) FROM images").column(0)[0].as_py() == 5
    with pytest.raises(ValueError, match="no such file"):
        import_sources(store, [str(tmp_path / "nope")], "style")


def test_expand_sources_ranks_in_order(tmp_path):
    (tmp_path / "b.jpg").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    got = expand_sources([str(tmp_path), "https://example.org/x.jpg"])
    assert [c.result.rank for c in got] == [1, 2, 3]
    assert got[0].source.endswith("a.png") and got[0].local and not got[2].local
