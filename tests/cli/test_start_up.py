"""A command's start: its imports."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_commands_imports_run_with_the_collector_paused_and_stay_out_of_its_scans():
    import gc

    from stylebench.cli.common import collector_paused

    frozen = gc.get_freeze_count()
    try:
        with collector_paused():
            assert not gc.isenabled()
            made = [[] for _ in range(1000)]  # as an import makes them
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)  # never scanned again
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    "argv,starts",
    [
        (["-d", "stylize", "-v", "stylize", "-e", "night.yaml"], True),  # a data dir so named
        (["--data-dir=/data", "-q", "build-dataset", "spec.yaml"], True),
        (["stylize", "--no-prefect"], False),
        (["stylize", "-e", "night.yaml", "--help"], False),
        (["-d", "data", "report"], False),
        (["--version"], False),
        ([], False),
    ],
)
def test_the_program_starts_a_temporary_server_for_a_flow_command_only(monkeypatch, argv, starts):
    import flows.prefect_client as pc
    import stylebench.cli.main as cli
    from stylebench.cli import launch

    started, ran = [], []
    monkeypatch.setattr(pc, "start_temporary_server_early", lambda: started.append(True))
    monkeypatch.setattr(cli, "main", lambda: ran.append(True))
    monkeypatch.setattr(sys, "argv", ["stylebench", *argv])
    launch.main()
    assert ran == [True] and started == ([True] if starts else [])


def test_the_program_runs_the_command_line():
    proc = subprocess.run(
        [sys.executable, "-m", "stylebench.cli.launch", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("stylebench "), proc.stderr
