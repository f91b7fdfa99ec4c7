"""Bad input and damaged data directories through the real command line: one clear line, no
traceback, nothing stored changed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from storage import Store
from stylebench.cli.main import app

runner = CliRunner()


def _run(args: list[str]):
    result = runner.invoke(app, args)
    output = result.output
    assert "Traceback" not in output, output
    # the boundary ends every command with SystemExit (click's exit), never another exception
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result.exit_code, output


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _seed(data_dir: str, reason: str = "too-small: 10x10") -> Store:
    store = Store(data_dir)
    now = datetime.now(timezone.utc)
    store.append(
        "images",
        [
            {
                "image_id": "failed-" + "a" * 32,
                "role": "style",
                "engine": "url",
                "image_url": "http://x.example/a.jpg",
                "fetched_at": now,
            }
        ],
    )
    store.decide(["failed-" + "a" * 32], "rejected", reason)
    store.append(
        "pairs",
        [{"pair_id": "p1", "content_id": "c", "style_ids": ["s1", "s2"], "style_weights": [0.5]}],
    )
    return store


def test_data_dir_that_is_a_file(tmp_path, probe):
    target = tmp_path / "data"
    target.write_text("precious")
    code, out = _run(["--data-dir", str(target), "images"])
    assert code == 1 and "is a file, not a folder" in out
    assert target.read_text() == "precious"
    probe.record("data dir is a file", rejected=True, reason=out.strip())


@pytest.mark.parametrize(
    ("url", "message"),
    [("memory://data", "keeps nothing"), ("s3:/bucket/x", "slashes missing")],
)
def test_data_dir_urls_that_cannot_hold_data(tmp_path, monkeypatch, url, message, probe):
    monkeypatch.chdir(tmp_path)
    code, out = _run(["--data-dir", url, "info"])
    assert code == 1 and message in out
    assert list(tmp_path.iterdir()) == []  # no folder named "s3:" appeared
    probe.record(f"data dir {url}", rejected=True, reason=out.strip())


def test_markup_and_terminal_escapes_in_stored_text(data_dir, probe):
    hostile = "bad-url: [/x] [bold red]x[/] \x1b]0;owned\x07\x1b[2J\rdone"
    _seed(data_dir, hostile)
    before = _snapshot(Path(data_dir))
    for args in (["images"], ["query", "SELECT reason FROM catalog"]):
        code, out = _run(["--data-dir", data_dir, *args])
        assert code == 0, out
        assert "[/x]" in out and "\x1b" not in out and "\r" not in out and "\x07" not in out
        probe.record(f"stored markup/escapes in {args[0]}", rejected=True, reason="escaped")
    code, out = _run(["--data-dir", data_dir, "accept", "[/x]"])
    assert code == 1 and "no image id starts with '[/x]'" in out
    assert _snapshot(Path(data_dir)) == before


def test_query_output_checks_and_list_columns(data_dir, tmp_path, probe):
    _seed(data_dir)
    before = _snapshot(Path(data_dir))
    folder = tmp_path / "out"
    folder.mkdir()
    code, out = _run(["--data-dir", data_dir, "query", "SELECT 1", "-f", "csv", "-o", str(folder)])
    assert code == 1 and "is a folder" in out
    probe.record("query -o DIR", rejected=True, reason=out.strip())
    code, out = _run(
        ["--data-dir", data_dir, "query", "SELECT 1", "-f", "json", "-o", str(tmp_path / "no/x")]
    )
    assert code == 1 and "does not exist" in out
    code, out = _run(
        ["--data-dir", data_dir, "query", "SELECT pair_id, style_ids FROM pairs", "-f", "csv"]
    )
    assert code == 0 and '"[""s1"", ""s2""]"' in out, out
    assert _snapshot(Path(data_dir)) == before


def _cli_output(args: list[str], *, terminal: bool) -> str:
    """The real command's stdout, written to a pseudo-terminal or to a pipe."""
    import os
    import pty
    import subprocess
    import sys
    import tty

    command = [sys.executable, "-c", "from stylebench.cli.main import main; main()", *args]
    if not terminal:
        done = subprocess.run(command, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode()
    leader, follower = pty.openpty()
    tty.setraw(follower)  # no newline translation: what arrives is what was written
    try:
        done = subprocess.run(command, stdout=follower, stderr=subprocess.PIPE, timeout=300)
    finally:
        os.close(follower)
    assert done.returncode == 0, done.stderr.decode()
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_csv_to_a_terminal_drops_escapes_and_a_pipe_gets_them_as_stored(data_dir, probe):
    hostile = "bad \x1b]0;owned\x07\x1b[2J\rdone \x9b31m"
    _seed(data_dir, hostile)
    args = ["--data-dir", data_dir, "query", "SELECT reason FROM catalog", "-f", "csv"]
    shown = _cli_output(args, terminal=True)
    assert "bad " in shown and "done" in shown, shown
    assert not any(c in shown for c in "\x1b\x07\r\x9b"), repr(shown)
    piped = _cli_output(args, terminal=False)
    assert hostile in piped, repr(piped)
    probe.record("stored escapes in query -f csv to a terminal", rejected=True, reason="escaped")


def test_images_html_into_a_missing_folder(data_dir, tmp_path, probe):
    _seed(data_dir)
    code, out = _run(["--data-dir", data_dir, "images", "--html", str(tmp_path / "no" / "a.html")])
    assert code == 1 and "does not exist" in out
    probe.record("images --html into a missing folder", rejected=True, reason=out.strip())


def test_report_limit_and_overwrite(data_dir, tmp_path, probe):
    _seed(data_dir)
    code, out = _run(["--data-dir", data_dir, "report", "--limit", "-1", "-o", str(tmp_path / "r")])
    assert code == 2 and "greater than or equal to 1" in out
    probe.record("report --limit -1", rejected=True, reason="usage error: --limit >= 1")
    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("my homepage")
    code, out = _run(["--data-dir", data_dir, "report", "-o", str(foreign)])
    assert code == 1 and "--force" in out
    assert (foreign / "index.html").read_text() == "my homepage"
    probe.record("report -o over a foreign index.html", rejected=True, reason=out.strip())
    code, out = _run(["--data-dir", data_dir, "report", "-o", str(foreign), "--force"])
    assert code == 0 and "stylebench report" in (foreign / "index.html").read_text()
    code, out = _run(["--data-dir", data_dir, "report", "-o", str(foreign)])
    assert code == 0 and "replaced the report" in out


def _image(path: Path, size=(40, 30), seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)
    return str(path)


def test_transfer_checks_the_output_before_the_run(tmp_path, probe):
    content, style = _image(tmp_path / "c.png"), _image(tmp_path / "s.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for label, bad, message in (
        ("a folder", tmp_path, "is a folder"),
        ("below a file", blocker / "out.png", "is a file, not a folder"),
        ("an unknown suffix", tmp_path / "out.xyz", "image format"),
    ):
        code, out = _run(["-q", "transfer", content, style, "-o", str(bad), "--steps", "1"])
        assert code == 1 and message in out, out
        probe.record(f"transfer -o {label}", rejected=True, reason=out.strip())
    assert blocker.read_text() == "x"


def test_transfer_refuses_a_decompression_bomb(tmp_path, monkeypatch, probe):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    content, style = _image(tmp_path / "c.png"), _image(tmp_path / "s.png")
    code, out = _run(["-q", "transfer", content, style, "-o", str(tmp_path / "o.png")])
    assert code == 1 and "decompression" in out and "downscale" in out
    assert not (tmp_path / "o.png").exists()
    probe.record("transfer: decompression bomb", rejected=True, reason=out.strip())


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"size": 100000}, "16 to 4096"),
        ({"size": 256.5}, "whole number"),
        ({"size": "big"}, "whole number"),
        ({"style_weight": float("nan")}, "finite"),
        ({"style_weights": [1.0, float("inf")]}, "finite"),
    ],
)
def test_experiment_settings_refused_before_any_work(data_dir, tmp_path, settings, message, probe):
    spec = tmp_path / "exp.yaml"
    spec.write_text(yaml.safe_dump({"name": "x", "methods": ["gatys"], "settings": settings}))
    store = _seed(data_dir)
    before = store.query("SELECT count(*) FROM runs").column(0)[0].as_py()
    code, out = _run(["--data-dir", data_dir, "stylize", "--no-prefect", "-e", str(spec)])
    assert code == 1 and message in out, out
    assert store.query("SELECT count(*) FROM runs").column(0)[0].as_py() == before == 0
    probe.record(f"experiment settings {settings}", rejected=True, reason=out.strip())


