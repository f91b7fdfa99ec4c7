"""Faults of the data directory during ``import`` and ``scrape``: a failed write never leaves an
image without a decision, the run stops at once with one line naming the place and the cause,
and a rerun lands everything exactly once."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from typer.testing import CliRunner

import scraper.pipeline
from scraper import import_sources, scrape
from storage import StorageError, Store
from storage.location import TMP_PREFIX, Location
from stylebench.cli.main import app
from tests.localserver import Answer
from tests.scraper.helpers import encode, jpeg, photo
from tests.scraper.test_pipeline import bing_page

runner = CliRunner()
STYLEBENCH = [sys.executable, "-m", "stylebench.cli.main"]
REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# helpers


def _sources() -> dict[str, bytes]:
    """Nine files that exercise every branch of curation: five photos, an exact copy, a near
    duplicate, one too small and one that does not decode."""
    astronaut = jpeg("astronaut", 300)
    files = {f"{i}-{name}.jpg": jpeg(name, 300) for i, name in enumerate(("rocket", "coffee"))}
    files.update(
        {
            "2-astronaut.jpg": astronaut,
            "3-chelsea.jpg": jpeg("chelsea", 300),
            "4-camera.png": encode(photo("camera", 300), "PNG"),
            "5-copy.jpg": astronaut,
            "6-near.png": encode(
                ImageEnhance.Brightness(photo("astronaut", 300)).enhance(1.05), "PNG"
            ),
            "7-small.jpg": jpeg("moon", 40),
            "8-truncated.jpg": astronaut[:3000],
        }
    )
    return files


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def _noise(root: Path, n: int, side: int = 128, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:04d}.png")
    return root


@dataclasses.dataclass(frozen=True)
class State:
    """What a probe checks in the catalog."""

    statuses: dict[str, str]  # image id -> status (None: undecided)
    stranded: int  # image rows whose image has no decision
    sightings: int  # rows of images
    urls: int  # distinct image URLs among them


def _state(location: str | Path) -> State:
    store = Store(location)
    statuses = {
        r["image_id"]: r["status"]
        for r in store.query("SELECT image_id, status FROM catalog").to_pylist()
    }
    counts = store.query(
        "SELECT count(*) AS sightings, count(DISTINCT image_url) AS urls FROM images"
    ).to_pylist()[0]
    stranded = sum(1 for s in statuses.values() if s is None)
    return State(statuses, stranded, counts["sightings"], counts["urls"])


def _record(
    probe, name: str, clean: State, failed: State, final: State, reason: str, rejected: bool = True
) -> None:
    lost = sum(1 for i, s in clean.statuses.items() if final.statuses.get(i) != s)
    probe.record(
        name,
        rejected=rejected,
        reason=reason,
        rows_lost=lost,
        rows_stranded=failed.stranded + final.stranded,
        rows_duplicated=final.sightings - final.urls,
    )


class FailingWrites:
    """Counts the data directory's file writes (images and table files alike) and fails the
    ``at``-th with ``OSError(code)``, as a full disk would."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, at: int | None, code: int = errno.ENOSPC):
        self.calls = 0
        self.at = at
        real = Location.write_atomic
        counter = self

        def write_atomic(loc: Location, path: str, write):
            counter.calls += 1
            if counter.at is not None and counter.calls == counter.at:
                raise OSError(code, os.strerror(code))
            return real(loc, path, write)

        monkeypatch.setattr(Location, "write_atomic", write_atomic)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "leases" not in p.parts
    }


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    proc = subprocess.run(
        [*STYLEBENCH, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    return proc


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ---------------------------------------------------------------------------------------------
# a failure injected at every write of import and scrape


def _import(location: Path, folder: Path, fast) -> None:
    import_sources(Store(location), [str(folder)], "content", download=fast)


def _scrape(location: Path, server, fast) -> None:
    scrape(Store(location), "photos", "content", "bing", 50, min_side=64, download=fast)


@pytest.fixture
def one_worker(fast, monkeypatch):
    """One download thread (so the n-th write is the same write every run) and a flush of
    the catalog rows every two candidates (so import and scrape append several times)."""
    monkeypatch.setattr(scraper.pipeline, "ROWS_PER_APPEND", 2)
    return dataclasses.replace(fast, workers=1)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["import", "scrape"])
def test_a_failure_at_each_write_strands_nothing(
    command, tmp_path, monkeypatch, one_worker, server, probe
):
    files = _sources()
    folder = _folder(tmp_path / "photos", files)
    if command == "scrape":
        urls = [server.url(f"/{name}") for name in files]
        for name, data in files.items():
            server.routes[f"/{name}"] = Answer(data)
        server.routes["/images/async"] = lambda q: Answer(
            bing_page(urls) if q["first"] == ["1"] else b""
        )
        monkeypatch.setenv("STYLEBENCH_BING_URL", server.url(""))

    def run(location: Path) -> None:
        if command == "import":
            _import(location, folder, one_worker)
        else:
            _scrape(location, server, one_worker)

    writes = FailingWrites(monkeypatch, at=None)
    run(tmp_path / "clean")
    total = writes.calls
    clean = _state(tmp_path / "clean")
    assert total >= 10 and clean.stranded == 0 and len(clean.statuses) == 8
    assert sorted(s for s in clean.statuses.values()) == ["accepted"] * 5 + ["rejected"] * 3

    for at in range(1, total + 1):
        location = tmp_path / f"fail-{at}"
        writes.calls, writes.at = 0, at
        with pytest.raises(StorageError) as info:
            run(location)
        message = str(info.value)
        assert str(location) in message and "no space left on the device" in message
        failed = _state(location)
        assert failed.stranded == 0, (at, failed)
        # no per-image row records the full disk: the run stopped instead
        reasons = Store(location).query("SELECT reason FROM curation").column(0).to_pylist()
        assert not any("space" in (r or "") for r in reasons)
        writes.at = None
        run(location)
        final = _state(location)
        assert final.statuses == clean.statuses, at
        assert final.sightings == final.urls == clean.urls
        _record(probe, f"{command}: write {at} of {total} fails", clean, failed, final, message)


# ---------------------------------------------------------------------------------------------
# the command line: one line, exit 1, nothing stored changed


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EDQUOT, "quota"),
        (errno.EIO, "input/output error"),
    ],
)
@pytest.mark.parametrize("at", [1, 2])  # an image file, then (after a stored one) a table file
def test_a_storage_fault_stops_import_with_one_line(code, words, at, tmp_path, monkeypatch, probe):
    data = tmp_path / "data"
    first = _noise(tmp_path / "first", 3, seed=1)
    result = runner.invoke(app, ["-q", "-d", str(data), "import", str(first), "--role", "style"])
    assert result.exit_code == 0, result.output
    before = _snapshot(data)
    monkeypatch.setattr(scraper.pipeline, "ROWS_PER_APPEND", 1)
    FailingWrites(monkeypatch, at=at, code=code)
    more = _noise(tmp_path / "more", 4, seed=2)
    result = runner.invoke(app, ["-q", "-d", str(data), "import", str(more), "--role", "style"])
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and "internal error" not in out
    errors = _error_lines(out)
    assert len(errors) == 1 and f"data directory {data}" in errors[0] and words in errors[0]
    after = _snapshot(data)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing changed
    # images fetched before the failing one may have landed, each with its decision
    state = _state(data)
    assert state.stranded == 0 and 3 <= len(state.statuses) < 7
    assert set(state.statuses.values()) == {"accepted"}  # no failure recorded per image
    probe.record(
        f"import: {os.strerror(code)} at write {at}",
        rejected=True,
        reason=errors[0],
        rows_stranded=state.stranded,
        rows_lost=sum(1 for k in before if k not in after),
    )


