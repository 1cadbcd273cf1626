"""The client against the real gateway and a real `chroma run` on loopback (moto for Secrets Manager): an
application loop written only against chromadb's API through `connect` rides through a node restart and a token
rotation with zero failed calls; a bad token fails fast; an outage longer than the budget fails cleanly with the
request id; a 100k-record add in one call lands completely."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import chromadb.errors
import pytest

from chroma_on_aws_client import ClientOptions, RequestFailed, RetryPolicy, connect
from chroma_on_aws_client.tokens import SecretsManagerToken
from gateway.local import Server, chroma_server, free_port
from gateway.tests.conftest import TOKEN, GatewayFactory

pytestmark = pytest.mark.servers

DIM = 8


def vector(i: int) -> list[float]:
    return [float((i * (k + 3)) % 97) / 97 for k in range(DIM)]


@dataclass
class Calls:
    """What the on_request hook saw."""

    seen: list[tuple[str, float, int | None, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, operation: str, seconds: float, status: int | None, attempts: int) -> None:
        with self.lock:
            self.seen.append((operation, seconds, status, attempts))

    @property
    def retried(self) -> int:
        return sum(1 for *_, attempts in self.seen if attempts > 1)

    @property
    def worst_seconds(self) -> float:
        return max(seconds for _, seconds, _, _ in self.seen)


class Application:
    """An application loop using only chromadb's API: upserts and adds (new ids), queries, counts."""

    def __init__(self, client: Any, name: str) -> None:
        self.collection = client.get_or_create_collection(name)
        self.failures: list[str] = []
        self.calls = 0
        self.added: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self.collection.add(ids=[f"a{i}"], embeddings=[vector(i)])
                self.added.append(f"a{i}")
                self.collection.upsert(ids=[f"u{i % 5}"], embeddings=[vector(i)])
                self.collection.query(query_embeddings=[vector(i)], n_results=1)
                self.calls += 3
            except Exception as error:
                self.failures.append(f"{type(error).__name__}: {error}")
            time.sleep(0.02)

    def __enter__(self) -> Application:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)


@contextlib.contextmanager
def restartable_chroma(data: Path) -> Iterator[dict[str, Any]]:
    """Chroma on a fixed port that the test can stop and start again (the gateway stays up in front of it)."""
    port = free_port()
    state: dict[str, Any] = {"port": port}
    stack = contextlib.ExitStack()
    state["server"] = stack.enter_context(chroma_server(data, port=port))
    state["stack"] = stack
    try:
        yield state
    finally:
        state["stack"].close()


