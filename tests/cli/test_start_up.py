"""A command's start: its imports."""

from __future__ import annotations


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
