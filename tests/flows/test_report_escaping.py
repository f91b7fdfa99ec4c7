"""Stored text is untrusted: nothing from a data directory reaches the report or contact sheet as markup."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from typer.testing import CliRunner

from flows.report import build_report
from storage import Store
from stylebench.cli.main import app

HOSTILE = "<script>alert({n})</script>"


def _hostile_store(tmp_path) -> Store:
    # a data directory whose own name carries markup
    store = Store(str(tmp_path / "<script>alert(0)" / "</script>"))
    now = datetime.now(timezone.utc)
    store.append(
        "runs",
        [
            {
                "run_id": "r1",
                "pair_id": "p1",
                "content_id": "c1",
                "style_ids": ["s1"],
                "method": "gatys",
                "feature_model": "vgg19",
                "config": json.dumps({"model": HOSTILE.format(n=1), "size": 32, "steps": 5}),
                "status": "failed",
                "error": "RuntimeError: " + HOSTILE.format(n=2),
                "experiment": HOSTILE.format(n=5) + " $x$",
                "started_at": now,
                "finished_at": now,
            },
            {
                "run_id": "r2",
                "pair_id": "p1",
                "content_id": "c1",
                "style_ids": ["s1"],
                "method": "gatys",
                "feature_model": "vgg19",
                "config": "not json " + HOSTILE.format(n=3),
                "status": "failed",
                "started_at": now,
                "finished_at": now,
            },
        ],
    )
    store.append(
        "loss_matrix",
        [
            {
                "experiment_id": HOSTILE.format(n=4) + " $\\frac$",
                "feature_model": "vgg19",
                "image_a": a,
                "image_b": b,
                "content_loss": 1.0,
                "style_loss": 2.0,
            }
            for a in "xy"
            for b in "xy"
        ],
    )
    return store


def test_report_escapes_every_stored_string(tmp_path, probe):
    store = _hostile_store(tmp_path)
    result = build_report(store, tmp_path / "report")
    page = result.index.read_text()
    for n in range(5):
        assert f"alert({n})</script>" not in page, n
        assert f"&lt;script&gt;alert({n})" in page, n
    # the one script block is the page's own image counter
    assert page.count("<script>") == 1
    # the experiment's page: its name escaped, its file name made of safe characters
    (experiment,) = result.pages
    assert experiment.name.startswith("experiment-script-alert-5-script-x-")
    text = experiment.read_text()
    assert "alert(5)</script>" not in text and "&lt;script&gt;alert(5)" in text
    assert "alert(1)</script>" not in text and text.count("<script>") == 1
    probe.record(
        "report: <script> in data dir, settings, error, experiment, matrix id",
        rejected=True,
        reason="escaped in index.html and the experiment's page",
    )


def test_contact_sheet_escapes_stored_reasons(tmp_path, probe):
    data = tmp_path / "d<script>alert(0)</script>"
    store = Store(str(data))
    now = datetime.now(timezone.utc)
    store.append(
        "images",
        [
            {
                "image_id": "failed-1",
                "role": "style",
                "query": HOSTILE.format(n=1),
                "engine": "url",
                "image_url": "javascript:alert(2)",
                "fetched_at": now,
            }
        ],
    )
    store.decide(["failed-1"], "rejected", "bad-url: " + HOSTILE.format(n=3))
    out = tmp_path / "sheet.html"
    got = CliRunner().invoke(app, ["--data-dir", str(data), "images", "--html", str(out)])
    assert got.exit_code == 0, got.output
    page = out.read_text()
    for n in (0, 1, 3):
        assert f"alert({n})</script>" not in page, n
    assert "javascript:" not in page
    probe.record("contact sheet: <script> in reason and query", rejected=True, reason="escaped")
