"""`stylebench import-pairs`, `stylize` over its pairs, and `transfer`'s mask checks, by command line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app
from tests.flows.paired_data import BLUE, GREEN, RED, halves, write_pair

runner = CliRunner()


@pytest.mark.slow
def test_import_pairs_then_stylize_records_where_each_run_got_its_segments(tmp_path):
    folder = tmp_path / "pairs"
    write_pair(folder, "authors", 1)
    write_pair(folder, "authors", 2, masks=False)
    write_pair(folder, "authors", 3, style_mask=halves(GREEN, GREEN))
    d = str(tmp_path / "data")

    dry = runner.invoke(app, ["-d", d, "import-pairs", str(folder), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would record 2 new pair(s)" in dry.output
    assert Store(d).read("pairs").num_rows == 0 and Store(d).read("images").num_rows == 0

    first = runner.invoke(app, ["-d", d, "import-pairs", str(folder)])
    assert first.exit_code == 0, first.output
    assert "authors layout in" in first.output and "3 pair(s) found, 1 with masks" in first.output
    assert "recorded 2 new pair(s), 0 already recorded" in first.output
    assert "refused 1 pair(s):" in first.output
    assert "segmentation/tar3.png: shares no label colour with segmentation/in3.png" in first.output
    again = runner.invoke(app, ["-d", d, "import-pairs", str(folder)])
    assert again.exit_code == 0 and "recorded 0 new pair(s), 2 already recorded" in again.output

    args = ["-d", d, "-q", "stylize", "--size", "32", "--steps", "2", "--no-prefect"]
    for method in ("gatys", "dpst", "photo-fast"):
        args += ["--method", method]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = (
        Store(d)
        .query(
            "SELECT r.method, p.mask_source AS pair_masks, r.mask_source, r.status "
            "FROM runs r JOIN pairs p USING (pair_id)"
        )
        .to_pylist()
    )
    assert [r["status"] for r in rows] == ["ok"] * 6, rows
    got = {(r["method"], r["pair_masks"]): r["mask_source"] for r in rows}
    assert got[("gatys", "given")] == got[("dpst", "given")] == got[("photo-fast", "given")]
    assert got[("gatys", "given")] == "given"
    assert (got[("gatys", "none")], got[("photo-fast", "none")]) == ("none", "auto")
    assert got[("dpst", "none")] != "given"


def test_import_pairs_fails_when_nothing_can_be_imported(tmp_path):
    d = str(tmp_path / "data")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["-d", d, "import-pairs", str(empty)])
    assert result.exit_code == 1 and "no pairs in" in result.output
    folder = tmp_path / "bad"
    write_pair(folder, "flat", 1, content_mask=halves(RED, BLUE, size=(32, 48)))
    result = runner.invoke(app, ["-d", d, "import-pairs", str(folder)])
    assert result.exit_code == 1, result.output
    assert "seg_in1.png: the mask does not fit in1.png: it is 32x48" in result.output
    assert "no pair of" in result.output and Store(d).read("pairs").num_rows == 0


def test_transfer_refuses_a_mask_of_another_shape_or_without_a_shared_colour(tmp_path):
    where = write_pair(tmp_path, "flat", 1, content_mask=halves(RED, BLUE, size=(48, 24)))
    out = tmp_path / "out.png"
    base = ["transfer", str(where["content"]), str(where["style"]), "-o", str(out)]
    base += ["--method", "photo-fast", "--size", "32"]
    result = runner.invoke(
        app,
        [
            *base,
            "--content-mask",
            str(where["content_mask"]),
            "--style-mask",
            str(where["style_mask"]),
        ],
    )
    assert result.exit_code == 1 and not out.exists()
    message = " ".join(result.output.split())
    assert f"mask {where['content_mask']} does not fit {where['content']}: it is 48x24" in message

    green = tmp_path / "green.png"
    halves(GREEN, GREEN).save(green)
    result = runner.invoke(
        app, [*base, "--content-mask", str(where["style_mask"]), "--style-mask", str(green)]
    )
    assert result.exit_code == 1 and not out.exists()
    message = " ".join(result.output.split())
    assert f"{where['style_mask']} and {green} share no label colour" in message
    assert "blue, red" in message and f"{green}: green" in message
