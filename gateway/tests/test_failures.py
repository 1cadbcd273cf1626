"""Failure handling: Chroma down and back, bad and hostile input, timeouts, draining on SIGTERM."""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.local import LOOPBACK, Server, chroma_server, free_port
from gateway.tests.conftest import TOKEN, GatewayFactory
from gateway.tests.test_proxy import _read_all, raw

AUTH = {"X-Chroma-Token": TOKEN}


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the gateway closes the connection."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(data)
        return _read_all(sock)


def still_serves(gateway: Server) -> bool:
    return raw(gateway.port, "GET", "/api/v2/heartbeat", AUTH)[0] == 200


def test_chroma_down_gives_a_quick_503_and_recovery_is_automatic(tmp_path: Path,
                                                                   start_gateway: GatewayFactory) -> None:
    port = free_port()
    data = tmp_path / "data"
    with chroma_server(data, port=port) as chroma:
        gateway = start_gateway(chroma.url)
        assert still_serves(gateway)
    # Chroma stopped: refused at once, with a retry hint; readiness fails so the ALB stops routing.
    began = time.perf_counter()
    status, headers, body = raw(gateway.port, "GET", "/api/v2/heartbeat", AUTH)
    assert status == 503 and time.perf_counter() - began < 1.0
    assert headers["retry-after"] == "1" and json.loads(body)["error"] == "ServiceUnavailable"
    ready_status, _, ready_body = raw(gateway.port, "GET", "/gateway/ready")
    assert ready_status == 503 and "chroma heartbeat failed" in json.loads(ready_body)["problems"][0]
    assert raw(gateway.port, "GET", "/gateway/live")[0] == 200
    with chroma_server(data, port=port):
        assert still_serves(gateway)
        assert raw(gateway.port, "GET", "/gateway/ready")[0] == 200


