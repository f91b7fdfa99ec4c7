"""Several values after one option (``--style a b``), beside the repeated and comma forms."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from stylebench.cli.common import spread_values
from stylebench.cli.main import app

runner = CliRunner()
FORMS = {"--style": "words", "--style-weights": "numbers"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--style-weights", "0.7", "0.3", "-o", "x"],
            ["--style-weights", "0.7", "--style-weights", "0.3", "-o", "x"],
        ),
        (["--style-weights", "0.7,0.3", "c.jpg"], ["--style-weights", "0.7,0.3", "c.jpg"]),
        (["--style-weights=0.7", "0.3"], ["--style-weights=0.7", "0.3"]),
        (
            ["--style", "a.jpg", "b.jpg", "--size", "9"],
            ["--style", "a.jpg", "--style", "b.jpg", "--size", "9"],
        ),
        (["--style", "a.jpg", "--", "-odd.jpg"], ["--style", "a.jpg", "--", "-odd.jpg"]),
        (["--style-weights", "1e-1", "x.jpg"], ["--style-weights", "1e-1", "x.jpg"]),
        (["c.jpg", "--style"], ["c.jpg", "--style"]),
    ],
)
def test_spread_values(args, expected):
    assert spread_values(args, FORMS) == expected


def _images(tmp_path):
    paths = []
    for name, colour in (("content", (200, 40, 40)), ("a", (20, 200, 30)), ("b", (10, 20, 220))):
        path = tmp_path / f"{name}.png"
        Image.new("RGB", (24, 24), colour).save(path)
        paths.append(str(path))
    return paths


def _recorded(tmp_path, args):
    metrics = tmp_path / "m.json"
    out = tmp_path / "out.png"
    result = runner.invoke(
        app,
        [
            "-q",
            "transfer",
            *args,
            "-o",
            str(out),
            "--size",
            "16",
            "--steps",
            "0",
            "--metrics",
            str(metrics),
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(metrics.read_text())["config"]


def test_transfer_accepts_every_form_of_several_styles_and_weights(tmp_path):
    content, a, b = _images(tmp_path)
    forms = [
        [content, a, b, "--style-weights", "0.7,0.3"],
        [content, a, b, "--style-weights", "0.7", "0.3"],
        [content, a, b, "--style-weights", "0.7", "--style-weights", "0.3"],
        [content, "--style", a, b, "--style-weights", "0.7", "0.3"],
        [content, "--style", a, "--style", b, "--style-weights", "0.7", "0.3"],
        ["--style-weights", "0.7", "0.3", content, a, b],
    ]
    for args in forms:
        assert _recorded(tmp_path, args)["style_weights"] == [0.7, 0.3], args


def test_transfer_says_which_form_to_use(tmp_path):
    content, a, b = _images(tmp_path)
    out = str(tmp_path / "o.png")
    bad = runner.invoke(app, ["transfer", content, a, b, "-o", out, "--style-weights", "0.7;0.3"])
    assert bad.exit_code == 1
    assert "--style-weights 0.7 0.3, --style-weights 0.7,0.3 or" in bad.output
    both = runner.invoke(app, ["transfer", content, a, "--style", b, "-o", out])
    assert both.exit_code == 1 and "not both" in both.output
    swallowed = runner.invoke(app, ["transfer", "--style", a, b, content, "-o", out])
    assert swallowed.exit_code == 2
    words = " ".join(swallowed.output.replace("│", " ").split())
    assert "Missing argument 'content'. --style takes every value up to the next option" in words
