"""The report's experiment pages and selections, read from the HTML they write (no browser)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pytest
import yaml
from bs4 import BeautifulSoup
from PIL import Image

from flows.catalog import pair_catalog
from flows.report import build_report
from flows.report_data import image_name, settings_of, summarise
from flows.specs import ExperimentSpec, expand_configs, load_spec
from storage import Store
from storage.query import QueryError

T0 = datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)


def _config(layers: list[str], blend: list[float] | None = None, **more) -> str:
    return json.dumps(
        {"method": "gatys", "size": 32, "style_layers": layers, "style_weights": blend, **more},
        sort_keys=True,
    )


def _run(n: int, pair: str, key: str, config: str, status: str = "ok", **more) -> dict:
    return {
        "run_id": f"run{n}",
        "pair_id": pair,
        "content_id": f"content-{pair}",
        "style_ids": [f"style-{pair}"],
        "method": "gatys",
        "feature_model": "vgg19",
        "config": config,
        "config_hash": key,
        "status": status,
        "height": 32,
        "width": 32,
        "started_at": T0 + timedelta(minutes=n),
        "finished_at": T0 + timedelta(minutes=n, seconds=30),
        **more,
    }


def _output(store: Store, name: str) -> str:
    path = f"outputs/{name}.png"
    img = Image.fromarray(np.full((32, 32, 3), 90 + len(name), dtype=np.uint8))
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return store.write_bytes(path, buf.getvalue())


def _page(result, name: str) -> BeautifulSoup:
    pages = [p for p in result.pages if p.name.startswith(f"experiment-{name}-")]
    assert len(pages) == 1, result.pages
    return BeautifulSoup(pages[0].read_text(), "html.parser")


def test_failed_diverged_and_unrun_cells_show_and_new_columns_are_used_where_present(
    tmp_path, monkeypatch
):
    from storage import schemas

    store = Store(str(tmp_path / "data"))
    a, b = _config(["relu1_1"]), _config(["relu1_1", "relu2_1"])
    # Files written before seconds_wall, the phases and mask_source existed...
    newer = {
        "seconds_wall": pa.float64(),
        "seconds_wait": pa.float64(),
        "seconds_load": pa.float64(),
        "mask_source": pa.string(),
    }
    older = pa.schema([f for f in schemas.RUNS if f.name not in newer])
    monkeypatch.setitem(schemas.SCHEMAS, "runs", older)
    store.append(
        "runs",
        [
            _run(
                1,
                "p1",
                "A",
                a,
                seconds_total=5.0,
                quality_ssim=0.8,
                loss_style=10.0,
                experiment="exp",
                output_path=_output(store, "run1"),
            ),
            _run(
                2,
                "p1",
                "B",
                b,
                status="failed",
                error="RuntimeError: out of memory\nmore",
                experiment="exp",
            ),
        ],
    )
    # ... and a file of a version that records them.
    extended = older
    for name, kind in newer.items():
        extended = extended.append(pa.field(name, kind))
    monkeypatch.setitem(schemas.SCHEMAS, "runs", extended)
    store.append(
        "runs",
        [
            _run(
                3,
                "p2",
                "A",
                a,
                status="diverged",
                seconds_total=2.0,
                seconds_wall=2.5,
                experiment="exp",
                output_path=_output(store, "run3"),
                mask_source="none",
            ),
            _run(
                4,
                "p3",
                "A",
                a,
                seconds_total=6.0,
                seconds_wall=7.5,
                seconds_wait=1.5,  # queued behind another run's method
                seconds_load=0.5,
                quality_ssim=0.9,
                loss_style=30.0,
                experiment="exp",
                mask_source="auto",
                output_path=_output(store, "run4"),
            ),
            _run(
                5,
                "p3",
                "B",
                b,
                seconds_total=1.0,
                seconds_wall=1.25,
                quality_ssim=0.7,
                loss_style=20.0,
                experiment="exp",
                output_path=_output(store, "run5"),
            ),
        ],
    )
    monkeypatch.undo()  # this version's schema from here on
    store.append(
        "loss_curves",
        [
            {"run_id": "run3", "step": s, "loss_total": 10.0 - s, "loss_photoreal": 1.0 + s}
            for s in range(5)
        ],
    )
    result = build_report(store, tmp_path / "report", experiments=["exp"])
    page = _page(result, "exp")

    cells = {
        (i, j): td
        for i, tr in enumerate(page.select("table.grid tbody tr"))
        for j, td in enumerate(tr.select("td.cell"))
    }
    assert len(cells) == 6  # pairs p1, p2, p3 x settings A, B: every cell shown
    status = {k: td["data-status"] for k, td in cells.items()}
    assert sorted(status.values()) == ["diverged", "failed", "missing", "ok", "ok", "ok"]
    failed = next(td for td in cells.values() if td["data-status"] == "failed")
    assert "RuntimeError: out of memory" in failed.get_text() and "more" not in failed.get_text()
    assert "not run" in next(td for td in cells.values() if td["data-status"] == "missing").text
    diverged = next(td for td in cells.values() if td["data-status"] == "diverged")
    assert diverged.select_one("img") and "diverged" in diverged.select_one(".badge").text
    # a run's own time: the wall time less its wait where recorded, the total where not
    times = sorted(td.select_one(".time").text for td in cells.values() if td.select_one(".time"))
    assert times == ["1.25 s", "2.5 s", "5 s", "6 s"]
    assert sum("masks: auto" in td.text for td in cells.values()) == 1

    summary = page.select_one("table.summary")
    heads = [th.get_text(" ", strip=True) for th in summary.select("thead th")]
    assert "masks" in heads and "phases (median s)" in heads
    rows = summary.select("tbody tr")
    assert [r.select_one("td").text for r in rows] == [
        "gatys · style layers relu1_1",
        "gatys · style layers relu1_1, relu2_1",
    ]
    assert "load 0.5" in rows[0].text and "wait 1.5" in rows[0].text
    assert "auto 1, none 1" in rows[0].text
    # A's ok runs took 5 and 6 s, B's 1.25 s: B is best on time; A's SSIM (0.85) is best.
    col = {h: i for i, h in enumerate(heads)}
    best = [
        [heads[i] for i, td in enumerate(r.select("td")) if "best" in td.get("class", [])]
        for r in rows
    ]
    assert "SSIM" in best[0] and "time (s)" in best[1]
    assert rows[0].select("td")[col["time (s)"]].contents[0].strip() == "5.5"
    # losses are divided by the median under the network (20): A's median 20 -> 1, B's 1
    assert rows[0].select("td")[col["style loss (× median)"]].contents[0].strip() == "1"

    figures = [f.select_one("b").text for f in page.select("figure figcaption")]
    assert "Photorealism term over the steps." in figures
    caption = next(f.text for f in page.select("figure figcaption") if "Photorealism" in f.text)
    assert "at or above 0 in all 1 run(s)" in caption and "1 diverged run(s)" in caption
    diverged_rows = page.select("table.diverged tr")[1:]
    assert len(diverged_rows) == 1
    assert [td.text for td in diverged_rows[0].select("td.num")] == ["4", "6"]  # the curve's end


def test_a_fast_run_is_not_on_none_and_old_runs_lack_an_experiment(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.append(
        "runs",
        [
            {
                **_run(1, "p1", "F", json.dumps({"method": "fast", "model": "sketch"})),
                "method": "fast",
                "feature_model": None,
                "seconds_total": 0.2,
            },
        ],
    )
    result = build_report(store, tmp_path / "report")
    html = result.index.read_text()
    assert "on None" not in html and "with model sketch" in html
    assert result.pages == () and "No run here belongs to a named experiment" in html


def test_where_selects_runs_through_a_locked_query(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.append(
        "runs",
        [
            _run(1, "p1", "A", _config(["relu1_1"]), seconds_total=1.0, experiment="e"),
            {**_run(2, "p1", "P", "{}", seconds_total=1.0, experiment="e"), "method": "dpst"},
        ],
    )
    result = build_report(store, tmp_path / "r", where="method = 'dpst'")
    assert result.runs == 1
    page = _page(result, "e")
    assert [th.text for th in page.select("table.grid th.setting b")] == ["dpst"]
    with pytest.raises(ValueError, match="without ';'"):
        build_report(store, tmp_path / "r", where="true; select 1")
    with pytest.raises(QueryError, match="refused"):
        build_report(
            store, tmp_path / "r", where="run_id in (select * from read_csv('/etc/passwd'))"
        )
    with pytest.raises(ValueError, match="no runs of experiment 'nope'.*are: e"):
        build_report(store, tmp_path / "r", experiments=["nope"])


def test_an_experiment_file_finds_the_runs_of_its_settings_and_shows_unrun_ones(
    small_catalog, tmp_path
):
    store = small_catalog
    pair_catalog(store, "all")
    spec = {
        "name": "from-file",
        "methods": ["gatys"],
        "settings": {"size": 32, "steps": 3},
        "grid": {"style_layers": [["relu1_1"], ["relu2_1"]]},
        "pairs": {"strategy": "all", "limit": 1},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    configs = expand_configs(load_spec(spec, ExperimentSpec))
    pair = store.runs.pairs("all", 1)[0]
    # recorded under another experiment's name, which ran the first setting
    store.append(
        "runs",
        [
            {
                **_run(
                    1,
                    pair["pair_id"],
                    configs[0].config_hash(),
                    configs[0].to_json(),
                    seconds_total=1.0,
                    experiment="older",
                ),
                "content_id": pair["content_id"],
                "style_ids": pair["style_ids"],
            },
        ],
    )
    result = build_report(store, tmp_path / "r", experiments=[str(path)])
    page = _page(result, "from-file")
    assert [td["data-status"] for td in page.select("table.grid td.cell")] == ["ok", "missing"]
    labels = [th.get_text(" ", strip=True) for th in page.select("table.grid th.setting")]
    assert labels == ["gatys style layers: relu1_1", "gatys style layers: relu2_1"]
    assert "the configs of exp.yaml" in page.text


def test_two_experiments_are_compared_side_by_side(tmp_path):
    store = Store(str(tmp_path / "data"))
    store.append(
        "runs",
        [
            _run(1, "p1", "A", _config(["relu1_1"]), seconds_total=4.0, experiment="monday"),
            _run(2, "p1", "A", _config(["relu1_1"]), seconds_total=2.0, experiment="tuesday"),
        ],
    )
    result = build_report(store, tmp_path / "r", experiments=["monday", "tuesday"])
    index = BeautifulSoup(result.index.read_text(), "html.parser")
    rows = index.select("table.compared tbody tr")
    assert [r.select_one("td").text for r in rows] == ["monday · gatys", "tuesday · gatys"]
    assert "best" in rows[1].select("td")[3]["class"]  # tuesday's 2 s
    assert len(result.pages) == 2


def test_settings_are_labelled_by_what_tells_them_apart():
    runs = [
        {"config_hash": "A", "method": "gatys", "config": _config(["relu1_1"], [1.0])},
        {"config_hash": "A", "method": "gatys", "config": _config(["relu1_1"], [0.7, 0.3])},
        {"config_hash": "B", "method": "gatys", "config": _config(["relu2_1"], [1.0])},
        {"config_hash": "C", "method": "dpst", "config": json.dumps({"method": "dpst"})},
    ]
    settings = {s.key: s for s in settings_of(runs)}
    # the blend differs between runs of one setting: it labels nothing
    assert settings["A"].label == (("style_layers", "relu1_1"),)
    assert settings["B"].title == "gatys · style layers relu2_1"
    assert settings["C"].title == "dpst"  # the only dpst setting: its method says it all


def test_summary_marks_the_best_and_normalises_losses_per_network():
    def run(model, loss, ssim):
        return {
            "status": "ok",
            "feature_model": model,
            "loss_style": loss,
            "quality_ssim": ssim,
            "seconds_total": 1.0,
        }

    summary = summarise(
        [
            ("a", "gatys", [run("vgg19", 1e6, 0.5), run("vgg16", 10.0, 0.6)]),
            ("b", "gatys", [run("vgg19", 3e6, 0.9), run("vgg16", 30.0, 0.8)]),
        ]
    )
    a, b = summary.rows
    # vgg19's median is 2e6 and vgg16's 20: both networks' losses land on one scale
    assert a.values["loss_style"].median == pytest.approx(0.5)
    assert b.values["loss_style"].median == pytest.approx(1.5)
    assert "loss_style" in a.best and "quality_ssim" in b.best
    assert "seconds" in a.best and "seconds" in b.best  # a tie marks both


def test_image_names_are_short_and_human():
    assert image_name({"title": "The Starry Night"}, "ab" * 32) == "The Starry Night"
    assert image_name({"image_url": "file:///x/My%20cat.png"}, "ab" * 32) == "My cat.png"
    assert image_name({"query": "sunset", "rank": 3, "image_url": "https://h/a.jpg"}, "x") == (
        "sunset #3"
    )
    assert image_name(None, "0123456789abcdef") == "0123456789"
    assert len(image_name({"title": "x" * 80}, "id")) == 28


def test_the_demo_marks_its_report_folder_and_keeps_a_foreign_index(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import flows.demo
    from stylebench.cli.main import app

    def quick_demo(data_dir, report_dir, **_):  # the pipeline itself is `make demo`'s job
        build_report(Store(data_dir), report_dir)

    monkeypatch.setattr(flows.demo, "run_demo", quick_demo)
    data, out = str(tmp_path / "data"), tmp_path / "out"
    runner = CliRunner()
    assert runner.invoke(app, ["-d", data, "demo", "-o", str(out)]).exit_code == 0
    # a later `report` into the same folder replaces the demo's report
    again = runner.invoke(app, ["-d", data, "report", "-o", str(out)])
    assert again.exit_code == 0 and "replaced the report" in again.output
    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("<p>mine</p>")
    refused = runner.invoke(app, ["-d", data, "demo", "-o", str(foreign)])
    assert refused.exit_code == 1 and "not a stylebench report" in refused.output
    assert (foreign / "index.html").read_text() == "<p>mine</p>"


def test_a_matrix_view_normalises_each_network_and_compares_their_order():
    from flows.report_matrices import matrix_view

    ids = ["a", "b", "c", "d"]
    base = {(x, y): float(i + 1) for i, (x, y) in enumerate((x, y) for x in ids for y in ids)}

    def rows(scale: float) -> list[dict]:
        return [
            {
                "image_a": x,
                "image_b": y,
                "content_loss": 0.0 if x == y else scale * base[(min(x, y), max(x, y))],
                "style_loss": 0.0 if x == y else scale * base[(min(x, y), max(x, y))] ** 2,
            }
            for x in ids
            for y in ids
        ]

    heads = [{"id": i, "name": i.upper(), "role": "style" if i > "b" else "content"} for i in ids]
    view = matrix_view("e", {"vgg19": rows(1e6), "vgg16": rows(1.0)}, heads)
    assert [h["id"] for h in view["images"]] == ids  # content images first
    content = view["losses"][0]
    assert content["loss"] == "content" and [n["model"] for n in content["networks"]] == [
        "vgg16",
        "vgg19",
    ]
    (agreement,) = content["agreements"]
    assert agreement["rho"] == pytest.approx(1.0) and agreement["pairs"] == 6
    assert "1,000,000 times" not in agreement["sentence"]  # vgg16's median is 1e-6 of vgg19's
    assert "1/1,000,000 of" in agreement["sentence"]
    # normalised, the two networks' cells are the same numbers in the same colours
    vgg16, vgg19 = (n["rows"] for n in content["networks"])
    assert [[c["text"] for c in r] for r in vgg16] == [[c["text"] for c in r] for r in vgg19]
    assert [[c["colour"] for c in r] for r in vgg16] == [[c["colour"] for c in r] for r in vgg19]
    assert vgg16[0][0]["text"] == "" and "itself" in vgg16[0][0]["title"]
    # the raw value on hover: A and B's content loss under vgg19 is 2e6
    assert "A (content) and B (content): content loss 2e+06" in vgg19[0][1]["title"]
