"""The options of `transfer`, `stylize` and `train-fast`, made from the config fields they set:
the same name, kind and default, the help from the description; one list parser; method
options through --option; `--help` without torch."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import typer.main
from PIL import Image
from typer.testing import CliRunner

from flows.specs import ExperimentSpec
from stylebench.cli.main import app
from styletransfer import TransferConfig
from styletransfer.fast import TrainConfig
from styletransfer.fields import described

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands
# The Python type each kind of setting takes on the command line (lists: repeated strings).
ANNOTATIONS = {
    "int": int,
    "number": float,
    "bool": bool,
    "str": str,
    "names": list[str],
    "numbers": list[str],
}


def _options(command: str) -> dict:
    return {p.name: p for p in COMMANDS[command].params if p.param_type_name == "option"}


def _default_of(cls, name):
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _stated_default(param) -> str | None:
    found = re.search(r"[\[(]default: ([^\])]*)[\])]", param.help or "")
    return None if found is None else found.group(1)


def _check_option(param, name: str, spec, default):
    """One option against its field: kind, default (given or stated in the help), bounds and
    choices (the config checks them, with its messages), the help from the description."""
    expected = ANNOTATIONS[spec.kind]
    assert param.type_descriptor.annotation == expected, (name, param.type_descriptor)
    assert param.multiple == (expected == list[str]), name
    if param.default is None and default not in (None, ()):  # else the help says it in words
        stated = _stated_default(param)
        assert stated is not None, f"--{name}: the help must state the default"
        assert re.match(rf"{re.escape(str(default))}\b", stated), (name, stated, default)
    elif param.default is not None:
        assert param.default == default, (name, param.default, default)
    assert (param.min, param.max) == (None, None), name
    assert spec.help in param.help, (name, param.help)
    for choice in spec.choices or ():
        assert str(choice) in param.help, (name, choice)


def test_every_transfer_option_is_its_config_field():
    options = _options("transfer")
    fields = described(TransferConfig)
    for name, spec in fields.items():
        if name == "extra":
            assert "option" in options and options["option"].multiple  # --option KEY=VALUE
            continue
        assert name in options, f"TransferConfig.{name} has no transfer option"
        _check_option(options[name], name, spec, _default_of(TransferConfig, name))
    assert options["mixed_precision"].secondary_opts == ["--no-mixed-precision"]


def test_every_stylize_setting_is_its_config_field_with_the_same_default():
    options = _options("stylize")
    fields = described(TransferConfig)
    for name in ("size", "steps", "feature_model"):
        _check_option(options[name], name, fields[name], _default_of(TransferConfig, name))
    assert _stated_default(options["method"]) == _default_of(TransferConfig, "method")
    batch = ExperimentSpec.model_fields["batch_size"].default
    assert _stated_default(options["batch_size"]) == str(batch)
    # one default for the steps of an optimising method, wherever it is given
    assert _stated_default(options["steps"]) == _stated_default(_options("transfer")["steps"])


def test_every_train_fast_option_is_its_training_field():
    options = _options("train-fast")
    for name, spec in described(TrainConfig).items():
        assert name in options, f"TrainConfig.{name} has no train-fast option"
        _check_option(options[name], name, spec, _default_of(TrainConfig, name))


def _option(help: str, annotation=int, default=None, low=None, high=None):
    """A stand-in for a typer option, to show what the check refuses."""
    return SimpleNamespace(
        help=help,
        default=default,
        type_descriptor=SimpleNamespace(annotation=annotation),
        multiple=False,
        min=low,
        max=high,
    )


def test_the_check_sees_a_drifted_option():
    fields = described(TransferConfig)
    steps = "Optimiser steps [default: 500]."
    _check_option(_option(steps), "steps", fields["steps"], 500)
    with pytest.raises(AssertionError):
        _check_option(_option(steps.replace("500", "300")), "steps", fields["steps"], 500)
    with pytest.raises(AssertionError, match="state the default"):
        _check_option(_option("Size."), "size", fields["size"], 256)
    with pytest.raises(AssertionError):
        _check_option(_option("Size.", default=300), "size", fields["size"], 256)
    with pytest.raises(AssertionError):
        _check_option(_option("Size [default: 256].", float), "size", fields["size"], 256)
    with pytest.raises(AssertionError):
        _check_option(_option(steps, low=1), "steps", fields["steps"], 500)


def test_one_list_parser():
    """Lists of values are split in one place (stylebench/cli/common.py: split_values)."""
    splitting = re.compile(r"""\.replace\(",", " "\)|re\.split\(""")
    found = [
        path.name
        for path in sorted((ROOT / "stylebench" / "cli").glob("*.py"))
        for line in path.read_text().splitlines()
        if splitting.search(line)
    ]
    assert found == ["common.py", "common.py"], found  # split_values and its number check


def test_help_loads_no_torch():
    code = (
        "import sys\n"
        "from stylebench.cli.main import main\n"
        "for args in (['--help'], ['transfer', '--help'], ['train-fast', '--help'], "
        "['stylize', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('torch', 'numpy', 'PIL', 'prefect', 'styletransfer.run', 'styletransfer.features')\n"
        "print('loaded:', sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    ).stdout
    assert out.strip().splitlines()[-1] == "loaded: []", out[-400:]


# -- method options through --option ----------------------------------------------------------
def _images(tmp_path):
    """Two textured photos: flat ones give the feature correspondence nothing to match."""
    paths = []
    for name, seed in (("content", 1), ("style", 2)):
        rng = np.random.default_rng(seed)
        ramp = np.linspace(0, 200, 48)[None, :, None] * rng.uniform(0.3, 1, (1, 1, 3))
        pixels = ramp + rng.integers(0, 55, (48, 48, 3))
        path = tmp_path / f"{name}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(str(path))
    return paths


def _transfer(tmp_path, *args):
    content, style = _images(tmp_path)
    metrics = tmp_path / "m.json"
    result = runner.invoke(
        app,
        ["-q", "transfer", content, style, "-o", str(tmp_path / "o.png"), "--size", "48"]
        + ["--metrics", str(metrics), *args],
    )
    record = json.loads(metrics.read_text()) if result.exit_code == 0 else None
    return result, record


def test_option_sets_a_method_option_with_its_kind(tmp_path):
    result, record = _transfer(
        tmp_path, "-m", "photo-fast", "--option", "segments=1", "--option", "eps=0.001"
    )
    assert result.exit_code == 0, result.output
    assert record["config"]["extra"] == {"eps": 0.001, "segments": 1}
    assert record["mask_source"] == "none"  # one segment: one global transfer


def test_refine_is_the_same_as_option_refine(tmp_path):
    _, flag = _transfer(tmp_path, "-m", "photo-fast", "--refine", "--steps", "1")
    _, option = _transfer(tmp_path, "-m", "photo-fast", "--option", "refine=1", "--steps", "1")
    assert flag["config"] == option["config"] and flag["config"]["extra"] == {"refine": 1}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-m", "photo-fast", "--option", "gird=3"], "unknown photo-fast option(s) gird; the"),
        (["-m", "photo-fast", "--option", "segments=40"], "photo-fast segments must be 1 to 16"),
        (["-m", "photo-fast", "--option", "segments=two"], "segments must be an integer"),
        (["-m", "dpst", "--option", "radius=2"], "radius is an option of photo-fast"),
        (["-m", "gatys", "--option", "segments=2"], "gatys takes no options"),
        (["-m", "photo-fast", "--option", "segments"], "--option takes KEY=VALUE"),
    ],
)
def test_a_wrong_method_option_is_refused_before_any_run(tmp_path, args, words):
    result, _ = _transfer(tmp_path, *args)
    assert result.exit_code == 1
    assert words in " ".join(result.output.split()), result.output
    assert not (tmp_path / "o.png").exists()
