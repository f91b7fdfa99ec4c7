"""Every parser on every real engine response in ``../shared/captures/`` (read in place).

The captures are third-party files (provenance in their SOURCES.md) and are never copied
into this project. Each is checked for its exact result count, what was dropped and why,
or the typed error its wall page must raise; and for every capture that holds results,
results plus drops account for every item the capture holds.
"""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scraper import errors
from scraper.engines import baidu, bing, duckduckgo, flickr, google, openverse, wikimedia

pytestmark = pytest.mark.dataset

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = Path(os.environ.get("STYLEBENCH_CAPTURES", ROOT.parent / "shared" / "captures"))


def capture(rel: str) -> bytes:
    path = CAPTURES / rel
    if not CAPTURES.is_dir():
        pytest.fail(
            f"the real engine captures are missing: no folder {CAPTURES}. They live in the "
            "shared data beside the repository (../shared/captures/, with SOURCES.md and "
            "run_parsers.py; CI has it): mount or check out that folder there, or set "
            "STYLEBENCH_CAPTURES to where it is. They are never copied into the project."
        )
    if not path.is_file():
        pytest.fail(f"capture {rel} is missing from {CAPTURES}; see its SOURCES.md")
    return path.read_bytes()


def parse(engine: str, body: bytes):
    if engine == "google":
        return google.parse_api(body) if body.lstrip()[:1] == b"{" else google.parse_html(body)
    module = {
        "bing": bing,
        "duckduckgo": duckduckgo,
        "baidu": baidu,
        "flickr": flickr,
        "openverse": openverse,
        "wikimedia": wikimedia,
    }[engine]
    return module.parse(body)


# (engine, capture, results, dropped by reason, results with width and height)
RESULTS = [
    ("bing", "bing/images_search_2026-02_ar.html", 35, {}, 35),
    ("bing", "bing/images_search_2026-07_en.html", 1, {}, 1),
    ("bing", "bing/async_fragment_2020-11_excerpt_transcribed.html", 1, {}, 1),
    ("google", "google/cse_image_2017.json", 10, {}, 10),
    ("google", "google/cse_image_2023.json", 10, {}, 10),
    ("baidu", "baidu/acjson_rn1_2020-11_transcribed.json", 1, {}, 1),
    ("flickr", "flickr/photos_search_2020-02.json", 30, {}, 30),
    ("openverse", "openverse/images_q-cat_2021.json", 20, {}, 0),  # the 2021 API sent no size
    ("openverse", "openverse/images_last-page_2021.json", 20, {}, 0),
    (
        "wikimedia",
        "wikimedia/allimages_imageinfo_2020-01.json",
        27,
        {"tiff-without-rendering": 1},
        27,
    ),
    ("wikimedia", "wikimedia/allimages_imageinfo_continue_2020-01.json", 9, {}, 9),
]

# (engine, capture, the typed error the parser must raise)
WALLS = [
    ("google", "google/jswall_2025-07.html", errors.JsWall),  # French UI
    ("google", "google/sorry_en_2026-02_prettified.html", errors.Captcha),
    ("google", "google/sorry_fr_2025-11.html", errors.Captcha),
    ("duckduckgo", "duckduckgo/anomaly_2026-07.html", errors.Blocked),
]


class _Iusc(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.count = 0

    def handle_starttag(self, tag, attrs):  # type: ignore[override]
        values = dict(attrs)
        if tag == "a" and "iusc" in (values.get("class") or "").split() and values.get("m"):
            self.count += 1


def items_held(engine: str, body: bytes) -> int:
    """How many items the capture holds, counted without the project's parsers."""
    if engine == "bing":
        counter = _Iusc()
        counter.feed(body.decode("utf-8", "replace"))
        return counter.count
    data = json.loads(body)
    return {
        "google": lambda: len(data.get("items") or []),
        "baidu": lambda: sum(1 for i in data["data"] if isinstance(i, dict) and i),
        "flickr": lambda: len(data["photos"]["photo"]),
        "openverse": lambda: len(data["results"]),
        "wikimedia": lambda: len(data["query"]["pages"]),
    }[engine]()


@pytest.mark.parametrize("engine, rel, count, dropped, sized", RESULTS, ids=[r[1] for r in RESULTS])
def test_capture_results(engine, rel, count, dropped, sized):
    body = capture(rel)
    results = parse(engine, body)
    assert len(results) == count
    assert dict(results.dropped) == dropped
    assert len(results) + sum(results.dropped.values()) == items_held(engine, body)
    assert all(r.image_url.startswith(("http://", "https://")) for r in results)
    assert sum(1 for r in results if r.width and r.height) == sized


@pytest.mark.parametrize("engine, rel, error", WALLS, ids=[w[1] for w in WALLS])
def test_capture_walls(engine, rel, error):
    body = capture(rel)
    with pytest.raises(error) as info:
        if engine == "duckduckgo":
            duckduckgo.parse_vqd(body)
        else:
            parse(engine, body)
    if engine == "google":
        assert "bing" in str(info.value)  # names an engine that works
    if engine == "duckduckgo":  # the same page arriving in place of i.js JSON
        with pytest.raises(errors.Blocked):
            duckduckgo.parse(body)


def test_capture_duckduckgo_landing_token():
    body = capture("duckduckgo/landing_2026-01.html")
    assert duckduckgo.parse_vqd(body) == "4-227437511519701499186394640056194624703"


def test_capture_sorry_pages_by_their_final_url():
    for rel in ("google/sorry_en_2026-02_prettified.html", "google/sorry_fr_2025-11.html"):
        with pytest.raises(errors.Captcha):
            google.classify_html(capture(rel), "https://www.google.com/sorry/index?continue=x")


def test_capture_baidu_takes_the_original_not_baidus_copy():
    (result,) = baidu.parse(capture("baidu/acjson_rn1_2020-11_transcribed.json"))
    assert result.image_url == (
        "http://5b0988e595225.cdn.sohucs.com/images/20180127/fcdbe837f93e40e9aa4eebaf2aa10ecd.jpeg"
    )
    assert result.page_url == "http://mt.sohu.com/business/d20180127/219361004_753232.shtml"
    assert result.size_taken == "original" and (result.width, result.height) == (998, 554)


def test_capture_flickr_falls_back_to_the_largest_size_offered():
    results = flickr.parse(capture("flickr/photos_search_2020-02.json"))
    sizes = {r.page_url.rsplit("/", 1)[-1]: r for r in results}
    small = sizes["49515058172"]  # a 480x360 original offered only up to url_m
    assert small.size_taken == "medium 500" and (small.width, small.height) == (480, 360)
    assert small.image_url.endswith("49515058172_e52c8df29f.jpg")
    assert sum(r.size_taken == "large 1024" for r in results) == 28
    assert all(r.license and r.creator and r.date for r in results)


def test_capture_bing_sizes_from_the_link():
    (result,) = bing.parse(capture("bing/async_fragment_2020-11_excerpt_transcribed.html"))
    assert (result.width, result.height) == (3442, 2972)


def test_capture_wikimedia_drops_the_tiff_it_cannot_render():
    results = wikimedia.parse(capture("wikimedia/allimages_imageinfo_2020-01.json"))
    assert not any(r.image_url.lower().endswith((".tif", ".tiff")) for r in results)
    assert all(r.license and r.size_taken == "original" for r in results)
