"""``stylebench engines [--check]`` through the real typer app, against a local server."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from scraper.engines import ENGINES, canary
from stylebench.cli.main import app
from tests.localserver import Answer
from tests.scraper.helpers import fixture


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["engines", *args])


def line_of(output: str, engine: str) -> str:
    return next(line for line in output.splitlines() if re.search(rf"\b{engine}\b", line))


def test_every_engine_is_described():
    assert set(canary.INFO) == set(ENGINES)


def test_engines_lists_what_each_needs(run, monkeypatch):
    out = run()
    assert out.exit_code == 0, out.output
    for name in ENGINES:
        assert name in out.output
    assert "FLICKR_API_KEY (not set)" in line_of(out.output, "flickr")
    assert "STYLEBENCH_CONTACT (not set)" in line_of(out.output, "wikimedia")
    assert "(optional)" in line_of(out.output, "google")
    monkeypatch.setenv("FLICKR_API_KEY", "k")
    monkeypatch.setenv("STYLEBENCH_BING_URL", "http://127.0.0.1:9999")
    out = run()
    assert "FLICKR_API_KEY (set)" in line_of(out.output, "flickr")
    assert "http://127.0.0.1:9999" in line_of(out.output, "bing")
    assert run("--engine", "altavista").exit_code == 1


def test_check_reports_working_blocked_and_changed(run, server, monkeypatch):
    for engine in ("bing", "duckduckgo", "openverse", "flickr"):
        monkeypatch.setenv(f"STYLEBENCH_{engine.upper()}_URL", server.base)
    server.routes["/images/async"] = Answer(fixture("bing_async_page1.html"))  # working
    server.routes["/"] = Answer(fixture("ddg_anomaly.html"))  # blocked: the bot check
    server.routes["/v1/images/"] = Answer(b"<html><body><div class='new'>x</div></body></html>")
    out = run("--check", "-e", "bing", "-e", "duckduckgo", "-e", "openverse", "-e", "flickr")
    assert out.exit_code == 1, out.output
    assert re.search(r"\bok\b", line_of(out.output, "bing"))
    assert "blocked" in line_of(out.output, "duckduckgo")
    assert "layout changed" in line_of(out.output, "openverse")
    assert "no key" in line_of(out.output, "flickr")
    assert "2 engine(s) failing: duckduckgo, openverse" in out.output
    assert server.hits["/images/async"] == 1  # one small query, one page
    assert server.queries["/images/async"][0]["q"] == ["landscape"]


def test_check_passes_when_every_engine_works(run, server, monkeypatch):
    monkeypatch.setenv("STYLEBENCH_BING_URL", server.base)
    server.routes["/images/async"] = Answer(fixture("bing_async_page1.html"))
    out = run("--check", "-e", "bing", "-e", "flickr", "--query", "still life")
    assert out.exit_code == 0, out.output  # a missing key is reported, not a failure
    assert server.queries["/images/async"][0]["q"] == ["still life"]


def test_check_statuses():
    from scraper import errors

    assert canary.status_of(errors.Captcha("g", "x")) == canary.BLOCKED
    assert canary.status_of(errors.JsWall("g", "x")) == canary.BLOCKED
    assert canary.status_of(errors.Consent("g", "x")) == canary.BLOCKED
    assert canary.status_of(errors.LayoutChanged("g", "x")) == canary.CHANGED
    assert canary.status_of(errors.MissingContact("w", "x")) == canary.NO_KEY
    assert canary.status_of(errors.Discontinued("g", "x")) == canary.CLOSED
    assert canary.status_of(errors.EngineError("g", "x")) == canary.ERROR
    assert canary.Check("x", canary.EMPTY).failed and not canary.Check("x", canary.NO_KEY).failed


def test_check_google_without_key_and_after_closing(run, monkeypatch, server):
    from datetime import date

    from scraper.engines import google

    monkeypatch.setenv("STYLEBENCH_GOOGLE_URL", server.base)
    out = run("--check", "-e", "google")
    assert out.exit_code == 0 and "no key" in line_of(out.output, "google"), out.output
    assert server.hits["/search"] == 0
    monkeypatch.setattr(google, "today", lambda: date(2027, 1, 1))
    out = run("--check", "-e", "google")
    assert out.exit_code == 0 and "closed" in line_of(out.output, "google"), out.output
