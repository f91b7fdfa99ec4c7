"""A start barrier for test processes: each says it is ready, then all are let go at once."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def wait_at_the_line(ready: str | os.PathLike[str], go: str | os.PathLike[str]) -> None:
    """In a test process: say it is ready (the file ``ready``), then wait for ``go``."""
    Path(ready).touch()
    while not os.path.exists(go):
        time.sleep(0.002)


def let_go(
    procs: Sequence[subprocess.Popen], ready: Sequence[Path], go: Path, poll_s: float = 0.01
) -> None:
    """Once every process has written its ``ready`` file, create ``go``; a process that ends
    before it is ready fails the test with its error output."""
    while not all(path.exists() for path in ready):
        for proc in procs:
            if proc.poll() is not None:
                _, err = proc.communicate()
                raise AssertionError(
                    f"a process ended before the start (exit {proc.returncode}):\n{err}"
                )
        time.sleep(poll_s)
    go.write_text("go")
