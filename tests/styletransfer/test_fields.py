"""Settings described once: the checks, the words and the method options derived from them."""

from __future__ import annotations

import dataclasses
import math

import pytest

from styletransfer import TransferConfig, correspond, register_method
from styletransfer.config import recorded_settings
from styletransfer.fast import TrainConfig
from styletransfer.fields import Setting, check, decode, described, problem
from styletransfer.options import AutoMaskOptions, FastOptions, PhotoFastOptions
from styletransfer.registry import BUILTIN_METHODS, METHODS, method_options


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (Setting("int", low=16, high=4096, unit="pixels"), "16 to 4096 pixels"),
        (Setting("int", low=32, unit="pixels"), ">= 32 pixels"),
        (Setting("int", low=1), "a positive integer"),
        (Setting("int", choices=(0, 1)), "0 or 1"),
        (Setting("str", choices=("lbfgs", "adam")), "one of: lbfgs, adam"),
        (Setting("number", low=0), "a finite non-negative number"),
        (Setting("number", low=0, above=True), "a finite positive number"),
        (Setting("number", low=0, high=1), "0 to 1"),
        (Setting("int", low=1, high=4, rule="1 (off) to 4"), "1 (off) to 4"),
        (Setting("number"), "a finite number"),
    ],
)
def test_the_values_a_setting_takes_in_words(spec, words):
    assert spec.values() == words


@pytest.mark.parametrize(
    ("value", "spec", "message"),
    [
        (256, Setting("int", low=16, high=4096), None),
        (4, Setting("int", low=16, high=4096), "x must be 16 to 4096, got 4"),
        (True, Setting("int"), "x must be an integer (a whole number), got True"),
        (2.5, Setting("int"), "x must be an integer"),
        (None, Setting("int"), "x must be an integer"),
        (None, Setting("int", optional=True), None),
        ("3", Setting("number", optional=True), "x must be a number or null, got '3'"),
        (math.nan, Setting("number"), "x must be a finite number, got nan"),
        (math.inf, Setting("number", low=0), "x must be a finite non-negative number"),
        (0.0, Setting("number", low=0, above=True), "x must be a finite positive number"),
        ([1, "a"], Setting("numbers"), "x must be a list of numbers"),
        ((1.0, math.nan), Setting("numbers"), "x must hold finite numbers, got [1.0, nan]"),
        ("relu1_1", Setting("names"), None),
        (5, Setting("names"), "x must be a list of layer names, got 5"),
        ("sgd", Setting("str", choices=("lbfgs", "adam")), "x must be one of: lbfgs, adam"),
        (1, Setting("bool"), "x must be true or false, got 1"),
    ],
)
def test_a_value_is_judged_by_its_description(value, spec, message):
    found = problem("x", value, spec)
    if message is None:
        assert found is None
    else:
        assert found is not None and found.startswith(message), found


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="the kinds are: int, number"):
        Setting("float")


def test_options_read_what_extra_says_and_refuse_the_rest():
    opts = decode(PhotoFastOptions, {"radius": "8", "eps": 1, "refine": True, "grid": 6.0}, "pf")
    assert (opts.radius, opts.eps, opts.refine, opts.grid) == (8, 1.0, 1, 6)
    assert isinstance(opts.eps, float) and isinstance(opts.grid, int)
    with pytest.raises(ValueError, match=r"unknown pf option\(s\) gird; the options are: work_s"):
        decode(PhotoFastOptions, {"gird": 3}, "pf")
    with pytest.raises(ValueError, match="pf grid must be an integer"):
        decode(PhotoFastOptions, {"grid": 2.5}, "pf")
    with pytest.raises(ValueError, match="pf patience must be a positive integer, got 0"):
        decode(PhotoFastOptions, {"patience": 0}, "pf")
    assert FastOptions.from_extra((("batch_size", 2),)).batch_size == 2


@pytest.mark.parametrize("spec", BUILTIN_METHODS, ids=lambda s: s.name)
def test_every_method_has_described_options_whose_defaults_fit(spec):
    assert spec.options is not None
    every = {f.name for f in dataclasses.fields(spec.options)}
    assert set(described(spec.options)) == every  # no option without its description
    check(spec.options(), spec.name)
    assert all(s.help for s in described(spec.options).values()), spec.name


def test_each_config_is_described_field_by_field_and_its_defaults_fit():
    for cls in (TransferConfig, TrainConfig):
        assert set(described(cls)) == {f.name for f in dataclasses.fields(cls)}, cls
        assert all(spec.help for spec in described(cls).values()), cls
    check(TransferConfig())
    check(TrainConfig())


def test_the_matching_defaults_are_dpsts():
    defaults = correspond.MatchOptions()
    opts = AutoMaskOptions()
    assert (defaults.segments, defaults.match_size, defaults.height_prior) == (
        opts.segments,
        opts.match_size,
        opts.height_prior,
    )


def test_fast_records_the_settings_described_as_applying_to_it():
    assert recorded_settings("fast") == {
        "method",
        "model",
        "size",
        "upscale",
        "style_weights",
        "preserve_color",
        "mixed_precision",
        "device",
        "extra",
    }
    assert recorded_settings("gatys") is None  # the optimising methods record every setting
    for name, spec in described(TransferConfig).items():
        assert spec.methods is None or set(spec.methods) <= set(METHODS), name


@pytest.mark.parametrize(
    ("method", "extra", "message"),
    [
        ("photo-fast", {"gird": 3}, r"unknown photo-fast option\(s\) gird; the options are: "),
        ("photo-fast", {"work_size": 8}, "photo-fast work_size must be >= 32 pixels, got 8"),
        ("dpst", {"segments": 40}, "dpst segments must be 1 to 16, got 40"),
        ("dpst", {"refine": 1}, r"refine is an option of photo-fast"),
        ("gatys", {"segments": 2}, "gatys takes no options.*dpst, photo-fast"),
        ("fast", {"batch_size": 0}, "fast batch_size must be a positive integer"),
    ],
)
def test_validate_refuses_a_wrong_option_before_any_run(method, extra, message):
    config = TransferConfig(method=method, model="m" if method == "fast" else None, extra=extra)
    with pytest.raises(ValueError, match=message):
        config.validate()
    with pytest.raises(ValueError, match=message):
        TransferConfig.from_json(config.to_json())


def test_a_method_that_describes_no_options_reads_extra_unchecked():
    name = "test-unchecked"
    try:
        register_method(name, lambda inp: [], uses_layers=False)
        config = TransferConfig(method=name, extra={"anything": "goes"}).validate()
        assert method_options(name, config.extra) is None
    finally:
        METHODS.pop(name, None)