def test_a_node_restart_costs_latency_not_calls(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    with restartable_chroma(tmp_path / "data") as node:
        server: Server = node["server"]
        gateway = start_gateway(server.url)
        calls = Calls()
        client = connect(endpoint=gateway.url, token=TOKEN, options=ClientOptions(on_request=calls))
        with Application(client, f"restart-{uuid.uuid4().hex[:8]}") as app:
            time.sleep(1.0)
            before = len(calls.seen)
            node["stack"].close()  # Chroma stops (as a deploy stops the old task) ...
            time.sleep(3.0)
            node["stack"] = contextlib.ExitStack()
            node["stack"].enter_context(chroma_server(tmp_path / "data", port=node["port"]))  # ... and starts
            time.sleep(2.0)
        assert app.failures == [], app.failures[:3]
        assert calls.retried > 0, "the restart was not seen: the test proved nothing"
        ids = set(app.collection.get(ids=app.added, include=[])["ids"])
        assert ids == set(app.added)  # every acknowledged add is there, none twice (ids are unique by nature)
        during = calls.seen[before:]
        print(f"\nnode restart (3 s down): {app.calls} calls, 0 failed, {calls.retried} retried, worst added "
              f"latency {max(s for _, s, _, _ in during):.2f} s")


def test_a_bad_token_fails_fast_and_does_not_retry(tmp_path: Path, chroma: Server,
                                                   start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    calls = Calls()
    started = time.monotonic()
    with pytest.raises(chromadb.errors.AuthorizationError) as refused:
        connect(endpoint=gateway.url, token="not-the-token", options=ClientOptions(on_request=calls))  # noqa: S106
    assert time.monotonic() - started < 5
    assert all(attempts == 1 for *_, attempts in calls.seen)
    assert "request id" in "".join(getattr(refused.value, "__notes__", []))
    assert "not-the-token" not in str(refused.value) + "".join(getattr(refused.value, "__notes__", []))


def test_an_outage_longer_than_the_budget_fails_cleanly_with_the_request_id(
        tmp_path: Path, start_gateway: GatewayFactory) -> None:
    with restartable_chroma(tmp_path / "data") as node:
        gateway = start_gateway(node["server"].url)
        client = connect(endpoint=gateway.url, token=TOKEN,
                         options=ClientOptions(retry=RetryPolicy(budget_seconds=3.0, max_delay_seconds=0.5)))
        collection = client.get_or_create_collection("outage")
        node["stack"].close()
        started = time.monotonic()
        with pytest.raises(RequestFailed) as failed:
            collection.query(query_embeddings=[vector(1)], n_results=1)
        assert 2.0 < time.monotonic() - started < 6.0
        assert failed.value.attempts > 1 and len(failed.value.request_id) == 32
        assert "query failed" in str(failed.value) and "retry budget 3 s" in str(failed.value)


def test_a_rotation_costs_no_call_even_for_a_client_that_never_refreshes_on_its_own(
        chroma: Server, start_gateway: GatewayFactory, aws_env: dict[str, str]) -> None:
    secrets = boto3.client("secretsmanager")
    arn = secrets.create_secret(Name=f"chroma/test/{uuid.uuid4().hex}", SecretString="token-one")["ARN"]
    gateway = start_gateway(chroma.url, token_secret_id=arn, **{"token_refresh_seconds": "0.2",
                                                                "previous_token_grace_seconds": "2"}, **aws_env)
    calls = Calls()
    # Refreshing only on a 401: the slowest possible client still loses no call.
    tokens = SecretsManagerToken(secrets, arn, refresh_seconds=3600)
    client = connect(endpoint=gateway.url, tokens=tokens, options=ClientOptions(on_request=calls))
    with Application(client, f"rotation-{uuid.uuid4().hex[:8]}") as app:
        time.sleep(1.0)
        secrets.put_secret_value(SecretId=arn, SecretString="token-two")  # AWSCURRENT moves; one becomes previous
        time.sleep(4.0)  # past the gateway's 2 s grace: token-one is refused from here
    assert app.failures == [], app.failures[:3]
    assert app.calls > 30
    assert tokens.token() == "token-two"  # read again only because the gateway refused token-one (a 401)
    print(f"\nrotation: {app.calls} calls, 0 failed, worst latency {calls.worst_seconds:.2f} s")


def test_a_large_add_in_one_call_lands_completely(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    progress: list[int] = []
    client = connect(endpoint=gateway.url, token=TOKEN,
                     options=ClientOptions(on_progress=lambda _op, done, _total: progress.append(done)))
    collection = client.get_or_create_collection(f"large-{uuid.uuid4().hex[:8]}")
    records = 100_000
    started = time.monotonic()
    collection.add(ids=[f"r{i}" for i in range(records)], embeddings=[vector(i) for i in range(records)])
    assert collection.count() == records
    assert len(progress) > 1 and progress[-1] == records and progress == sorted(progress)
    print(f"\n100k-record add: {len(progress)} batches, {time.monotonic() - started:.1f} s")


def test_an_endpoint_that_never_answers_fails_connect_with_the_request_id() -> None:
    started = time.monotonic()
    with pytest.raises(RequestFailed) as failed:
        connect(endpoint=f"http://127.0.0.1:{free_port()}", token=TOKEN,
                options=ClientOptions(retry=RetryPolicy(budget_seconds=1.0, max_delay_seconds=0.2)))
    assert time.monotonic() - started < 3
    assert failed.value.status is None and "cannot connect" in str(failed.value) and failed.value.attempts > 1


@pytest.mark.parametrize("drop,landed,resent", [("answer", 50, 0), ("request", 0, 50)])
def test_an_add_that_may_have_landed_is_completed_never_duplicated(
        chroma: Server, start_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture, drop: str, landed: int,
        resent: int) -> None:
    """The add's connection was lost: the client asks which ids exist and sends only the others."""
    from client_tests.lossy_proxy import lossy_proxy

    gateway = start_gateway(chroma.url)
    with lossy_proxy(gateway.port, b"/add", drop) as proxy:
        client = connect(endpoint=f"http://127.0.0.1:{proxy.port}", token=TOKEN)
        collection = client.get_or_create_collection(f"lost-{uuid.uuid4().hex[:8]}")
        with caplog.at_level("WARNING", logger="chroma_on_aws_client"):
            collection.add(ids=[f"x{i}" for i in range(50)], embeddings=[vector(i) for i in range(50)])
        assert proxy.lost == 1
        assert collection.count() == 50
        [warning] = [r for r in caplog.records if "may have landed" in r.getMessage()]
        assert (warning.landed, warning.resent) == (landed, resent)  # type: ignore[attr-defined]


def test_a_batched_write_that_fails_part_way_says_which_batches_landed(chroma: Server,
                                                                       start_gateway: GatewayFactory) -> None:
    from chroma_on_aws_client import BatchFailed

    gateway = start_gateway(chroma.url)
    small_bodies = ClientOptions(max_body_bytes=1500)  # a few records per request
    collection = connect(endpoint=gateway.url, token=TOKEN, options=small_bodies).get_or_create_collection(
        f"partial-{uuid.uuid4().hex[:8]}")
    embeddings = [vector(i) for i in range(30)]
    embeddings[25] = [1.0, 2.0]  # Chroma refuses a record of the wrong dimension
    with pytest.raises(BatchFailed) as failed:
        collection.add(ids=[f"p{i}" for i in range(30)], embeddings=embeddings)
    landed, (start, end) = failed.value.landed, failed.value.failed
    assert landed and landed[0][0] == 0 and landed[-1][1] == start and start <= 25 < end
    assert collection.count() == start  # exactly the batches it says landed
    assert f"{start} of 30 records landed" in str(failed.value)


def test_connect_by_environment_name_finds_the_endpoint_and_token(chroma: Server, start_gateway: GatewayFactory,
                                                                   aws_env: dict[str, str]) -> None:
    gateway = start_gateway(chroma.url)
    environment = f"e{uuid.uuid4().hex[:8]}"
    arn = boto3.client("secretsmanager").create_secret(Name=f"chroma/{environment}/token", SecretString=TOKEN)["ARN"]
    ssm = boto3.client("ssm")
    for name, value in {"endpoint-url": gateway.url, "token-secret-arn": arn,
                        "previous-token-grace-seconds": "3600"}.items():
        ssm.put_parameter(Name=f"/chroma/{environment}/{name}", Value=value, Type="String")
    client = connect(environment, session=boto3.Session())
    assert client.heartbeat() > 0
    assert client.get_or_create_collection("by-name").count() == 0
