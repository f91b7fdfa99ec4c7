"""The engines' rules as of 2026, and the findings on real captures, against a local server."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest

from scraper import engines
from scraper.download import Client
from scraper.engines import duckduckgo, flickr, google, openverse, wikimedia
from scraper.engines.base import Result, Results, collect, user_agent
from scraper.engines.quota import RequestBudget
from scraper.errors import (
    Blocked,
    Captcha,
    Consent,
    Discontinued,
    JsWall,
    MissingApiKey,
    MissingContact,
    QuotaExhausted,
)
from tests.localserver import Answer
from tests.scraper.helpers import fixture


@pytest.fixture
def client(fast) -> Client:
    return Client(fast)


# -- Google: walls by structure, results beside a consent dialog, the API's closing date ----


EU_RESULTS = (
    b'<!doctype html><html lang="de"><body><noscript><meta content="0;url=/httpservice/retry/'
    b'enablejs?sei=x" http-equiv="refresh"></noscript><div role="dialog"><h1>Bevor Sie zu '
    b'Google weitergehen</h1><form action="https://consent.google.com/save" method="POST">'
    b'<button>Alle ablehnen</button></form></div><div id="islrg"></div><script>AF_initData'
    b'Callback({data:[[["https://img.example.com/eu/1.jpg",900,1200]],[["https://img.example'
    b'.com/eu/2.png",600,800]]]});</script></body></html>'
)


def test_google_results_page_with_consent_dialog_is_results():
    results = google.parse_html(EU_RESULTS)
    assert [r.image_url for r in results] == [
        "https://img.example.com/eu/1.jpg",
        "https://img.example.com/eu/2.png",
    ]
    assert (results[0].width, results[0].height) == (1200, 900)


def test_google_walls_in_any_language():
    german = {
        b"Please click": b"Klicken Sie",
        b"if you are not redirected within a few seconds": b"wenn Sie nicht weitergeleitet werden",
        b"Before you continue to Google": b"Bevor Sie zu Google weitergehen",
        b"Our systems have detected unusual traffic from your computer network": b"Unsere "
        b"Systeme haben ungew\xc3\xb6hnlichen Datenverkehr festgestellt",
        b"About this page": b"\xc3\x9cber diese Seite",
    }

    def translate(body: bytes) -> bytes:
        for en, de in german.items():
            body = body.replace(en, de)
        return body

    for name, error in (
        ("google_js_wall.html", JsWall),
        ("google_consent.html", Consent),
        ("google_sorry.html", Captcha),
    ):
        page = translate(fixture(name))
        assert b"unusual" not in page and b"Before you" not in page
        with pytest.raises(error):
            google.parse_html(page)


def test_google_api_closes_on_2027_01_01(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_GOOGLE_API_URL", server.base)
    monkeypatch.setenv("GOOGLE_API_KEY", "key")
    monkeypatch.setenv("GOOGLE_CSE_ID", "cx")
    server.routes["/customsearch/v1"] = Answer(fixture("google_api_page1.json"))
    monkeypatch.setattr(google, "today", lambda: date(2026, 12, 31))
    assert len(engines.search("google", client, "ukiyo-e", 3)) == 3
    monkeypatch.setattr(google, "today", lambda: date(2027, 1, 1))
    hits = server.hits["/customsearch/v1"]
    with pytest.raises(Discontinued) as info:
        engines.search("google", client, "ukiyo-e", 3)
    message = str(info.value)
    assert "2027-01-01" in message and "new projects" in message
    assert "bing" in message and "openverse" in message and "met" in message
    assert server.hits["/customsearch/v1"] == hits  # fails at once: no request made
    monkeypatch.delenv("GOOGLE_API_KEY")
    with pytest.raises(Discontinued):  # the HTML route is closed too
        engines.search("google", client, "ukiyo-e", 3)
    google.check_open(date(2026, 6, 1))
    with pytest.raises(Discontinued):
        google.check_open(date(2030, 1, 1))


# -- DuckDuckGo: a block page where JSON was expected, the vqd in a form -----------------


@pytest.mark.parametrize(
    "page",
    [
        b'<form action="/html/"><input type="hidden" name="vqd" value="4-31337"></form>',
        b"<form><input value='4-31337' type='hidden' name='vqd'/></form>",
        b"<input name=vqd value=4-31337 type=hidden>",
    ],
)
def test_duckduckgo_vqd_in_a_form_input(page):
    assert duckduckgo.parse_vqd(page) == "4-31337"


def test_duckduckgo_block_page_in_place_of_json(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_DUCKDUCKGO_URL", server.base)
    server.routes["/"] = Answer(fixture("ddg_search.html"))
    server.routes["/i.js"] = Answer(
        b'<!DOCTYPE html><html><body><form id="challenge-form" action="//duckduckgo.com/'
        b'anomaly.js?sv=html"><div class="anomaly-modal__title">Bots?</div></form></body></html>'
    )
    with pytest.raises(Blocked, match="bot check"):
        engines.search("duckduckgo", client, "oil", 10)


# -- Flickr: the size fallback, recorded -----------------------------------------------------


def flickr_answer(*photos: dict, page: int = 1, pages: int = 1) -> bytes:
    base = {"owner": "1@N01", "ownername": "P", "license": "9", "title": "t"}
    return json.dumps(
        {
            "photos": {"page": page, "pages": pages, "photo": [{**base, **p} for p in photos]},
            "stat": "ok",
        }
    ).encode()


def test_flickr_original_only_when_a_free_account_may_serve_it():
    body = flickr_answer(
        {
            "id": "1",
            "url_o": "https://x/1_o.jpg",
            "o_width": "4000",
            "o_height": "3000",
            "url_k": "https://x/1_k.jpg",
            "width_k": 2048,
            "height_k": 1536,
        },
        {
            "id": "2",
            "url_o": "https://x/2_o.jpg",
            "width_o": 900,
            "height_o": 600,
            "url_c": "https://x/2_c.jpg",
            "width_c": 800,
            "height_c": 533,
        },
        {"id": "3", "url_o": "https://x/3_o.jpg"},
        {"id": "4", "url_z": "https://x/4_z.jpg", "width_z": "640", "height_z": "480"},
        {"id": "5", "url_sq": "https://x/5_sq.jpg"},
        {"id": "6"},
    )
    results = flickr.parse(body)
    assert [(r.image_url, r.size_taken) for r in results] == [
        ("https://x/1_k.jpg", "large 2048"),
        ("https://x/2_o.jpg", "original"),
        ("https://x/3_o.jpg", "original"),  # nothing else offered
        ("https://x/4_z.jpg", "medium 640"),
    ]
    assert (results[0].width, results[0].height) == (2048, 1536)
    assert (results[1].width, results[1].height) == (900, 600)
    assert dict(results.dropped) == {"no-size": 2}  # a cropped square is no rendition
    assert results.more is False


def test_flickr_key_message_says_pro(monkeypatch, client):
    with pytest.raises(MissingApiKey, match="Pro"):
        engines.search("flickr", client, "canal", 5)


def test_flickr_drops_reach_the_search_answer(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_FLICKR_URL", server.base)
    monkeypatch.setenv("FLICKR_API_KEY", "k")
    server.routes["/services/rest/"] = lambda q: Answer(
        flickr_answer(
            {"id": f"{q['page'][0]}a", "url_l": f"https://x/{q['page'][0]}.jpg"},
            {"id": f"{q['page'][0]}b"},
            page=int(q["page"][0]),
            pages=3,
        )
    )
    results = engines.search("flickr", client, "canal", 50)
    assert len(results) == 3 and dict(results.dropped) == {"no-size": 3}
    assert server.hits["/services/rest/"] == 3  # stopped at the last page the API named
    extras = server.queries["/services/rest/"][0]["extras"][0].split(",")
    assert {"url_o", "url_k", "url_m", "o_dims", "date_taken"} <= set(extras)


# -- Wikimedia: the User-Agent policy, TIFF renderings ---------------------------------------


def wikimedia_answer(*infos: dict) -> bytes:
    pages = {
        str(i): {"pageid": i, "ns": 6, "title": f"File:{i}", "index": i, "imageinfo": [info]}
        for i, info in enumerate(infos, 1)
    }
    return json.dumps({"batchcomplete": "", "query": {"pages": pages}}).encode()


def test_wikimedia_needs_a_contact_and_sends_it(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_WIKIMEDIA_URL", server.base)
    server.routes["/w/api.php"] = Answer(fixture("wikimedia_page1.json"))
    with pytest.raises(MissingContact) as info:
        engines.search("wikimedia", client, "sunflowers", 5)
    assert "STYLEBENCH_CONTACT" in str(info.value) and "export" in str(info.value)
    assert server.hits["/w/api.php"] == 0
    monkeypatch.setenv("STYLEBENCH_CONTACT", "not a contact")
    with pytest.raises(ValueError, match="e-mail"):
        engines.search("wikimedia", client, "sunflowers", 5)
    monkeypatch.setenv("STYLEBENCH_CONTACT", "ops@example.org")
    assert len(engines.search("wikimedia", client, "sunflowers", 5)) == 3
    agent = server.headers["/w/api.php"]["User-Agent"]
    assert agent.startswith("stylebench/") and "(ops@example.org)" in agent
    assert "python-requests/" in agent
    assert server.queries["/w/api.php"][0]["iiurlwidth"] == ["1920"]


def test_wikimedia_refusal_names_the_user_agent(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_WIKIMEDIA_URL", server.base)
    monkeypatch.setenv("STYLEBENCH_CONTACT", "https://ops.example.org/about")
    server.routes["/w/api.php"] = Answer(
        b"Please set a user-agent and respect our robot policy", 403
    )
    with pytest.raises(Blocked, match="User-Agent"):
        engines.search("wikimedia", client, "sunflowers", 5)


def test_wikimedia_takes_the_rendering_of_a_tiff():
    results = wikimedia.parse(
        wikimedia_answer(
            {
                "url": "https://u/a.tif",
                "mime": "image/tiff",
                "width": 9000,
                "height": 6000,
                "thumburl": "https://u/thumb/a.tif/lossy-page1-1920px-a.tif.jpg",
                "thumbwidth": 1920,
                "thumbheight": 1280,
                "descriptionurl": "https://c/a",
            },
            {
                "url": "https://u/b.jpg",
                "mime": "image/jpeg",
                "width": 800,
                "height": 600,
                "thumburl": "https://u/thumb/b.jpg/800px-b.jpg",
            },
            {"url": "https://u/c.svg", "mime": "image/svg+xml"},
            {"url": "https://u/d.tiff", "mime": "image/tiff"},
            {},
        )
    )
    assert [(r.image_url, r.size_taken) for r in results] == [
        ("https://u/thumb/a.tif/lossy-page1-1920px-a.tif.jpg", "rendering 1920 px"),
        ("https://u/b.jpg", "original"),
    ]
    assert (results[0].width, results[0].height) == (1920, 1280)
    assert results[1].thumbnail_url == "https://u/thumb/b.jpg/800px-b.jpg"
    assert dict(results.dropped) == {
        "unsupported-format": 1,
        "tiff-without-rendering": 1,
        "no-image-info": 1,
    }


def test_contact_in_a_custom_user_agent(monkeypatch):
    monkeypatch.setenv("STYLEBENCH_CONTACT", "ops@example.org")
    assert user_agent("mybot/1.0") == "mybot/1.0 (ops@example.org)"
    assert user_agent("mybot/1.0 (ops@example.org)") == "mybot/1.0 (ops@example.org)"
    monkeypatch.delenv("STYLEBENCH_CONTACT")
    assert user_agent("mybot/1.0") == "mybot/1.0"


# -- Openverse: 20 a minute, 200 a day, 240 deep -------------------------------------------


class FakeTime:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_budget_waits_for_the_minute_and_refuses_past_the_day(tmp_path):
    t = FakeTime()
    budget = RequestBudget(
        "openverse", openverse.LIMITS, path=tmp_path / "b.json", clock=t.clock, sleep=t.sleep
    )
    for _ in range(20):
        assert budget.acquire() == 0
    assert budget.acquire() == pytest.approx(60)  # the 21st waits for the window
    assert t.slept == [pytest.approx(60)]
    other = RequestBudget(  # another process: same file, same allowance
        "openverse", openverse.LIMITS, path=tmp_path / "b.json", clock=t.clock, sleep=t.sleep
    )
    used = 21
    while used < 200:
        other.acquire()
        used += 1
    with pytest.raises(QuotaExhausted, match="200 requests a day") as info:
        budget.acquire()
    assert "UTC" in str(info.value)
    t.now += 86400
    assert budget.acquire() == 0  # a day later the budget is free again


def test_budget_survives_a_damaged_file(tmp_path):
    path = tmp_path / "b.json"
    path.write_text("{not json")
    t = FakeTime()
    budget = RequestBudget("x", ((1, 60.0),), path=path, clock=t.clock, sleep=t.sleep)
    assert budget.acquire() == 0 and json.loads(path.read_text()) == [t.now]


def openverse_page(q: dict[str, list[str]]) -> Answer:
    page = int(q["page"][0])
    results = [
        {
            "url": f"https://img.example.com/ov/{page}-{i}.jpg",
            "license": "cc0",
            "license_version": "1.0",
            "width": "640",
            "height": 480,
        }
        for i in range(20)
    ]
    return Answer(
        json.dumps(
            {"result_count": 10000, "page_count": 500, "page_size": 20, "results": results}
        ).encode()
    )


def test_openverse_pages_no_deeper_than_240_and_says_so(server, monkeypatch, client, caplog):
    monkeypatch.setenv("STYLEBENCH_OPENVERSE_URL", server.base)
    t = FakeTime()
    budget = RequestBudget("openverse", openverse.LIMITS, clock=t.clock, sleep=t.sleep)
    monkeypatch.setattr(openverse, "BUDGET", budget)
    server.routes["/v1/images/"] = openverse_page
    with caplog.at_level(logging.WARNING, logger="scraper.engines.openverse"):
        results = engines.search("openverse", client, "still life", 500)
    assert len(results) == 240 and server.hits["/v1/images/"] == 12
    assert "240" in caplog.text and "500" in caplog.text
    assert (results[0].width, results[0].height) == (640, 480)
    assert t.slept == []  # 12 requests fit in a minute
    server.reset()
    server.routes["/v1/images/"] = openverse_page
    engines.search("openverse", client, "still life", 240)  # 12 more: 24 in the minute
    assert len(t.slept) == 1 and server.hits["/v1/images/"] == 12


# -- drops: counted through paging, licence filtering included --------------------------------


def test_collect_sums_drops_and_goes_on_past_pages_that_were_all_dropped():
    pages = [
        Results([Result("https://x/1")], {"no-size": 1}),
        Results([], {"license-filtered": 20}),
        Results([Result("https://x/2")], {"no-size": 2}),
        Results([Result("https://x/2")], {"no-size": 2}),  # the last page answered again
    ]
    got = collect("t", 10, lambda offset, count: pages[offset // count], 20)
    assert [r.image_url for r in got] == ["https://x/1", "https://x/2"]
    assert dict(got.dropped) == {"no-size": 3, "license-filtered": 20}


def test_licence_filtering_is_counted(server, monkeypatch, client):
    monkeypatch.setenv("STYLEBENCH_OPENVERSE_URL", server.base)
    server.routes["/v1/images/"] = lambda q: Answer(
        fixture("openverse_page1.json") if q["page"] == ["1"] else fixture("openverse_empty.json")
    )
    results = engines.search("openverse", client, "still life", 10, ("cc0",))
    assert len(results) == 1 and dict(results.dropped) == {"license-filtered": 2}


def test_scrape_summary_accounts_for_every_item(server, monkeypatch, fast, tmp_path):
    from scraper import scrape
    from storage import Store
    from tests.scraper.helpers import jpeg

    monkeypatch.setenv("STYLEBENCH_FLICKR_URL", server.base)
    monkeypatch.setenv("FLICKR_API_KEY", "k")
    monkeypatch.setenv("STYLEBENCH_CONTACT", "ops@example.org")
    photos = [
        {"id": "1", "url_k": server.url("/1_k.jpg"), "width_k": 400, "height_k": 300},
        {"id": "2", "url_o": server.url("/2_o.jpg"), "o_width": 400, "o_height": 300},
        {"id": "3", "url_m": server.url("/3_m.jpg")},
        {"id": "4"},
        {"id": "5", "url_sq": server.url("/5_sq.jpg")},
    ]
    server.routes["/services/rest/"] = Answer(flickr_answer(*photos))
    for path, name in (("/1_k.jpg", "astronaut"), ("/2_o.jpg", "rocket"), ("/3_m.jpg", "coffee")):
        server.routes[path] = Answer(jpeg(name, 400))
    store = Store(tmp_path / "data")
    summary = scrape(store, "canal", "style", "flickr", 10, download=fast)
    assert (summary.found, summary.accepted, summary.dropped) == (3, 3, 2)
    assert summary.found + summary.dropped == len(photos)
    assert summary.dropped_by_reason == {"no-size": 2}
    assert "dropped by the engine's parser: no-size 2" in summary.render()
    rows = store.query("SELECT image_url, size_taken, title FROM images ORDER BY rank").to_pylist()
    assert [r["size_taken"] for r in rows] == ["large 2048", "original", "medium 500"]
    assert all(r["title"] == "t" for r in rows)
    assert "(ops@example.org)" in server.headers["/1_k.jpg"]["User-Agent"]  # images too
