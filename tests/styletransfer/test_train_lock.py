"""``train-fast`` in real processes: one trainer per model name, and Ctrl-C says truthfully
what was kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.styletransfer.tiny import TINY_TRAINING, photo_folder

REPO = Path(__file__).resolve().parents[2]
# The bundled vgg19 loss network on 32 px crops: each step takes a fraction of a second.
TINY = TINY_TRAINING


@pytest.fixture
def setup(tmp_path):
    folder, style = photo_folder(tmp_path)
    return tmp_path / "data", ["--style", str(style), "--content-dir", str(folder)]


def _train(data: Path, base: list[str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "stylebench.cli.main", "-q", "-d", str(data), "train-fast"]
        + base
        + TINY
        + list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(proc: subprocess.Popen, pattern: str, root: Path) -> None:
    """Wait until a file matching ``pattern`` exists under ``root`` (the process still runs)."""
    while not list(root.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=600)
    text = " ".join((out + err).split())
    assert "Traceback" not in text and "internal error" not in text, text
    return proc.returncode, text


@pytest.mark.slow
@pytest.mark.concurrency
def test_one_trainer_per_model_name_and_an_honest_ctrl_c(setup, probe):
    data, base = setup
    first = _train(
        data, base, "--name", "same", "--steps", "100000", "--checkpoint-every", "100000"
    )
    _wait_for(first, "leases/train/same/*.lease", data)

    code, text = _finish(_train(data, base, "--name", "same", "--steps", "2"))
    assert code == 1 and "model 'same' is being trained by train-fast same" in text, text
    assert "another --name" in text
    probe.record("train-fast: a second trainer of the same name", rejected=True, reason=text)

    time.sleep(1.0)
    first.send_signal(signal.SIGINT)
    code, text = _finish(first)
    assert code == 130, text
    assert "before the first checkpoint" in text and "nothing was kept" in text, text
    assert "are kept" not in text
    probe.record("train-fast: Ctrl-C before the first checkpoint", rejected=True, reason=text)

    # the lease went with the interrupted trainer: the name is free again
    code, text = _finish(_train(data, base, "--name", "same", "--steps", "2"))
    assert code == 0 and "saved" in text, text


@pytest.mark.slow
def test_ctrl_c_after_a_checkpoint_keeps_it_and_a_killed_trainer_frees_the_name(setup, probe):
    data, base = setup
    kept = _train(data, base, "--name", "kept", "--steps", "100000", "--checkpoint-every", "1")
    _wait_for(kept, "models/kept/checkpoints/*.json", data)
    kept.send_signal(signal.SIGINT)
    code, text = _finish(kept)
    assert code == 130 and "the checkpoint of step" in text and "is kept" in text, text
    assert "rerun the same command to resume" in text
    probe.record("train-fast: Ctrl-C after a checkpoint", rejected=True, reason=text)

    killed = _train(data, base, "--name", "dead", "--steps", "100000")
    _wait_for(killed, "leases/train/dead/*.lease", data)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=600)
    code, text = _finish(_train(data, base, "--name", "dead", "--steps", "2"))
    assert code == 0 and "saved" in text, text  # a dead local holder frees the name at once
    probe.record("train-fast: the name of a killed trainer", rejected=False, reason=text)
