"""Storage fixtures: every store test runs on a local directory and on a local S3 server."""

from __future__ import annotations

import json
import uuid

import pytest

S3_CREDENTIALS = {"key": "testing", "secret": "testing"}


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-compatible server (moto's server mode) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def create_bucket(endpoint: str, prefix: str) -> str:
    """A new bucket on the S3 server at ``endpoint``: its name, ``prefix`` and a random part."""
    import boto3

    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3_location(s3_endpoint, monkeypatch):
    """An empty bucket prefix on the local S3 server, with options in the environment
    (so subprocesses reach it too)."""
    bucket = create_bucket(s3_endpoint, "sb")
    options = {**S3_CREDENTIALS, "client_kwargs": {"endpoint_url": s3_endpoint}}
    monkeypatch.setenv("STYLEBENCH_STORAGE_OPTIONS", json.dumps(options))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return f"s3://{bucket}/stylebench"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def location(request, tmp_path):
    """The data directory under test: a local path, then an S3 URL on the local server."""
    if request.param == "local":
        return str(tmp_path / "data")
    return request.getfixturevalue("s3_location")
