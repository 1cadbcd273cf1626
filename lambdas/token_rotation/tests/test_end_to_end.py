"""A whole rotation, locally: real Chroma, the real gateway reading its tokens from moto, the handler's four steps
run in order as Secrets Manager would, while an application using the client package (client/) keeps querying and
writing through the gateway: zero failed calls."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import chromadb
import pytest
from chromadb.config import Settings as ClientSettings
from moto.server import ThreadedMotoServer

from chroma_on_aws_client import connect
from chroma_on_aws_client.tokens import SecretsManagerToken
from gateway.local import LOOPBACK, chroma_server, free_port, gateway_server
from gateway.tests.test_proxy import raw
from lambdas.token_rotation.function import handler, settings
from lambdas.token_rotation.tests.moto_support import begin_rotation, complete_rotation

pytestmark = pytest.mark.servers

GRACE_SECONDS = 4.0
CLIENT_TOKEN_REFRESH_SECONDS = 0.5  # how often the client re-reads AWSCURRENT (a real client: minutes)


@dataclass
class LambdaContext:
    function_name: str = "chroma-test-token-rotation"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:chroma-test-token-rotation"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    url = f"http://{LOOPBACK}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    yield url
    server.stop()


def chroma_client(port: int, token: str) -> Any:
    return chromadb.HttpClient(host=LOOPBACK, port=port, headers={"Authorization": f"Bearer {token}"},
                               settings=ClientSettings(anonymized_telemetry=False))


def status_with(port: int, token: str) -> int:
    return raw(port, "GET", "/api/v2/tenants/default_tenant", {"Authorization": f"Bearer {token}"})[0]


class BusyClient(threading.Thread):
    """An application written only against the client package and chromadb's API: it queries and writes through
    the gateway without pause; the package re-reads the token (every CLIENT_TOKEN_REFRESH_SECONDS, and on a 401)."""

    def __init__(self, gateway_url: str, secret_id: str, query: list[float]) -> None:
        super().__init__(daemon=True)
        self.query = query
        self.tokens = SecretsManagerToken(boto3.client("secretsmanager"), secret_id, CLIENT_TOKEN_REFRESH_SECONDS)
        self.client = connect(endpoint=gateway_url, tokens=self.tokens)
        self.stop = threading.Event()
        self.requests = 0
        self.failures: list[str] = []
        self.written = 0
        self.results: list[list[str]] = []

    def run(self) -> None:
        rng = random.Random(3)
        baseline, writes = self.client.get_collection("baseline"), self.client.get_collection("writes")
        while not self.stop.is_set():
            try:
                self.results.append(baseline.query(query_embeddings=[self.query], n_results=5)["ids"][0])
                writes.add(ids=[f"w{self.written + i}" for i in range(5)],
                           embeddings=[[rng.random() for _ in range(8)] for _ in range(5)])
                self.written += 5
                self.requests += 2
            except Exception as error:
                self.failures.append(f"{type(error).__name__}: {error}")


def test_rotation_under_load_loses_nothing(moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = boto3.client("secretsmanager")
    original = "original-token-0123456789"
    secret_id = secrets.create_secret(Name="chroma/e2e/gateway-token", SecretString=original)["ARN"]
    gateway_env = {"GATEWAY_TOKEN_SECRET_ID": secret_id, "GATEWAY_TOKEN_REFRESH_SECONDS": "0.5",
                   "GATEWAY_PREVIOUS_TOKEN_GRACE_SECONDS": str(GRACE_SECONDS), "AWS_ENDPOINT_URL": moto_url,
                   "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
    with chroma_server(tmp_path / "data") as chroma, \
            gateway_server(chroma.url, tmp_path, gateway_env) as gateway:
        rng = random.Random(5)
        setup = chroma_client(gateway.port, original)
        baseline = setup.create_collection("baseline")
        vectors = [[rng.random() for _ in range(8)] for _ in range(300)]
        baseline.add(ids=[f"b{i}" for i in range(300)], embeddings=vectors)
        setup.create_collection("writes")
        expected = baseline.query(query_embeddings=[vectors[7]], n_results=5)["ids"][0]

        client = BusyClient(gateway.url, secret_id, vectors[7])
        client.start()
        time.sleep(1.0)
        monkeypatch.setenv(settings.ENV_ENDPOINT_HOST, LOOPBACK)
        monkeypatch.setenv(settings.ENV_ENDPOINT_PORT, str(gateway.port))
        monkeypatch.setenv(settings.ENV_WAIT_SECONDS, "30")
        monkeypatch.setenv(settings.ENV_PENDING_MAX_AGE_SECONDS, "3600")
        bogus_statuses = [status_with(gateway.port, "bogus-token")]
        version = begin_rotation(secrets, secret_id)  # Secrets Manager starts the rotation now
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
            handler.lambda_handler({"Step": step, "SecretId": secret_id, "ClientRequestToken": version},
                                   LambdaContext())
            bogus_statuses.append(status_with(gateway.port, "bogus-token"))
        complete_rotation(secret_id)
        finished = time.time()
        new_token = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
        assert new_token != original

        # The old token still works inside the grace period...
        assert status_with(gateway.port, original) == 200
        time.sleep(1.5)  # the client picks up the new token and keeps working with it
        client.stop.set()
        client.join(10)
        # ...and is refused after it.
        deadline = time.monotonic() + GRACE_SECONDS + 5
        while status_with(gateway.port, original) != 401:
            assert time.monotonic() < deadline, "old token still accepted long after the grace period"
            time.sleep(0.2)
        assert time.time() - finished < GRACE_SECONDS + 3
        assert status_with(gateway.port, new_token) == 200
        bogus_statuses.append(status_with(gateway.port, "bogus-token"))

        assert client.failures == [], client.failures[:5]
        assert client.requests > 40  # the client really was busy during the rotation
        assert client.tokens.token() == new_token  # the package moved to the new token by itself
        assert set(bogus_statuses) == {401}
        # No data lost: every write is there, and the baseline answers exactly as before.
        after = chroma_client(gateway.port, new_token)
        assert after.get_collection("writes").count() == client.written
        assert after.get_collection("baseline").count() == 300
        assert all(result == expected for result in client.results)
        assert after.get_collection("baseline").query(query_embeddings=[vectors[7]], n_results=5)["ids"][0] == expected
    assert original not in gateway.log() and new_token not in gateway.log()