def _mount_tmpfs(target: Path, size: str) -> bool:
    """Mount a tmpfs of ``size`` at ``target``; False where this machine does not allow it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MB file system (tmpfs) where the machine allows mounting one, else None."""
    target = tmp_path / "disk"
    target.mkdir()
    mounted = _mount_tmpfs(target, "2m")
    yield target if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_stops_the_import_and_a_rerun_lands_everything(
    small_disk, tmp_path, monkeypatch, probe
):
    folder = _noise(tmp_path / "noise", 120)
    if small_disk is not None:  # the real thing: 120 images of ~49 KB on a 2 MB disk
        data = small_disk / "data"
        proc = _cli("-d", str(data), "-q", "import", str(folder), "--role", "content")
        code, err = proc.returncode, proc.stderr
    else:  # no tmpfs here: the same write fails with the same error, injected
        data = tmp_path / "data"
        failing = FailingWrites(monkeypatch, at=30)
        result = runner.invoke(
            app, ["-d", str(data), "-q", "import", str(folder), "--role", "content"]
        )
        code, err = result.exit_code, result.output
        failing.at = None
    assert code == 1, err
    errors = _error_lines(err)
    assert len(errors) == 1, err
    assert f"data directory {data}" in errors[0] and "no space left on the device" in errors[0]
    failed = _state(data)
    assert failed.stranded == 0 and failed.sightings < 120
    assert not any(s == "rejected" for s in failed.statuses.values())  # no per-image failures

    if small_disk is not None:
        assert (
            subprocess.run(
                ["mount", "-o", "remount,size=64m", str(small_disk)], capture_output=True
            ).returncode
            == 0
        )
        proc = _cli("-d", str(data), "-q", "import", str(folder), "--role", "content")
        assert proc.returncode == 0, proc.stderr
    else:
        result = runner.invoke(
            app, ["-d", str(data), "-q", "import", str(folder), "--role", "content"]
        )
        assert result.exit_code == 0, result.output
    final = _state(data)
    assert final.stranded == 0 and final.sightings == final.urls == 120
    assert list(final.statuses.values()) == ["accepted"] * 120
    clean = State({i: "accepted" for i in final.statuses}, 0, 120, 120)
    _record(probe, "import onto a full 2 MB disk", clean, failed, final, errors[0])

    if small_disk is not None:  # the same disk read-only: refused, nothing changed
        before = _snapshot(data)
        assert (
            subprocess.run(
                ["mount", "-o", "remount,ro", str(small_disk)], capture_output=True
            ).returncode
            == 0
        )
        more = _noise(tmp_path / "more", 3, seed=5)
        proc = _cli("-d", str(data), "-q", "import", str(more), "--role", "content")
        assert proc.returncode == 1 and "read-only" in proc.stderr, proc.stderr
        assert len(_error_lines(proc.stderr)) == 1
        assert _snapshot(data) == before
        probe.record("import onto a read-only disk", rejected=True, reason=proc.stderr.strip())


