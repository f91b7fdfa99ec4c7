"""The HTML report, rendered by headless Chromium: every image loads."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from flows.batch import plan, run_batch
from flows.catalog import pair_catalog
from flows.report import build_report
from flows.specs import ExperimentSpec, expand_configs, load_spec

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--allow-file-access-from-files",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "headless Chromium is needed to render the report: apt-get install chromium "
            "(.ci/run installs it)"
        )
    return path


@pytest.fixture
def report_store(small_catalog):
    store = small_catalog
    pair_catalog(store, "all")
    configs = expand_configs(
        load_spec(
            {
                "name": "r",
                "methods": ["gatys"],
                "settings": {"size": 32, "steps": 5, "optimizer": "adam"},
            },
            ExperimentSpec,
        )
    )
    run_batch(store, plan(store, configs)[:3])
    store.append(
        "loss_matrix",
        [
            {
                "experiment_id": "e",
                "feature_model": "vgg19",
                "image_a": a,
                "image_b": b,
                "content_loss": float(i + j),
                "style_loss": float(abs(i - j)),
            }
            for i, a in enumerate("xyz")
            for j, b in enumerate("xyz")
        ],
    )
    return store


def test_report_has_gallery_and_plots(report_store, tmp_path):
    result = build_report(report_store, tmp_path / "report")
    # cost against quality and the loss curves (one output size: no time-size plot)
    assert result.runs == 3 and result.plots == 2
    html = result.index.read_text()
    assert html.count('alt="output"') == 3 and "gatys" in html
    # The quality of each run, recorded in its row, stands beside its time.
    runs = report_store.read("runs").to_pylist()
    assert all(0 < r["quality_ssim"] <= 1 and r["quality_colour_distance"] > 0 for r in runs)
    assert all(r["quality_affine_residual"] >= 0 for r in runs)
    assert html.count("· SSIM ") == 3 and html.count("affine resid.") == 3
    for src in re.findall(r'src="([^"]+)"', html):
        assert (tmp_path / "report" / src).is_file(), src


@pytest.mark.browser
def test_report_renders_in_headless_chromium_with_every_image_loaded(report_store, tmp_path):
    result = build_report(report_store, tmp_path / "report")
    url = result.index.resolve().as_uri()
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert match, f"the page's load handler did not run:\n{dom.stderr[-2000:]}"
    loaded, total = map(int, match.groups())
    assert total >= 3 + 3 + 3 + 2 and loaded == total  # contents, styles, outputs, plots
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1200,1600",
            "--virtual-time-budget=5000",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[:2] == (1600, 1200)
    assert pixels.std() > 20  # plots and photos, not a blank page