def test_unexpected_errors_are_one_line(data_dir, monkeypatch):
    def broken(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Store, "info", broken)
    code, out = _run(["--data-dir", data_dir, "info"])
    assert code == 70 and "internal error (RuntimeError: disk on fire)" in out and "-vv" in out


def test_a_queued_item_with_a_huge_size_is_recorded_failed_with_the_reason(tmp_path, probe):
    """An item planned before the bound existed (a queued Prefect run) fails as data, not OOM."""
    import dataclasses

    from flows.batch import WorkItem, run_batch
    from styletransfer import TransferConfig

    store = Store(str(tmp_path / "data"))
    content = store.put_image(_png(tmp_path), "png")
    config = dataclasses.replace(TransferConfig(), size=100000)  # never validated
    item = WorkItem(
        pair_id="p1",
        content_id=content.image_id,
        content_path=content.path,
        style_ids=(content.image_id,),
        style_paths=(content.path,),
        style_weights=(1.0,),
        config=json.dumps(config.to_dict()),
        config_hash="h",
    )
    outcome = run_batch(store, [item])
    assert outcome.failed == 1
    row = store.query("SELECT status, error FROM runs").to_pylist()
    assert row[0]["status"] == "failed" and "16 to 4096" in row[0]["error"]
    probe.record("queued run with size 100000", rejected=True, reason=row[0]["error"][:80])