def test_malformed_requests_get_400_and_the_gateway_keeps_serving(chroma: Server,
                                                                   start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    for garbage in (b"NOT HTTP AT ALL\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
                    b"GET /api/v2/heartbeat HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"\x16\x03\x01\x02\x00"):
        response = exchange(gateway.port, garbage)  # returns when the gateway closes the connection
        # HAProxy's own answer to bytes that are not HTTP: status 400 and a closed connection (its body is HTML:
        # accepted, see README; every refusal of a well-formed request is Chroma-shaped JSON).
        assert response.startswith(b"HTTP/1.1 400 "), response
    assert still_serves(gateway)


def test_body_over_the_limit_gets_413_from_the_headers(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url, max_body_bytes="1000")
    status, _, body = raw(gateway.port, "POST", "/api/v2/heartbeat", AUTH, b"x" * 1001)
    assert status == 413 and json.loads(body)["error"] == "PayloadTooLarge"
    # Answered from the headers: the body is never sent, and never waited for.
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Chroma-Token: " + TOKEN.encode() +
                     b"\r\nContent-Length: 41943041\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 413 ")
    assert still_serves(gateway)


def test_oversized_headers_get_400_and_long_urls_414(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    # Request line and headers must fit HAProxy's 16 KiB buffer; beyond, HAProxy answers 400 (not 431: accepted).
    status, _, _ = raw(gateway.port, "GET", "/api/v2/heartbeat", {**AUTH, "X-Big": "b" * 20_000})
    assert status == 400
    status, _, _ = raw(gateway.port, "GET", "/api/v2/heartbeat?q=" + "a" * 9000, AUTH)
    assert status == 414
    assert still_serves(gateway)


def test_truncated_body_and_vanishing_client_do_not_hurt(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Chroma-Token: " + TOKEN.encode() +
                     b"\r\nContent-Length: 100\r\n\r\n0123456789")
    assert still_serves(gateway)


def test_slow_client_gets_408(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url, header_timeout_seconds="0.5")
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/heartbeat HTTP/1.1\r\nHost: x\r\nX-Chroma-To")  # headers never finish
        began = time.perf_counter()
        response = _read_all(sock)
    assert response.startswith(b"HTTP/1.1 408 ") and 0.4 < time.perf_counter() - began < 3
    assert still_serves(gateway)


def test_expect_continue_is_honoured(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/tenants HTTP/1.1\r\nHost: x\r\nX-Chroma-Token: " + TOKEN.encode() +
                     b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 ")
    # Without a token: refused at the headers, and never told to send its body.
    with socket.create_connection((LOOPBACK, gateway.port), timeout=5) as sock:
        sock.sendall(b"POST /api/v2/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 401 ")


class SlowUpstream:
    """A stand-in for a Chroma that is slow to answer, for the timeout and drain behaviours of the gateway."""

    def __init__(self, delay: float) -> None:
        delay_seconds = delay

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/api/v2/broken":  # promises a body, sends none, hangs up
                    self.send_response(200)
                    self.send_header("Content-Length", "100")
                    self.end_headers()
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if self.path == "/api/v2/big":  # a body that takes longer to stream than the upstream timeout
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 * 1000))
                    self.end_headers()
                    for _ in range(10):
                        self.wfile.write(b"x" * 1000)
                        self.wfile.flush()
                        time.sleep(0.1)
                    return
                if self.path != "/api/v2/heartbeat":
                    time.sleep(delay_seconds)
                body = b'{"slow": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def slow_upstream() -> Iterator[SlowUpstream]:
    upstream = SlowUpstream(delay=1.5)
    upstream.thread.start()
    yield upstream
    upstream.server.shutdown()
    upstream.server.server_close()


def test_upstream_timeout_gives_504(slow_upstream: SlowUpstream, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(slow_upstream.url, upstream_timeout_seconds="0.3")
    began = time.perf_counter()
    status, _, body = raw(gateway.port, "GET", "/api/v2/slow", AUTH)
    assert status == 504 and json.loads(body)["error"] == "GatewayTimeout"
    assert time.perf_counter() - began < 1.5  # before the slow upstream (1.5 s) would have answered


def test_broken_upstream_response_is_cut_and_logged(slow_upstream: SlowUpstream,
                                                   start_gateway: GatewayFactory) -> None:
    """Headers already streamed to the client cannot become a 502: the client sees the response end early (HAProxy's
    behaviour, accepted), the access log names it, and the next request is served."""
    gateway = start_gateway(slow_upstream.url)
    with pytest.raises(http.client.IncompleteRead):
        raw(gateway.port, "GET", "/api/v2/broken", AUTH)
    assert raw(gateway.port, "GET", "/api/v2/heartbeat", AUTH)[0] == 200
    time.sleep(0.5)  # the access log is flushed a few times a second
    assert '"error":"chroma closed the connection mid-response"' in gateway.log()


def test_upstream_timeout_bounds_the_answer_not_the_streaming(slow_upstream: SlowUpstream,
                                                               start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(slow_upstream.url, upstream_timeout_seconds="0.3")
    status, _, body = raw(gateway.port, "GET", "/api/v2/big", AUTH)  # streams for ~1 s, headers at once
    assert status == 200 and body == b"x" * 10_000


def test_sigterm_drains_in_flight_requests_then_exits(slow_upstream: SlowUpstream,
                                                       start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(slow_upstream.url, drain_seconds="5")
    results: list[int] = []

    def slow_request() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=10)
        conn.request("GET", "/api/v2/slow", headers=AUTH)
        results.append(conn.getresponse().status)

    in_flight = threading.Thread(target=slow_request)
    in_flight.start()
    time.sleep(0.3)
    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):  # no longer accepting
        socket.create_connection((LOOPBACK, gateway.port), timeout=1).close()
    in_flight.join()
    assert results == [200]
    assert gateway.process.wait(5) == 0
    assert '"event": "draining"' in gateway.log()
