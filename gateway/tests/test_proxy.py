"""The gateway in front of a real Chroma server, driven by the real chromadb client and by raw HTTP."""

from __future__ import annotations

import http.client
import json
import random
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ClientSettings
from chromadb.errors import AuthorizationError, NotFoundError

from gateway.local import LOOPBACK, Server
from gateway.tests.conftest import TOKEN, GatewayFactory

TRANSPORTS = ["Authorization", "X-Chroma-Token"]


def client_for(port: int, token: str | None = None, transport: str = "Authorization") -> chromadb.api.ClientAPI:
    settings = ClientSettings(anonymized_telemetry=False)
    if token is not None:
        settings = ClientSettings(anonymized_telemetry=False,
                                  chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                                  chroma_client_auth_credentials=token,
                                  chroma_auth_token_transport_header=transport)
    return chromadb.HttpClient(host=LOOPBACK, port=port, settings=settings)


def raw(port: int, method: str, path: str, headers: dict[str, str] | None = None,
        body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def scenario(client: chromadb.api.ClientAPI, name: str) -> list[Any]:
    """Every collection and record operation; returns what a user would observe."""
    rng = random.Random(42)
    observed: list[Any] = []
    collection = client.create_collection(name, metadata={"team": "search"},
                                          configuration={"hnsw": {"space": "cosine"}})
    observed.append(client.get_collection(name).metadata)
    ids = [f"id{i}" for i in range(50)]
    embeddings = [[rng.random() for _ in range(16)] for _ in ids]
    collection.add(ids=ids, embeddings=embeddings, documents=[f"doc {i}" for i in range(50)],
                   metadatas=[{"i": i, "even": i % 2 == 0} for i in range(50)])
    observed.append(collection.count())
    collection.upsert(ids=["id0", "new"], embeddings=[embeddings[1], embeddings[2]], documents=["up0", "new"])
    collection.update(ids=["id3"], metadatas=[{"i": 3, "even": False, "updated": True}])
    got = collection.get(where={"even": True}, include=["documents", "metadatas"])
    observed.append(sorted(zip(got["ids"], got["documents"] or [], strict=True)))
    result = collection.query(query_embeddings=[embeddings[5]], n_results=5, include=["distances", "documents"])
    observed.append((result["ids"], [[round(d, 5) for d in row] for row in result["distances"] or []]))
    observed.append(collection.get(ids=["id3"], include=["metadatas"])["metadatas"])
    collection.delete(ids=["id1", "id2"])
    collection.delete(where={"i": {"$gte": 40}})
    observed.append(collection.count())
    with_vectors = collection.get(ids=["id7"], include=["embeddings"])
    observed.append([round(float(x), 6) for x in with_vectors["embeddings"][0]])
    collection.modify(name=f"{name}-renamed")
    observed.append(sorted(c.name.replace(name, "NAME") for c in client.list_collections()
                           if c.name.startswith(name)))
    with pytest.raises(NotFoundError) as missing:
        client.get_collection(f"{name}-missing")
    observed.append(str(missing.value).replace(name, "NAME"))
    client.delete_collection(f"{name}-renamed")
    observed.append([c.name for c in client.list_collections() if c.name.startswith(name)])
    return observed


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_operation_behaves_as_directly_against_chroma(chroma: Server, start_gateway: GatewayFactory,
                                                             transport: str) -> None:
    gateway = start_gateway(chroma.url)
    direct = scenario(client_for(chroma.port), f"direct-{transport.lower()}")
    through = scenario(client_for(gateway.port, TOKEN, transport), f"gateway-{transport.lower()}")
    assert through == direct
    assert direct[1] == 50 and direct[5] == 39  # the scenario really ran: 50 added, +1 upserted, 12 deleted


def test_large_batches_pass_through_both_ways(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    client = client_for(gateway.port, TOKEN)
    collection = client.create_collection("large-batch")
    rng = random.Random(1)
    ids = [f"v{i}" for i in range(3000)]
    embeddings = [[rng.random() for _ in range(384)] for _ in ids]
    collection.add(ids=ids, embeddings=embeddings)  # a request body of ~24 MB
    fetched = collection.get(include=["embeddings"])  # a response of ~24 MB, streamed
    assert len(fetched["ids"]) == 3000
    by_id = dict(zip(fetched["ids"], fetched["embeddings"], strict=True))
    assert [round(float(x), 5) for x in by_id["v1234"]] == [round(x, 5) for x in embeddings[1234]]
    client.delete_collection("large-batch")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer "},
    {"X-Chroma-Token": ""},
    {"Authorization": "Bearer wrong-token"},
    {"X-Chroma-Token": "wrong-token"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer " + "x" * 4000},
    {"X-Chroma-Token": TOKEN[:-1]},
    {"X-Chroma-Token": TOKEN + "x"},
], ids=["none", "empty-bearer", "empty-header", "wrong-bearer", "wrong-header", "basic-scheme", "oversized",
        "prefix", "extension"])
def test_bad_tokens_are_refused_with_a_chroma_shaped_401(chroma: Server, start_gateway: GatewayFactory,
                                                          headers: dict[str, str]) -> None:
    gateway = start_gateway(chroma.url)
    status, response_headers, body = raw(gateway.port, "GET", "/api/v2/heartbeat", headers)
    assert status == 401
    error = json.loads(body)
    assert error["error"] == "AuthorizationError" and "token" in error["message"]
    assert response_headers["content-type"] == "application/json"
    assert TOKEN not in body.decode()


def test_non_ascii_token_is_refused(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Chroma-Token: caf\xc3\xa9\r\n"
                     b"Connection: close\r\n\r\n")
        response = _read_all(sock)
    assert response.startswith(b"HTTP/1.1 401 ")


def test_chroma_client_raises_authorization_error(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    with pytest.raises(AuthorizationError):
        client_for(gateway.port, "not-the-token").list_collections()
    with pytest.raises(AuthorizationError):
        client_for(gateway.port).list_collections()


def test_tokens_never_reach_logs_or_chroma(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    client_for(gateway.port, TOKEN).heartbeat()
    raw(gateway.port, "GET", "/api/v2/heartbeat", {"Authorization": "Bearer wrong-secret-value"})
    time.sleep(0.4)  # access logs are flushed a few times a second
    assert TOKEN not in gateway.log() and "wrong-secret-value" not in gateway.log()
    assert TOKEN not in chroma.log()


def test_access_log_has_one_emf_line_per_request(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url, environment="test")
    client = client_for(gateway.port, TOKEN)
    collection = client.get_or_create_collection("logged-collection")
    collection.add(ids=["a"], embeddings=[[0.1, 0.2]])
    collection.query(query_embeddings=[[0.1, 0.2]], n_results=1)
    raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Request-Id": "req-42"})  # 401
    time.sleep(0.4)
    lines = [json.loads(line) for line in gateway.log().splitlines() if line.startswith('{"_aws"')]
    operations = [line["Operation"] for line in lines]
    assert "query" in operations and "add" in operations and "collection_create" in operations
    query = next(line for line in lines if line["Operation"] == "query")
    assert query["route"] == "/api/v2/tenants/{tenant}/databases/{database}/collections/{collection}/query"
    assert query["status"] == 200 and query["Latency"] > 0 and query["bytes_in"] > 0 and query["bytes_out"] > 0
    directive = query["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["Environment", "Node", "Operation"], ["Environment", "Node"],
                                       ["Environment"]]
    assert query["Environment"] == "test" and query["Node"] == "primary"
    assert {m["Name"] for m in directive["Metrics"]} == {"Latency", "Requests", "Status4xx", "Status5xx",
                                                          "AuthFailures"}
    refused = next(line for line in lines if line["request_id"] == "req-42")
    assert refused["status"] == 401 and refused["AuthFailures"] == 1 and refused["Status4xx"] == 1
    assert refused["client"] == "127.0.0.1"  # the peer; behind the ALB, the first X-Forwarded-For entry
    assert "logged-collection" not in gateway.log()
    client.delete_collection("logged-collection")


def test_request_ids_are_added_or_propagated(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    _, headers, _ = raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN})
    assert uuid.UUID(headers["x-request-id"]).version == 4  # generated when the client sent none
    _, headers, _ = raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN, "X-Request-Id": "abc-1"})
    assert headers["x-request-id"] == "abc-1"
    _, headers, _ = raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN,
                                                                   "X-Request-Id": "bad id <script>"})
    assert uuid.UUID(headers["x-request-id"]).version == 4  # a malformed one is replaced, never echoed