def test_a_file_where_the_curation_folder_belongs(tmp_path, probe):
    data = tmp_path / "data"
    folder = _noise(tmp_path / "eight", 8)
    (data / "tables").mkdir(parents=True)
    (data / "tables" / "curation").write_text("x\n")
    proc = _cli("-d", str(data), "-q", "import", str(folder), "--role", "content")
    assert proc.returncode == 1, proc.stderr
    errors = _error_lines(proc.stderr)
    assert len(errors) == 1 and "tables/curation" in errors[0] and "folder" in errors[0]
    failed = _state(data)
    assert failed.stranded == 0 and failed.sightings == 0
    (data / "tables" / "curation").unlink()
    proc = _cli("-d", str(data), "-q", "import", str(folder), "--role", "content")
    assert proc.returncode == 0, proc.stderr
    final = _state(data)
    assert list(final.statuses.values()) == ["accepted"] * 8 and final.sightings == 8
    clean = State(dict(final.statuses), 0, 8, 8)
    _record(probe, "import: a file where tables/curation belongs", clean, failed, final, errors[0])


# ---------------------------------------------------------------------------------------------
# catalogs that earlier versions left with undecided images


def _strand(source: Path, target: Path) -> None:
    """``target``: ``source``'s images and image rows without any decision, as an earlier
    version left a catalog whose decisions failed to write."""
    shutil.copytree(source / "images", target / "images")
    shutil.copytree(source / "tables" / "images", target / "tables" / "images")


def test_a_rerun_and_curate_decide_images_left_undecided(tmp_path, fast, probe):
    folder = _folder(tmp_path / "photos", _sources())
    _import(tmp_path / "clean", folder, fast)
    clean = _state(tmp_path / "clean")

    rerun = tmp_path / "rerun"
    _strand(tmp_path / "clean", rerun)
    stranded = _state(rerun)
    assert stranded.stranded == len(clean.statuses) == 8
    summary = import_sources(Store(rerun), [str(folder)], "content", download=fast)
    assert summary.skipped == 9 and summary.caught_up == 8 and summary.caught_up_accepted == 5
    assert "earlier run left without a decision" in summary.render()
    final = _state(rerun)
    assert final.statuses == clean.statuses and final.sightings == final.urls == 9
    _record(
        probe,
        "import rerun over undecided images",
        clean,
        State({}, 0, 0, 0),
        final,
        "decided from their rows",
        rejected=False,
    )

    # `stylebench curate` decides every undecided image; met again at a new URL, one is decided
    by_curate = tmp_path / "curate"
    _strand(tmp_path / "clean", by_curate)
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    (copy / "again.jpg").write_bytes((folder / "3-chelsea.jpg").read_bytes())
    summary = import_sources(Store(by_curate), [str(copy)], "content", download=fast)
    assert summary.accepted == 1 and _state(by_curate).stranded == 7
    result = runner.invoke(app, ["-d", str(by_curate), "curate"])
    assert result.exit_code == 0, result.output
    assert "decided 7 image(s) that had no decision: accepted 4, rejected 3" in result.output
    final = _state(by_curate)
    assert final.statuses == clean.statuses
    result = runner.invoke(app, ["-d", str(by_curate), "curate"])
    assert result.exit_code == 0 and "every image in the catalog has a decision" in result.output
    _record(
        probe,
        "curate over undecided images",
        clean,
        State({}, 0, 0, 0),
        final,
        "decided from their rows",
        rejected=False,
    )


