"""An experiment's page, read from what headless Chromium rendered: the comparison grid, the
summary per setting, and the rank agreement of two networks' loss matrices."""

from __future__ import annotations

import re
import subprocess

import pytest
import torch
from bs4 import BeautifulSoup
from typer.testing import CliRunner

from flows.batch import plan_experiment, stylize_claimed
from flows.catalog import loss_matrices, pair_catalog
from flows.specs import ExperimentSpec, load_spec
from storage import MatrixCell, Store
from stylebench.cli.main import app
from styletransfer.features import _vgg_names
from styletransfer.lossmatrix import loss_matrix
from tests.flows.test_report import CHROMIUM_FLAGS, _chromium

LAYER_SETS = [["relu1_1", "relu2_1"], ["relu2_1", "relu3_1"]]
EXPERIMENT = {
    "name": "layer sets",
    "methods": ["gatys"],
    "settings": {"size": 32, "steps": 4, "optimizer": "adam"},
    "grid": {"style_layers": LAYER_SETS},
    "pairs": {"strategy": "all", "limit": 2},
}


def random_vgg16(path, seed: int = 0) -> str:
    """A torchvision-style vgg16 state dict of random weights, up to conv3_1: a second
    feature network that needs no download."""
    gen = torch.Generator().manual_seed(seed)
    names = _vgg_names("vgg16")
    state, channels = {}, 3
    for idx, name in enumerate(names[: names.index("conv3_1") + 1]):
        if name.startswith("conv"):
            out = 64 * 2 ** (int(name[4]) - 1)
            state[f"features.{idx}.weight"] = torch.randn(out, channels, 3, 3, generator=gen) * 0.1
            state[f"features.{idx}.bias"] = torch.zeros(out)
            channels = out
    torch.save(state, path)
    return str(path)


def record_experiment(store: Store) -> None:
    """Two settings x two pairs of tiny gatys runs, as `stylize --experiment` records them."""
    pair_catalog(store, "all")
    night = plan_experiment(store, load_spec(EXPERIMENT, ExperimentSpec))
    assert len(night.items) == 4
    for batch in night.batches:
        stylize_claimed(store, batch)


def record_two_network_matrix(store: Store, tmp_path) -> None:
    """The catalog's loss matrix under the bundled vgg19 and a random-weights vgg16."""
    loss_matrices(store, ["vgg19"], size=32, experiment_id=EXPERIMENT["name"])
    images = store.catalog.accepted(None, order="role")
    paths = [str(store.local_path(i.path or "")) for i in images]
    matrix = loss_matrix(
        paths,
        "vgg16",
        weights=random_vgg16(tmp_path / "vgg16-random.pth"),
        content_layers=["relu2_1"],
        style_layers=["relu1_1", "relu2_1", "relu3_1"],
        size=32,
    )
    store.matrices.record([MatrixCell(**row) for row in matrix.rows(EXPERIMENT["name"])])


def render(page, tmp_path) -> BeautifulSoup:
    """The DOM of ``page`` after headless Chromium loaded it and ran its scripts."""
    dom = subprocess.run(
        [
            _chromium(),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    soup = BeautifulSoup(dom.stdout, "html.parser")
    assert soup.body is not None and soup.body.get("data-images"), dom.stderr[-2000:]
    return soup


@pytest.mark.browser
def test_an_experiment_page_compares_settings_side_by_side(small_catalog, tmp_path):
    store = small_catalog
    record_experiment(store)
    record_two_network_matrix(store, tmp_path)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["-d", store.url, "report", "--experiment", EXPERIMENT["name"], "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    pages = list(out.glob("experiment-layer-sets-*.html"))
    assert len(pages) == 1, result.output
    soup = render(pages[0], tmp_path)

    loaded, total = map(int, soup.body["data-images"].split("/"))
    assert loaded == total > 0
    # The grid: a row per pair, a column per setting, each cell an output that loaded.
    grid = soup.select_one("table.grid")
    heads = grid.select("thead th.setting")
    assert len(heads) == 2
    assert [" ".join(h.get_text(" ").split()) for h in heads] == [
        "gatys style layers: relu1_1, relu2_1",
        "gatys style layers: relu2_1, relu3_1",
    ]
    rows = grid.select("tbody tr")
    assert len(rows) == 2
    for row in rows:
        cells = row.select("td.cell")
        assert len(cells) == 2 and all(c["data-status"] == "ok" for c in cells)
        for cell in cells:
            img = cell.select_one("img")
            assert img is not None and img["data-loaded"] == "1", cell
            assert re.search(r"\d s\b", cell.get_text()) and "SSIM" in cell.get_text()
        # the pair's content and style thumbnails loaded too
        assert [i["data-loaded"] for i in row.select("th.pair img")] == ["1", "1"]
    # The summary: one row per setting, the best time marked.
    summary = soup.select_one("table.summary")
    body = summary.select("tbody tr")
    assert len(body) == 2
    assert [r.select_one("td").get_text(strip=True) for r in body] == [h["title"] for h in heads]
    assert len(summary.select("td.best")) >= 1
    assert "SSIM" in summary.select_one("thead").get_text()
    # The loss matrices of two networks: their rank agreement and its meaning.
    agreements = soup.select("p.agreement")
    assert {a["data-loss"] for a in agreements} == {"content", "style"}
    for a in agreements:
        text = " ".join(a.get_text(" ").split())
        match = re.search(r"vgg16 vs vgg19: Spearman ρ = (-?[\d.]+), .* n = 10 image pairs", text)
        assert match, text  # 5 images: 10 unordered pairs
        assert -1 <= float(match.group(1)) <= 1
        assert "vgg16 and vgg19" in text  # the sentence that says what it means
    # ... with a heatmap per network whose axes carry the images' names, roles and thumbnails
    heat = soup.select("section.matrix table.heat")
    assert len(heat) == 4  # two losses x two networks
    first_rows = heat[0].select("th.rowhead")
    assert len(first_rows) == 5
    assert "content-1.png" in first_rows[0].get_text() and "content" in first_rows[0].get_text()
    assert all(i["data-loaded"] == "1" for i in heat[0].select("img"))
    assert len(heat[0].select("td.v")) == 25
    # The index lists the experiment and links its page.
    index = (out / "index.html").read_text()
    assert f'href="{pages[0].name}"' in index