def test_chroma_errors_and_status_codes_pass_through_unchanged(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    auth = {"X-Chroma-Token": TOKEN}
    for method, path, body in [("GET", "/api/v1/heartbeat", None),
                               ("GET", "/api/v2/tenants/default_tenant/databases/default_database/collections/"
                                       "00000000-0000-0000-0000-000000000000", None),
                               ("POST", "/api/v2/tenants/default_tenant/databases/default_database/collections",
                                b'{"name": "x"}'),
                               ("GET", "/api/v2/heartbeat?x=%20y&z=1", None)]:
        direct = raw(chroma.port, method, path, {"Content-Type": "application/json"}, body)
        through = raw(gateway.port, method, path, {"Content-Type": "application/json", **auth}, body)
        assert (through[0], through[2]) == (direct[0], direct[2]) or path.endswith("z=1")
        assert through[0] == direct[0]
        assert through[1].get("content-type") == direct[1].get("content-type")


def test_health_endpoints_need_no_token(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    assert raw(gateway.port, "GET", "/gateway/live")[0] == 200
    status, _, body = raw(gateway.port, "GET", "/gateway/ready")
    assert status == 200 and json.loads(body)["status"] == "ready"


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_token_file_rotation_takes_effect_without_restart(chroma: Server, start_gateway: GatewayFactory,
                                                          tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("old-token\n")
    gateway = start_gateway(chroma.url, token_file=str(tokens), token_refresh_seconds="0.1")
    assert raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": "old-token"})[0] == 200
    tokens.write_text("old-token\nnew-token\n")
    _wait_for(lambda: raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": "new-token"})[0] == 200)
    tokens.write_text("new-token\n")
    _wait_for(lambda: raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": "old-token"})[0] == 401)
    assert raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": "new-token"})[0] == 200
