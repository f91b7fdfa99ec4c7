"""Every command's --help shows each option's help as written: nothing swallowed, no stray " ."."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from stylebench.cli.main import app

COMMANDS = sorted(typer.main.get_command(app).commands)
STATED = re.compile(r"\[default: [^\]]*\]")


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    lines = (line.strip().strip("│╭╮╰╯─").strip() for line in result.output.splitlines())
    return " ".join(" ".join(lines).split())  # one line, however the panel wrapped it


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_option_help_is_shown_as_written(command):
    args = [] if command is None else [command]
    text = _help(args)
    group = typer.main.get_command(app)
    params = group.params if command is None else group.commands[command].params
    for param in params:
        written = getattr(param, "help", None)
        if not written:
            continue
        for stated in STATED.findall(written):
            # the default the help states is shown once, and typer adds no second one
            assert text.count(stated.replace("\\", "")) == 1, (param.name, stated, text)
    assert not re.search(r"\s[.,;:](\s|$)", text), re.search(r".{60}\s[.,;:](\s|$)", text)
    assert not re.search(r"\[default: [^\]]*\]\.?\s*\[default:", text)


def test_the_report_options_read_whole():
    text = _help(["report"])
    assert "Directory for index.html, a page per experiment and their assets " in text
    assert "[default: ./stylebench-report]." in text
    assert "--experiment" in text and "--where" in text
    stylize = _help(["stylize"])
    # with --experiment the file's methods apply unless --method is given: its default is stated
    assert "Method(s) (default: gatys)." in stylize and "(default: gatys) [default" not in stylize
