"""The open-access museum engines: pure parsers on documented formats, and scrapes end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from scraper import engines
from scraper.download import Client
from scraper.engines import artic, cleveland, met
from scraper.errors import LayoutChanged, UnsupportedOption
from storage import Store
from stylebench.cli.main import app
from tests.localserver import Answer
from tests.scraper.museums import SERVE, works


@pytest.fixture
def client(fast) -> Client:
    return Client(fast)


def point(monkeypatch, server, engine: str) -> None:
    monkeypatch.setenv(f"STYLEBENCH_{engine.upper()}_URL", server.base)


# -- parsers -------------------------------------------------------------------------------


def test_met_parsers():
    assert met.parse_search(b'{"total":3,"objectIDs":[436535, 437133, "12"]}') == [
        436535,
        437133,
        12,
    ]
    assert met.parse_search(b'{"total":0,"objectIDs":null}') == []
    with pytest.raises(LayoutChanged):
        met.parse_search(b'{"results": []}')
    (r,) = met.parse(
        json.dumps(
            {
                "objectID": 436535,
                "isPublicDomain": True,
                "primaryImage": "https://images.metmuseum.org/CRDImages/ep/original/DT1567.jpg",
                "primaryImageSmall": "https://images.metmuseum.org/CRDImages/ep/web-large/DT1567.jpg",
                "title": "Wheat Field with Cypresses",
                "artistDisplayName": "Vincent van Gogh",
                "objectDate": "1889",
                "objectURL": "https://www.metmuseum.org/art/collection/search/436535",
            }
        ).encode()
    )
    assert (r.license, r.license_url) == (
        "CC0 1.0",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    )
    assert (r.creator, r.title, r.date, r.size_taken) == (
        "Vincent van Gogh",
        "Wheat Field with Cypresses",
        "1889",
        "original",
    )
    closed = met.parse(b'{"objectID": 1, "isPublicDomain": false, "primaryImage": ""}')
    assert list(closed) == [] and dict(closed.dropped) == {"not-public-domain": 1}
    imageless = met.parse(b'{"objectID": 2, "isPublicDomain": true, "primaryImage": ""}')
    assert dict(imageless.dropped) == {"no-image": 1}
    assert dict(met.parse(b'{"message": "ObjectID not found"}').dropped) == {"object-not-found": 1}


def test_artic_parser_builds_iiif_urls():
    body = json.dumps(
        {
            "pagination": {
                "total": 3,
                "limit": 3,
                "offset": 0,
                "total_pages": 1,
                "current_page": 1,
            },
            "data": [
                {
                    "id": 27992,
                    "title": "A Sunday on La Grande Jatte",
                    "image_id": "2d484387",
                    "is_public_domain": True,
                    "artist_display": "Georges Seurat\nFrench, 1859-1891",
                    "artist_title": None,
                    "date_display": "1884-86",
                    "thumbnail": {"width": 3000, "height": 2000},
                },
                {"id": 2, "title": "x", "image_id": "abc", "is_public_domain": False},
                {"id": 3, "title": "y", "image_id": None, "is_public_domain": True},
            ],
            "config": {
                "iiif_url": "https://www.artic.edu/iiif/2",
                "website_url": "http://www.artic.edu",
            },
        }
    ).encode()
    results = artic.parse(body)
    (r,) = results
    assert r.image_url == "https://www.artic.edu/iiif/2/2d484387/full/843,/0/default.jpg"
    assert r.page_url == "http://www.artic.edu/artworks/27992"
    assert (r.creator, r.date, r.license) == ("Georges Seurat", "1884-86", "CC0 1.0")
    assert (r.width, r.height) == (843, 562) and r.size_taken == "iiif 843 px wide"
    assert dict(results.dropped) == {"not-public-domain": 1, "no-image": 1}
    assert results.more is False
    with pytest.raises(LayoutChanged):
        artic.parse(b'{"artworks": []}')


def test_cleveland_parser():
    body = json.dumps(
        {
            "info": {"total": 3},
            "data": [
                {
                    "id": 1,
                    "accession_number": "1958.39",
                    "share_license_status": "CC0",
                    "title": "Water Lilies",
                    "creation_date": "c. 1915-1926",
                    "creators": [
                        {"description": "Claude Monet (French, 1840-1926)", "role": "artist"}
                    ],
                    "images": {
                        "web": {
                            "url": "https://openaccess-cdn.clevelandart.org/1958.39/1958.39_web.jpg",
                            "width": "893",
                            "height": "400",
                        }
                    },
                    "url": "https://clevelandart.org/art/1958.39",
                },
                {"id": 2, "share_license_status": "Copyrighted", "images": {}},
                {"id": 3, "share_license_status": "CC0", "images": {"web": None}},
            ],
        }
    ).encode()
    results = cleveland.parse(body)
    (r,) = results
    assert (r.creator, r.title, r.date) == (
        "Claude Monet (French, 1840-1926)",
        "Water Lilies",
        "c. 1915-1926",
    )
    assert (r.width, r.height, r.license, r.size_taken) == (893, 400, "CC0 1.0", "web")
    assert dict(results.dropped) == {"not-public-domain": 1, "no-image": 1}
    with pytest.raises(LayoutChanged):
        cleveland.parse(b"<html>maintenance</html>")


@pytest.mark.parametrize("engine", ["met", "artic", "cleveland"])
def test_museums_land_only_cc0(engine, client):
    with pytest.raises(UnsupportedOption, match="CC0"):
        engines.search(engine, client, "still life", 5, ("by-nc",))


# -- search against local imitations -------------------------------------------------------


def test_met_search_counts_what_it_skips(server, monkeypatch, client):
    point(monkeypatch, server, "met")
    SERVE["met"](server, works(12, closed=(1, 4), imageless=(7,)))
    server.routes["/public/collection/v1/objects/1011"] = Answer(b'{"message":"Not found"}', 404)
    results = engines.search("met", client, "still life", 50)
    assert len(results) == 8
    assert dict(results.dropped) == {"not-public-domain": 2, "no-image": 1, "object-not-found": 1}
    assert server.queries["/public/collection/v1/search"][0] == {
        "q": ["still life"],
        "hasImages": ["true"],
    }
    first = engines.search("met", client, "still life", 2)
    assert [r.rank for r in first] == [1, 2]


def test_artic_and_cleveland_ask_for_open_works(server, monkeypatch, client):
    for engine in ("artic", "cleveland"):
        point(monkeypatch, server, engine)
        SERVE[engine](server, works(7, closed=(2,)))
    assert len(engines.search("artic", client, "still life", 50)) == 6
    q = server.queries["/api/v1/artworks/search"][0]
    assert q["query[term][is_public_domain]"] == ["true"] and "image_id" in q["fields"][0]
    assert len(engines.search("cleveland", client, "still life", 50)) == 6
    q = server.queries["/api/artworks/"][0]
    assert (q["cc0"], q["has_image"], q["q"]) == (["1"], ["1"], ["still life"])


# -- end to end through the CLI ------------------------------------------------------------


@pytest.mark.slow  # 40 to 50 requests to one host, at the default 4 per second per host
@pytest.mark.parametrize("engine", ["met", "artic", "cleveland"])
def test_scrape_museum_end_to_end(engine, server, monkeypatch, tmp_path):
    point(monkeypatch, server, engine)
    SERVE[engine](server, works(26, closed=(3, 9, 15), imageless=(5,)))
    monkeypatch.setenv("COLUMNS", "200")
    data = str(tmp_path / "data")
    args = ["--data-dir", data, "--quiet", "scrape", "still life", "--role", "style"]
    out = CliRunner().invoke(app, [*args, "--engine", engine, "--max", "20"])
    assert out.exit_code == 0, out.output
    assert "found 20" in out.output and "accepted 20" in out.output
    if engine == "met":  # the others ask their API for open works with images only
        assert "dropped by the engine's parser" in out.output
        assert "not-public-domain 3" in out.output and "no-image 1" in out.output
    rows = (
        Store(data)
        .query(
            "SELECT engine, role, query, license, license_url, creator, title, date, size_taken, "
            "status FROM catalog ORDER BY rank"
        )
        .to_pylist()
    )
    assert len(rows) == 20
    assert {r["license"] for r in rows} == {"CC0 1.0"}
    assert {r["license_url"] for r in rows} == {
        "https://creativecommons.org/publicdomain/zero/1.0/"
    }
    assert all(r["creator"].startswith("Painter ") for r in rows)
    assert all(
        r["title"].startswith("Still Life with Lemons") and r["date"].startswith("ca. 16")
        for r in rows
    )
    assert {r["status"] for r in rows} == {"accepted"}
    assert {(r["engine"], r["role"], r["query"]) for r in rows} == {(engine, "style", "still life")}
    assert all(r["size_taken"] for r in rows)
    again = CliRunner().invoke(app, [*args, "--engine", engine, "--max", "20"])
    assert again.exit_code == 0 and "already in catalog 20" in again.output
