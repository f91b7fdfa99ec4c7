"""`stylebench pair`, `stylize` and `report` through the real command line."""

from __future__ import annotations

from typer.testing import CliRunner

from stylebench.cli.main import app

runner = CliRunner()


def test_pair_stylize_report_without_prefect(small_catalog, tmp_path):
    d = small_catalog.url
    result = runner.invoke(
        app,
        [
            "-d",
            d,
            "pair",
            "--strategy",
            "random",
            "-k",
            "2",
            "--style-weights",
            "0.7,0.3",
            "--seed",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 pair(s) by strategy random: 3 new" in result.output
    pairs = small_catalog.read("pairs").to_pylist()
    assert all(p["style_weights"] == [0.7, 0.3] for p in pairs)

    bad = runner.invoke(app, ["-d", d, "pair", "--style-weights", "a,b"])
    assert bad.exit_code == 1 and "--style-weights must be numbers" in bad.output
    unknown = runner.invoke(app, ["-d", d, "stylize", "--method", "nope", "--no-prefect"])
    assert unknown.exit_code == 1 and "unknown method 'nope'" in unknown.output

    args = [
        "-d",
        d,
        "-q",
        "stylize",
        "--method",
        "gatys",
        "--size",
        "32",
        "--steps",
        "3",
        "--no-prefect",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = small_catalog.query("select status, error from runs").to_pylist()
    assert [r["status"] for r in runs] == ["ok"] * 3, runs
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "'planned': 0" in again.output

    out = tmp_path / "report"
    result = runner.invoke(app, ["-d", d, "report", "-o", str(out)])
    assert result.exit_code == 0 and (out / "index.html").is_file()
    assert "report with 3 run(s)" in result.output


def test_pair_takes_style_weights_spaced_comma_or_repeated(small_catalog):
    d = small_catalog.url
    forms = (["0.6", "0.4"], ["0.6,0.4"], ["0.6", "--style-weights", "0.4"])
    for seed, form in enumerate(forms):
        args = ["-d", d, "pair", "--strategy", "random", "-k", "2", "--seed", str(seed + 10)]
        result = runner.invoke(app, [*args, "--style-weights", *form])
        assert result.exit_code == 0, result.output
    weights = {tuple(p["style_weights"]) for p in small_catalog.read("pairs").to_pylist()}
    assert weights == {(0.6, 0.4)}
    bad = runner.invoke(app, ["-d", d, "pair", "--style-weights", "0.6;0.4"])
    assert bad.exit_code == 1
    assert "--style-weights 0.7 0.3, --style-weights 0.7,0.3 or" in bad.output


def test_stylize_options_apply_over_an_experiment_file_or_are_refused(small_catalog, tmp_path):
    d = small_catalog.url
    assert runner.invoke(app, ["-d", d, "pair", "--strategy", "all"]).exit_code == 0  # 6 pairs
    spec = tmp_path / "exp.yaml"
    spec.write_text(
        "name: night\nmethods: [photo-fast]\nbatch_size: 8\n"
        "settings: {size: 64, device: cpu}\ngrid: {steps: [1, 2]}\n"
    )
    base = ["-d", d, "-q", "stylize", "-e", str(spec), "--no-prefect"]
    # A setting the file varies in its grid cannot be fixed by an option: refused, nothing runs.
    refused = runner.invoke(app, [*base, "--steps", "5"])
    assert refused.exit_code == 1
    assert "--steps 5 conflicts with experiment 'night'" in refused.output
    assert "remove steps from the grid or drop --steps" in refused.output
    assert small_catalog.read("runs").num_rows == 0
    # --limit, --size, --method and --batch-size apply over the file's values.
    result = runner.invoke(
        app, [*base, "--limit", "2", "--size", "48", "--method", "gatys", "--batch-size", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "'planned': 4" in result.output and "'batches': 4" in result.output  # 2 pairs x 2
    runs = small_catalog.query("select method, width, height, steps from runs").to_pylist()
    assert len(runs) == 4 and {r["method"] for r in runs} == {"gatys"}
    assert {max(r["width"], r["height"]) for r in runs} == {48}
    assert {r["steps"] for r in runs} == {1, 2}