# ---------------------------------------------------------------------------------------------
# writers killed mid-write


def _killed_mid_write(data: Path, folder: Path) -> list[Path]:
    """Run an import in a real process whose file syncs never end, SIGKILL it while an image
    is being written, and return the temporaries it left."""
    code = (
        "import os, sys, time\n"
        "os.fsync = lambda fd: time.sleep(600)\n"
        "from stylebench.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "-d",
            str(data),
            "-q",
            "import",
            str(folder),
            "--role",
            "style",
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while proc.poll() is None:
            left = list((data / "images").glob(f"*/{TMP_PREFIX}*"))
            if left:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return list(data.rglob(f"{TMP_PREFIX}*"))


@pytest.mark.parametrize("cleaner", ["rerun", "compact"])
def test_temporaries_of_a_killed_import_are_removed(cleaner, tmp_path, probe):
    data = tmp_path / "data"
    folder = _noise(tmp_path / "noise", 4)
    left = _killed_mid_write(data, folder)
    assert left, "the killed import left no temporary"
    # a live writer's temporary (this process) and a fresh one of another machine stay
    live = data / "images" / "00" / f"{Location.open(str(data)).temporary('x').split('/')[-1]}"
    live.parent.mkdir(parents=True, exist_ok=True)
    live.write_bytes(b"in progress")
    foreign = data / "images" / "00" / f"{TMP_PREFIX}ffffffff-1-{'0' * 32}.part"
    foreign.write_bytes(b"another machine")
    if cleaner == "rerun":
        proc = _cli("-d", str(data), "-q", "import", str(folder), "--role", "style")
        assert proc.returncode == 0, proc.stderr
        final = _state(data)
        assert final.stranded == 0 and final.sightings == final.urls == 4
    else:
        proc = _cli("-d", str(data), "compact")
        assert proc.returncode == 0, proc.stderr
        assert f"removed {len(left)} temporary file(s)" in proc.stdout
    assert not any(p.exists() for p in left)
    assert live.exists() and foreign.exists()
    probe.record(f"import killed mid-write, then {cleaner}", rejected=False, reason="removed")


# ---------------------------------------------------------------------------------------------
# odd sources


def test_symbolic_link_loops_as_import_sources(tmp_path, probe):
    data = tmp_path / "data"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = runner.invoke(app, ["-d", str(data), "import", str(loop), "--role", "content"])
    assert result.exit_code == 1 and "symbolic link loop" in result.output, result.output
    probe.record("import: a symbolic link loop", rejected=True, reason=result.output.strip())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{loop}\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "inner").symlink_to(folder / "inner")
    (folder / "up").symlink_to(folder)
    _noise(folder, 1)
    result = runner.invoke(
        app, ["-d", str(data), "-q", "import", str(listing), str(folder), "--role", "content"]
    )
    assert result.exit_code == 0, result.output
    rows = Store(data).query("SELECT status, reason FROM catalog ORDER BY status").to_pylist()
    assert [r["status"] for r in rows] == ["accepted", "rejected"]
    assert "symbolic links" in rows[1]["reason"]
    probe.record(
        "import: a link loop listed, and inside a folder", rejected=True, reason=rows[1]["reason"]
    )


def test_a_float_tiff_in_0_to_1_is_not_imported_black(tmp_path, probe):
    gray = np.asarray(photo("camera", 200), dtype=np.float32) / 255.0  # 0..1, as float TIFFs hold
    path = tmp_path / "float.tif"
    Image.fromarray(gray, mode="F").save(path)
    data = tmp_path / "data"
    result = runner.invoke(app, ["-d", str(data), "-q", "import", str(path), "--role", "content"])
    assert result.exit_code == 0, result.output
    row = Store(data).query("SELECT path, status FROM catalog").to_pylist()[0]
    stored = np.asarray(Image.open(Store(data).local_path(row["path"])))
    expected = np.asarray(photo("camera", 200))
    assert row["status"] == "accepted" and stored.max() > 200
    assert np.abs(stored.astype(int) - expected.astype(int)).max() <= 1
    probe.record("import: a float TIFF in 0..1", rejected=False, reason="scaled to 8 bits")