def _png(tmp_path: Path) -> bytes:
    path = tmp_path / "c.png"
    _image(path)
    return path.read_bytes()


def test_a_damaged_table_file_is_named_and_left_alone(data_dir, tmp_path, probe):
    _seed(data_dir)
    bad = Path(data_dir) / "tables" / "images" / "zz-damaged.parquet"
    bad.write_bytes(b"not parquet at all")
    before = _snapshot(Path(data_dir))
    for args in (
        ["images"],
        ["query", "SELECT count(*) FROM images"],
        ["report", "-o", str(tmp_path / "r")],
    ):
        code, out = _run(["--data-dir", data_dir, *args])
        assert code == 1, out
        assert "zz-damaged.parquet" in out and "stylebench compact images" in out
        assert "Traceback" not in out, out
        probe.record(f"damaged parquet: {args[0]}", rejected=True, reason=out.strip())
    assert _snapshot(Path(data_dir)) == before


def test_terminal_controls_are_stripped_from_text_and_log_lines(capsys):
    import logging

    from stylebench.cli.common import clean, escaped, setup_logging

    hostile = "a\x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x9b2J\rb\x07[/x]\tc\nd"
    assert clean(hostile) == "ared link b[/x]\tc\nd"
    assert escaped("[/x] [bold]") == "\\[/x] \\[bold]"
    setup_logging(0)
    logging.getLogger("stylebench.test").warning("reason: %s", hostile)
    err = capsys.readouterr().err
    assert "\x1b]" not in err and "\x07" not in err and "\r" not in err and "[/x]" in err
    setup_logging(-1)


def test_a_librarys_orphaned_task_error_shows_only_when_verbose(capsys):
    """An object store that drops the connection mid-upload leaves aiohttp's write task with
    an exception that asyncio logs, traceback and all, when it is collected; the command says
    what happened in one line of its own."""
    import logging

    from stylebench.cli.common import setup_logging

    def orphaned() -> None:
        try:
            raise ConnectionResetError("Cannot write to closing transport")
        except ConnectionResetError:
            logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)

    for verbosity, shown in ((-1, False), (0, False), (1, True)):
        setup_logging(verbosity)
        orphaned()
        err = capsys.readouterr().err
        assert ("never retrieved" in err and "Traceback" in err) is shown, (verbosity, err)
    setup_logging(-1)


@pytest.mark.parametrize("weights", ["nan,1", "inf,1", "1,-1"])
def test_pair_style_weights_must_be_finite(data_dir, tmp_path, weights, probe):
    store = _seed(data_dir)
    now = datetime.now(timezone.utc)
    for i, role in enumerate(("content", "style", "style")):
        stored = store.put_image(Path(_image(tmp_path / f"{i}.png", seed=i)).read_bytes(), "png")
        store.append(
            "images",
            [{"image_id": stored.image_id, "path": stored.path, "role": role, "fetched_at": now}],
        )
        store.decide([stored.image_id], "accepted", None)
    before = _snapshot(Path(data_dir))
    code, out = _run(["--data-dir", data_dir, "pair", "-k", "2", "--style-weights", weights])
    assert code == 1 and "style weights must be finite" in out, out
    assert _snapshot(Path(data_dir)) == before
    assert store.query("SELECT count(*) FROM pairs").column(0)[0].as_py() == 1
    probe.record(f"pair --style-weights {weights}", rejected=True, reason=out.strip())
