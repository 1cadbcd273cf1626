"""Hostile input against the real data path (HAProxy + the control plane) in front of a real Chroma server.

Every case asserts the exact answer, that an authenticated request is still served afterwards, that the token
never reaches a log, and that HAProxy's memory stays flat: resident memory may grow by at most `MEMORY_BOUND` over
the case (HAProxy's allocations are also capped by `-m`, `Settings.memory_limit_mib`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import floods
from gateway.floods import flood, proxy_pid, resident_bytes
from gateway.local import LOOPBACK, Server, chroma_server, free_port
from gateway.tests.conftest import TOKEN, GatewayFactory
from gateway.tests.test_proxy import raw

AUTH = b"X-Chroma-Token: " + TOKEN.encode() + b"\r\n"
MEMORY_BOUND = 16 << 20


def request(target: bytes = b"/api/v2/heartbeat", method: bytes = b"GET", headers: bytes = AUTH,
            body: bytes = b"") -> bytes:
    return floods.request(target, method, headers, body)


def beside(port: int) -> contextlib.AbstractContextManager[list[float]]:
    return floods.beside(port, TOKEN)


def send(port: int, data: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, read until the gateway closes the connection or goes quiet for `timeout`."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, OSError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response[9:12])


def json_error(response: bytes) -> str:
    return str(json.loads(response.split(b"\r\n\r\n", 1)[1])["error"])


@pytest.fixture
def gateway(chroma: Server, start_gateway: GatewayFactory) -> Iterator[Server]:
    server = start_gateway(chroma.url, header_timeout_seconds="0.5", upstream_timeout_seconds="3")
    pid = proxy_pid(server)
    before = resident_bytes(pid)
    yield server
    # After every case: still serving, no token logged, memory flat.
    assert raw(server.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN})[0] == 200
    assert TOKEN not in server.log()
    assert proxy_pid(server) == pid, "HAProxy was restarted during the case"
    growth = resident_bytes(pid) - before
    assert growth < MEMORY_BOUND, f"HAProxy grew by {growth >> 20} MiB"


@pytest.mark.parametrize("name,data", [
    ("two different Content-Length", request(method=b"POST", headers=AUTH + b"Content-Length: 1\r\n"
                                             b"Content-Length: 2\r\n", body=b"ab")),
    ("negative Content-Length", request(method=b"POST", headers=AUTH + b"Content-Length: -1\r\n")),
    ("bad chunk size", request(method=b"POST", headers=AUTH + b"Transfer-Encoding: chunked\r\n",
                               body=b"ZZ\r\nab\r\n0\r\n\r\n")),
    ("header without colon", request(headers=AUTH + b"Bad Header Line\r\n")),
    ("not HTTP", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    ("websocket upgrade without its key", request(headers=AUTH + b"Upgrade: websocket\r\nConnection: Upgrade\r\n")),
    ("absolute-form target for another host", request(target=b"http://169.254.169.254/latest/meta-data/")),
    ("headers over the buffer", request(headers=AUTH + b"X-Big: " + b"b" * 20_000 + b"\r\n")),
])
def test_malformed_framing_gets_one_400_and_a_closed_connection(gateway: Server, name: str, data: bytes) -> None:
    response = send(gateway.port, data)
    assert status_of(response) == 400, name
    assert response.count(b"HTTP/1.1 ") == 1, name


@pytest.mark.parametrize("name,data,status,error", [
    ("h2c upgrade with a token", request(headers=AUTH + b"Upgrade: h2c\r\nConnection: Upgrade\r\n"),
     400, "BadRequest"),
    ("absolute-form target", request(target=b"http://gateway/api/v2/heartbeat"), 400, "BadRequest"),
    ("CONNECT", b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n" + AUTH + b"\r\n", 405,
     "MethodNotAllowed"),
    ("long URL", request(target=b"/api/v2/heartbeat?q=" + b"a" * 9000), 414, "URITooLong"),
    ("body over the limit, announced", request(method=b"POST", headers=AUTH + b"Content-Length: 41943041\r\n"),
     413, "PayloadTooLarge"),
    ("token only in a chunked trailer", request(method=b"POST", target=b"/api/v2/tenants",
                                                headers=b"Transfer-Encoding: chunked\r\n",
                                                body=b"2\r\n{}\r\n0\r\n" + AUTH + b"\r\n"), 401, "AuthorizationError"),
    ("token with a bad scheme", request(headers=b"Authorization: Basic " + TOKEN.encode() + b"\r\n"), 401,
     "AuthorizationError"),
    ("Expect 100-continue without a token", request(method=b"POST", headers=b"Expect: 100-continue\r\n"
                                                    b"Content-Length: 5\r\n"), 401, "AuthorizationError"),
])
def test_refusals_are_exact_and_chroma_shaped(gateway: Server, name: str, data: bytes, status: int,
                                              error: str) -> None:
    response = send(gateway.port, data, timeout=1.0)
    assert status_of(response) == status, name
    assert json_error(response) == error, name
    assert response.count(b"HTTP/1.1 ") == 1 and b"100 Continue" not in response
    assert b"chroma-trace-id" not in response.lower()  # answered by the gateway: Chroma never saw it


@pytest.mark.parametrize("target", [
    b"/gateway/ready/../../api/v2/tenants/default_tenant", b"/gateway/ready%2F..%2F..%2Fapi%2Fv2%2Ftenants",
    b"//gateway/ready", b"/GATEWAY/READY", b"/gateway/live/", b"/gateway/./ready", b"/api/v2/../../gateway/ready",
])
def test_path_tricks_on_the_open_paths_need_a_token(gateway: Server, target: bytes) -> None:
    response = send(gateway.port, request(target=target, headers=b""), timeout=1.0)
    assert status_of(response) == 401 and json_error(response) == "AuthorizationError"


def test_open_paths_never_reach_chroma(gateway: Server) -> None:
    for target in (b"/gateway/ready?x=/../api/v2/reset", b"/gateway/live?../../api"):
        response = send(gateway.port, request(target=target, headers=b""), timeout=1.0)
        assert status_of(response) == 200 and b"chroma-trace-id" not in response.lower()


def test_request_id_injection_is_replaced(gateway: Server) -> None:
    for supplied in (b'"><script>', b"a" * 129, b"id with spaces", b"\xc3\xa9t\xc3\xa9"):
        response = send(gateway.port, request(headers=AUTH + b"X-Request-Id: " + supplied + b"\r\n"), timeout=1.0)
        request_id = next(line.split(b": ", 1)[1] for line in response.split(b"\r\n")
                          if line.lower().startswith(b"x-request-id:"))
        assert request_id != supplied and len(request_id) == 36


def test_smuggling_with_content_length_and_chunked_gets_one_answer(gateway: Server) -> None:
    smuggled = request(target=b"/api/v2/tenants/default_tenant", headers=b"")  # no token: must never run
    data = request(method=b"POST", target=b"/api/v2/tenants",
                   headers=AUTH + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", body=b"0\r\n\r\n" + smuggled)
    response = send(gateway.port, data, timeout=1.0)
    assert response.count(b"HTTP/1.1 ") == 1  # the chunked body ended at 0; the rest was not read as a request


def test_slow_headers_and_slow_bodies_get_408(gateway: Server) -> None:
    began = time.perf_counter()
    response = send(gateway.port, b"GET /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Chroma", timeout=5)
    assert status_of(response) == 408 and 0.4 < time.perf_counter() - began < 3
    # A body that fits the buffer is awaited by the gateway, within the same timeout: Chroma never sees it.
    began = time.perf_counter()
    response = send(gateway.port, request(method=b"POST", target=b"/api/v2/tenants",
                                          headers=AUTH + b"Content-Type: application/json\r\nContent-Length: 100\r\n",
                                          body=b'{"na'), timeout=5)
    assert status_of(response) == 408 and json_error(response) == "RequestTimeout"
    assert time.perf_counter() - began < 3


def test_a_large_body_that_stalls_is_bounded_by_the_upstream_timeout(gateway: Server) -> None:
    """Beyond the buffer the body streams to Chroma; if it stalls, the upstream timeout (3 s here) ends it."""
    began = time.perf_counter()
    response = send(gateway.port, request(method=b"POST", target=b"/api/v2/tenants",
                                          headers=AUTH + b"Content-Type: application/json\r\n"
                                                         b"Content-Length: 1000000\r\n", body=b"x" * 40_000),
                    timeout=10)
    assert status_of(response) == 504 and json_error(response) == "GatewayTimeout"
    assert time.perf_counter() - began < 6


def test_unterminated_huge_header_is_refused_early(gateway: Server) -> None:
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"GET /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        sent = 0
        with contextlib.suppress(OSError):
            while sent < 32 << 20:
                sock.sendall(b"h" * 65536)
                sent += 65536
        assert sent < 32 << 20  # the gateway closed long before 32 MiB
        with contextlib.suppress(OSError):
            assert status_of(sock.recv(65536)) == 400


def test_deep_pipelining_is_answered_in_order(gateway: Server) -> None:
    count = 200
    data = b"".join(request(headers=AUTH + b"X-Request-Id: r%d\r\n" % i) for i in range(count))
    with socket.create_connection((LOOPBACK, gateway.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while received.count(b"HTTP/1.1 200") < count:
            chunk = sock.recv(65536)
            assert chunk, f"closed after {received.count(b'HTTP/1.1 200')} answers"
            received += chunk
    ids = [line.split(b": ")[1] for line in received.split(b"\r\n") if line.lower().startswith(b"x-request-id:")]
    assert ids == [b"r%d" % i for i in range(count)]


@pytest.mark.parametrize("name", list(floods.floods()))
def test_floods_leave_an_authenticated_client_served(gateway: Server, name: str) -> None:
    """Pipelined floods with unread answers, unauthenticated 40 MiB bodies, unterminated headers, slowloris and
    idle connections: the client beside the flood never fails (memory is checked by the fixture)."""
    connections, make = floods.floods()[name]
    with beside(gateway.port) as latencies:
        flood(gateway.port, connections, make, seconds=2)
    assert latencies and all(latency >= 0 for latency in latencies), name


def test_slow_reader_of_a_large_answer_then_another_request(chroma: Server, gateway: Server) -> None:
    """The answer is read slowly, in small pieces; the next request on the same connection is answered at once."""
    collection = json.loads(raw(gateway.port, "POST", "/api/v2/tenants/default_tenant/databases/default_database/"
                                "collections", {"X-Chroma-Token": TOKEN, "Content-Type": "application/json"},
                                json.dumps({"name": "hostile-large", "get_or_create": True}).encode())[2])["id"]
    base = f"/api/v2/tenants/default_tenant/databases/default_database/collections/{collection}"
    records = {"ids": [f"r{i}" for i in range(400)], "embeddings": [[float(i)] * 64 for i in range(400)],
               "documents": ["d" * 2000] * 400}
    assert raw(gateway.port, "POST", f"{base}/upsert", {"X-Chroma-Token": TOKEN, "Content-Type": "application/json"},
               json.dumps(records).encode())[0] == 200
    get = json.dumps({"include": ["documents", "embeddings"]}).encode()
    big = request(method=b"POST", target=f"{base}/get".encode(),
                  headers=AUTH + b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(get), body=get)
    with socket.create_connection((LOOPBACK, gateway.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(big)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 800_000:
            received += sock.recv(8192)
            time.sleep(0.001)
        head, body = received.split(b"\r\n\r\n", 1)
        length = int(next(line.split(b": ")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        while len(body) < length:
            body += sock.recv(65536)
        sock.sendall(request())
        began = time.perf_counter()
        answer = sock.recv(65536)
        assert status_of(answer) == 200 and time.perf_counter() - began < 2
    raw(gateway.port, "DELETE", "/api/v2/tenants/default_tenant/databases/default_database/collections/"
        "hostile-large", {"X-Chroma-Token": TOKEN})


def test_chroma_killed_and_restarted_mid_test(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    port = free_port()
    data = tmp_path / "data"
    with chroma_server(data, port=port) as first:
        gateway = start_gateway(first.url)
        assert raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN})[0] == 200
        first.process.kill()  # kill -9, as an OOM kill would
        first.process.wait()
        began = time.perf_counter()
        status, headers, body = raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN})
        assert status == 503 and headers["retry-after"] == "1" and time.perf_counter() - began < 1
        assert json.loads(body)["error"] == "ServiceUnavailable"
    with chroma_server(data, port=port):
        # Retried at once: no health check marks Chroma down, so the first request after the restart succeeds.
        assert raw(gateway.port, "GET", "/api/v2/heartbeat", {"X-Chroma-Token": TOKEN})[0] == 200
    assert TOKEN not in gateway.log()


def test_proxy_runs_unprivileged(gateway: Server) -> None:
    uid = int(next(line for line in Path(f"/proc/{proxy_pid(gateway)}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])
    assert uid != 0 and (os.geteuid() != 0 or uid == 65534)
