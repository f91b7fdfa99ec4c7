"""The catalog commands through the real typer app: scrape, import, images, accept, reject."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app
from tests.localserver import Answer
from tests.scraper.helpers import encode, fixture, jpeg
from tests.scraper.test_pipeline import bing_page


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")  # rich reads it per call: tables stay on one line
    runner = CliRunner()
    data = str(tmp_path / "data")

    def invoke(*args: str):
        return runner.invoke(app, ["--data-dir", data, "--quiet", *args])

    invoke.store = lambda: Store(data)  # type: ignore[attr-defined]
    return invoke


def test_scrape_twice_then_review(run, server, monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEBENCH_BING_URL", server.base)
    urls = [server.url(f"/{n}.jpg") for n in ("astronaut", "rocket", "moon")]
    server.routes["/images/async"] = lambda q: Answer(
        bing_page(urls) if q["first"] == ["1"] else b""
    )
    server.routes["/astronaut.jpg"] = Answer(jpeg("astronaut", 400))
    server.routes["/rocket.jpg"] = Answer(jpeg("rocket", 400))
    server.routes["/moon.jpg"] = Answer(jpeg("moon", 120))

    first = run("scrape", "space", "--role", "content", "--engine", "bing", "--max", "10")
    assert first.exit_code == 0, first.output
    assert "found 3" in first.output and "accepted 2" in first.output
    assert "too-small 1" in first.output
    second = run("scrape", "space", "--role", "content", "--engine", "bing", "--max", "10")
    assert "already in catalog 3" in second.output and "downloaded 0" in second.output
    assert run.store().query("SELECT count(*) FROM images").column(0)[0].as_py() == 3

    listing = run("images", "--status", "rejected")
    assert (
        listing.exit_code == 0 and "too-small" in listing.output and "1 image(s)" in listing.output
    )

    ids = run.store().query("SELECT image_id, status FROM catalog ORDER BY image_id").to_pylist()
    rejected = next(r["image_id"] for r in ids if r["status"] == "rejected")
    out = run("accept", rejected[:8], "--reason", "small but lovely")
    assert out.exit_code == 0, out.output
    latest = run.store().query(
        f"SELECT status, reason, decided_by FROM curation_latest WHERE image_id = '{rejected}'"
    )
    assert latest.to_pylist() == [
        {"status": "accepted", "reason": "small but lovely", "decided_by": "user"}
    ]
    accepted = [r["image_id"] for r in ids if r["status"] == "accepted"]
    assert run("reject", accepted[0]).exit_code == 0
    assert (
        run.store()
        .query("SELECT count(*) FROM catalog WHERE status = 'accepted'")
        .column(0)[0]
        .as_py()
        == 2
    )

    sheet = tmp_path / "sheet.html"
    out = run("images", "--query", "space", "--html", str(sheet))
    assert out.exit_code == 0, out.output
    page = sheet.read_text()
    assert page.count('src="data:image/jpeg;base64,') == 3
    assert "small but lovely" in page and rejected[:12] in page
    linked = tmp_path / "linked.html"
    assert run("images", "--html", str(linked), "--relative").exit_code == 0
    assert re.search(r'src="data/images/[0-9a-f]{2}/[0-9a-f]{64}\.jpg"', linked.read_text())


def test_id_prefix_errors(run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(17):  # 17 ids over 16 hex digits: two must share their first character
        noise = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
        (folder / f"{i}.png").write_bytes(encode(Image.fromarray(noise), "PNG"))
    out = run("import", str(folder), "--role", "style")
    assert out.exit_code == 0 and "found 17" in out.output, out.output
    ids = run.store().query("SELECT image_id FROM catalog").column(0).to_pylist()
    first = [i[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)
    out = run("reject", shared)
    assert out.exit_code == 1 and "ambiguous" in out.output
    assert run("reject", ids[0][:10]).exit_code == 0
    (folder / "broken.jpg").write_bytes(b"<html>not a picture</html>")
    assert "not-an-image 1" in run("import", str(folder), "--role", "style").output
    broken = run.store().query("SELECT image_id FROM catalog WHERE path IS NULL").column(0)[0]
    out = run("accept", broken.as_py())
    assert out.exit_code == 1 and "no stored image" in out.output
    out = run("reject", "zzzz")
    assert out.exit_code == 1 and "no image id starts with" in out.output


def test_bad_options_are_clear(run, server, monkeypatch):
    out = run("scrape", "x", "--role", "painting")
    assert out.exit_code != 0 and "content" in out.output
    out = run("scrape", "x", "--role", "style", "--engine", "bing", "--license", "cc0")
    assert out.exit_code == 1 and "openverse" in out.output
    monkeypatch.setenv("STYLEBENCH_GOOGLE_URL", server.base)
    server.routes["/search"] = Answer(fixture("google_js_wall.html"))
    out = run("scrape", "x", "--role", "style", "--engine", "google")
    assert out.exit_code == 1 and "JavaScript" in out.output and "bing" in out.output
    out = run("import", "/no/such/place", "--role", "style")
    assert out.exit_code == 1 and "no such file" in out.output
