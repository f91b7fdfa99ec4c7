"""When Prefect's ephemeral API server does not start, the command says what to do."""

from __future__ import annotations

import os

import pytest

from stylebench.cli.main import ephemeral_server_advice, main

PREFECT_TIMEOUT = (
    "Timed out while attempting to connect to ephemeral Prefect API server. "
    "Ephemeral server process exited with code 1."
)


def test_flows_give_the_ephemeral_server_room_to_start():
    import flows

    wanted = os.environ.get(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", flows.EPHEMERAL_STARTUP_TIMEOUT_S
    )
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as setting

    assert int(setting.value()) == int(wanted) and int(wanted) > 20  # Prefect's default is 20


def test_a_server_that_does_not_start_gets_advice(data_dir, no_prefect_api, monkeypatch, capsys):
    import sys

    import flows.prefect_client

    def exits(self):
        return [sys.executable, "-c", "raise SystemExit(1)"]

    monkeypatch.setattr(flows.prefect_client._TemporaryServer, "command", exits)
    with pytest.raises(SystemExit) as exit_info:
        main(["-d", data_dir, "stylize", "--method", "gatys"])
    assert exit_info.value.code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "did not start within" in err and "prefect server start" in err
    assert "--no-prefect" in err and "PREFECT_API_URL" in err


def test_other_errors_pass_through():
    assert ephemeral_server_advice(RuntimeError("something else")) is None
    assert ephemeral_server_advice(ValueError(PREFECT_TIMEOUT)) is None
    assert "prefect server start" in ephemeral_server_advice(RuntimeError(PREFECT_TIMEOUT))
