"""An object store that cannot be reached, that dies mid-import, that lacks the bucket or that
refuses the credentials: one line naming the data directory and the cause, exit 1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from storage import StorageError, Store
from storage.location import Location, fault_of_environment
from stylebench.cli.common import describe_error
from stylebench.cli.main import app
from tests.storage.conftest import S3_CREDENTIALS, create_bucket

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args: str, options: dict) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "STYLEBENCH_STORAGE_OPTIONS": json.dumps(options),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "stylebench.cli.main", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return proc


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _noise(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


@pytest.mark.slow  # the S3 client retries a closed port before it gives up
@pytest.mark.parametrize("command", [["info"], ["import", "IMAGES", "--role", "style"]])
def test_an_unreachable_object_store_is_a_user_error(command, tmp_path, probe):
    options = {
        **S3_CREDENTIALS,
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{_closed_port()}"},
    }
    args = [str(_noise(tmp_path / "images", 2)) if a == "IMAGES" else a for a in command]
    proc = _cli("-q", "-d", "s3://bucket/x", *args, options=options)
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1, proc.stderr
    assert (
        "data directory s3://bucket/x" in errors[0] and "cannot reach the object store" in errors[0]
    )
    probe.record(f"{command[0]} on an unreachable object store", rejected=True, reason=errors[0])


@pytest.mark.s3
@pytest.mark.parametrize("command", [["info"], ["import", "IMAGES", "--role", "style"]])
def test_a_missing_bucket_is_an_error(command, s3_endpoint, tmp_path, probe):
    options = {**S3_CREDENTIALS, "client_kwargs": {"endpoint_url": s3_endpoint}}
    url = f"s3://no-such-{uuid.uuid4().hex[:10]}/stylebench"
    args = [str(_noise(tmp_path / "images", 2)) if a == "IMAGES" else a for a in command]
    proc = _cli("-q", "-d", url, *args, options=options)
    assert proc.returncode == 1, proc.stderr
    errors = _errors(proc.stderr)
    assert len(errors) == 1 and url in errors[0] and "bucket does not exist" in errors[0], errors
    probe.record(f"{command[0]} on a missing bucket", rejected=True, reason=errors[0])


@pytest.mark.s3
def test_an_existing_bucket_without_the_prefix_is_an_empty_store(s3_location):
    assert Store(s3_location).read("images").num_rows == 0  # not an error: nothing written yet


@pytest.fixture
def dying_server(monkeypatch):
    """An S3 server of this test's own (so stopping it spares the others), with a bucket."""
    from moto.server import ThreadedMotoServer

    servers = []

    def start() -> str:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        servers.append(server)
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        options = {**S3_CREDENTIALS, "client_kwargs": {"endpoint_url": endpoint}}
        monkeypatch.setenv("STYLEBENCH_STORAGE_OPTIONS", json.dumps(options))
        return endpoint

    bucket = create_bucket(start(), "dies")
    yield f"s3://{bucket}/data", servers, start
    for server in servers:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - stopped by the test already
            pass


@pytest.mark.s3
@pytest.mark.slow
def test_an_object_store_that_dies_mid_import_stops_it_at_once(
    dying_server, tmp_path, monkeypatch, probe
):
    import scraper.pipeline

    url, servers, start = dying_server
    folder = _noise(tmp_path / "images", 12)
    monkeypatch.setattr(scraper.pipeline, "ROWS_PER_APPEND", 2)
    writes = {"n": 0, "after_death": 0}
    real = Location.write_atomic

    def write_atomic(loc, path, write):
        writes["n"] += 1
        if writes["n"] == 6:
            servers[-1].stop()  # the store dies while the import runs
        if writes["n"] > 6:
            writes["after_death"] += 1
        return real(loc, path, write)

    monkeypatch.setattr(Location, "write_atomic", write_atomic)
    result = runner.invoke(app, ["-q", "-d", url, "import", str(folder), "--role", "style"])
    out = result.output
    assert result.exit_code == 1, out
    assert "Traceback" not in out and "internal error" not in out
    errors = _errors(out)
    assert len(errors) == 1 and url in errors[0] and "cannot reach the object store" in errors[0]
    # it stopped at the first failed write instead of failing every image one by one
    assert writes["after_death"] <= 8  # at most the downloads already in flight
    monkeypatch.setattr(Location, "write_atomic", real)

    start()  # the store is back (same objects, a new endpoint)
    store = Store(url)
    undecided = store.query("SELECT count(*) FROM catalog WHERE status IS NULL").column(0)[0]
    assert undecided.as_py() == 0
    failed = store.query("SELECT count(*) FROM catalog WHERE status = 'rejected'").column(0)[0]
    assert failed.as_py() == 0  # no image was recorded as failing because of the store
    result = runner.invoke(app, ["-q", "-d", url, "import", str(folder), "--role", "style"])
    assert result.exit_code == 0, result.output
    rows = store.query(
        "SELECT count(*) AS n, count(DISTINCT image_url) AS urls, "
        "count(*) FILTER (WHERE c.status = 'accepted') AS accepted "
        "FROM images LEFT JOIN curation_latest c USING (image_id)"
    ).to_pylist()[0]
    assert rows == {"n": 12, "urls": 12, "accepted": 12}
    probe.record(
        "import while the object store dies",
        rejected=True,
        reason=errors[0],
        rows_stranded=undecided.as_py(),
        rows_lost=12 - rows["accepted"],
        rows_duplicated=rows["n"] - rows["urls"],
    )


def _client_error(code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError
    from s3fs.errors import translate_boto_error

    error = ClientError({"Error": {"Code": code, "Message": message}}, "ListObjectsV2")
    return translate_boto_error(error)  # as s3fs raises it


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: _client_error("InvalidAccessKeyId", "The key does not exist"), "refused access"),
        (lambda: _client_error("SignatureDoesNotMatch", "Bad signature"), "refused access"),
        (lambda: _client_error("AccessDenied", "Access Denied"), "refused access"),
        (lambda: _client_error("NoSuchBucket", "The specified bucket does not exist"), "bucket"),
    ],
)
def test_refused_credentials_and_missing_buckets_are_described(make, words, probe):
    exc = make()
    assert isinstance(exc, OSError)  # s3fs turns these into OSErrors
    cause = fault_of_environment(exc)
    assert cause is not None and words in cause
    message = describe_error(exc, "s3://bucket/x")
    assert message is not None and words in message
    probe.record(f"object store: {type(exc).__name__} {exc}", rejected=True, reason=message)


def test_missing_credentials_are_described(probe):
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    message = describe_error(NoCredentialsError(), "s3://bucket/x")
    assert message is not None and message.startswith(
        "data directory s3://bucket/x: no credentials"
    )
    assert "AWS_ACCESS_KEY_ID" in message
    message = describe_error(EndpointConnectionError(endpoint_url="http://x"), "s3://b/x")
    assert message is not None and "cannot reach the object store" in message
    assert describe_error(RuntimeError("a bug"), "s3://b/x") is None  # bugs stay bugs
    probe.record("object store: no credentials", rejected=True, reason=message)


def test_a_storage_error_names_where_and_why(tmp_path):
    loc = Location.open(str(tmp_path / "data"))
    with pytest.raises(StorageError) as info, loc.guard("writing x", writing=True):
        raise OSError(28, "No space left on device")
    assert str(info.value).startswith(f"data directory {tmp_path / 'data'}: writing x: no space")
    with pytest.raises(KeyError), loc.guard("reading x"):
        raise KeyError("a bug is not a fault of the environment")
