"""Real servers on loopback: a `chroma run` server per session, gateways per test, moto as a server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.local import LOOPBACK, Server, chroma_server, free_port, gateway_server, wait_until

TOKEN = "test-token-Abc123!#"
GatewayFactory = Callable[..., Server]


@pytest.fixture(scope="session")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with chroma_server(tmp_path_factory.mktemp("chroma") / "data") as server:
        yield server


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Starts gateways (stopped after the test). Keyword arguments become GATEWAY_* settings."""
    with contextlib.ExitStack() as stack:

        def start(upstream: str, wait_ready: bool = True, **settings: str) -> Server:
            env = {("GATEWAY_" + k.upper() if not k.startswith(("AWS_", "GATEWAY_")) else k): v
                   for k, v in settings.items()}
            if not any(k in env for k in ("GATEWAY_TOKENS", "GATEWAY_TOKEN_FILE", "GATEWAY_TOKEN_SECRET_ID")):
                env["GATEWAY_TOKENS"] = TOKEN
            return stack.enter_context(gateway_server(upstream, tmp_path, env, wait_ready=wait_ready))

        yield start


@contextlib.contextmanager
def running_moto(work_dir: Path) -> Iterator[Server]:
    """moto in server mode on loopback, so the gateway (another process) can reach it."""
    port = free_port()
    log_path = work_dir / f"moto-{port}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
                                   stdout=log_file, stderr=subprocess.STDOUT)
    server = Server(process, port, log_path)
    try:
        wait_until(f"{server.url}/moto-api/", process, 30, "moto", log_path)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_moto(tmp_path_factory.mktemp("moto")) as server:
        yield server.url


def aws_settings(endpoint: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


@pytest.fixture
def aws_env(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = aws_settings(moto_server)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


REQUESTS_BUCKET = "chroma-dev-control"  # the recovery points' requests bucket, in moto


@pytest.fixture
def s3(aws_env: dict[str, str]) -> Iterator[Any]:
    """moto's S3 (server mode) with the requests bucket, emptied and removed after the test."""
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket=REQUESTS_BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=REQUESTS_BUCKET).get("Contents", []):
        client.delete_object(Bucket=REQUESTS_BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=REQUESTS_BUCKET)
