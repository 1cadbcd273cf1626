"""The gateway's HTTP/1.1 server: authenticate every request, stream it to Chroma on loopback, log and measure it.

Built on asyncio protocols and httptools (the llhttp parser uvicorn uses) rather than a framework, because it sits on
the hot path of every query on a 2-vCPU task: see docs/gateway-benchmark.md for what that buys.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast

import httptools

from gateway.operations import classify
from gateway.settings import LIVENESS_PATH, READINESS_PATH, Settings
from gateway.telemetry import AccessLog, AccessRecord
from gateway.tokens import TokenCache, is_well_formed
from gateway.upstream import Headers, UpstreamConnection, UpstreamPool, fetch

log = logging.getLogger("gateway")

# Total bytes of request line + headers the gateway accepts; beyond: 414 (long URL) or 431 (headers).
MAX_URL_BYTES = 8_192
MAX_HEADER_BYTES = 16_384
# Pipelined requests queued on one connection before the gateway stops reading from it.
MAX_QUEUED_REQUESTS = 8
HEARTBEAT_TIMEOUT_SECONDS = 2.0

_LIVE = LIVENESS_PATH.encode()
_READY = READINESS_PATH.encode()
# Hop-by-hop headers describe one connection, not the message. Credentials never travel past the gateway.
_HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
                         b"trailer", b"transfer-encoding", b"upgrade"})
_NOT_FORWARDED = _HOP_BY_HOP | {b"host", b"content-length", b"expect", b"authorization", b"x-chroma-token",
                                b"x-request-id"}
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
# Safe to resend when a pooled connection turned out to be closed before Chroma answered.
_RETRYABLE = frozenset({b"GET", b"HEAD", b"OPTIONS"})
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


class Rejected(Exception):
    """Raised inside parser callbacks to stop parsing a request the gateway refuses."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def extract_token(headers: Headers) -> str | None:
    """The token from `Authorization: Bearer <t>` or else `X-Chroma-Token: <t>`, as Chroma's clients send it."""
    fallback = None
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer":
                return token.strip().decode("latin-1")
        elif lowered == b"x-chroma-token":
            fallback = value.strip().decode("latin-1")
    return fallback


def json_body(error: str, message: str) -> bytes:
    """Errors shaped like Chroma's own ({"error": name, "message": text}), so its clients raise them cleanly."""
    return json.dumps({"error": error, "message": message}).encode()


@dataclass
class Request:
    started: float
    url: bytes = b""
    method: bytes = b""
    headers: Headers = field(default_factory=list)
    header_bytes: int = 0
    body: list[bytes] = field(default_factory=list)
    body_bytes: int = 0
    keep_alive: bool = True


class Gateway:
    """State shared by all connections: settings, tokens, the upstream pool, the access log."""

    def __init__(self, settings: Settings, tokens: TokenCache, access_log: AccessLog) -> None:
        self.settings = settings
        self.tokens = tokens
        self.access_log = access_log
        host, _, port = settings.upstream_url.removeprefix("http://").partition(":")
        self.pool = UpstreamPool(host, int(port or 80))
        self.host_header = f"Host: {host}:{port or 80}\r\n".encode()
        self.connections: set[ClientConnection] = set()
        self.draining = False

    async def readiness(self) -> tuple[int, bytes]:
        problems = []
        if self.draining:
            problems.append("draining")
        if not self.tokens.tokens.loaded:
            problems.append("tokens not loaded")
        try:
            status, _ = await fetch(self.pool, "GET", "/api/v2/heartbeat", HEARTBEAT_TIMEOUT_SECONDS)
            if status != 200:
                problems.append(f"chroma heartbeat returned {status}")
        except (OSError, TimeoutError):
            problems.append("chroma heartbeat failed: unreachable or timed out")
        body = {"status": "not ready" if problems else "ready", "problems": problems,
                "token_refresh_failures": self.tokens.consecutive_failures}
        return (503 if problems else 200), json.dumps(body).encode()


class Exchange:
    """One proxied request: sends it upstream and streams the response back to the client (a ResponseSink)."""

    def __init__(self, client: ClientConnection, request: Request, request_id: bytes, payload: bytes) -> None:
        self.client = client
        self.request = request
        self.request_id = request_id
        self.payload = payload
        self.upstream: UpstreamConnection | None = None
        self.started = False
        self.chunked = False
        self.close_after = False
        self.bytes_out = 0
        self.attempts = 0
        self.done = False
        self.status = 0
        self.head = b""
        self.timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        gateway = self.client.gateway
        self.timer = asyncio.get_running_loop().call_later(gateway.settings.upstream_timeout_seconds, self.timeout)
        connection = gateway.pool.take_idle()
        if connection is not None:
            self._send(connection)
        else:
            asyncio.get_running_loop().create_task(self._connect_and_send())

    async def _connect_and_send(self) -> None:
        try:
            connection = await self.client.gateway.pool.connect()
        except (OSError, TimeoutError):
            self._unavailable("chroma is not reachable")
            return
        if self.done:  # timed out or the client left while connecting
            connection.close()
            return
        self._send(connection)

    def _send(self, connection: UpstreamConnection) -> None:
        self.attempts += 1
        self.upstream = connection
        connection.send(self.payload, self, head_only=self.request.method == b"HEAD")

    # ResponseSink
    def response_start(self, status: int, headers: Headers, chunked: bool, keep_alive: bool) -> None:
        # The upstream timeout bounds the wait for Chroma's answer, not how long a large body takes to stream.
        self._cancel_timer()
        self.started = True
        out = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
        has_length = False
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP or lowered == b"x-request-id":
                continue
            has_length = has_length or lowered == b"content-length"
            out.append(b"%s: %s\r\n" % (name, value))
        self.chunked = chunked
        if chunked:
            out.append(b"Transfer-Encoding: chunked\r\n")
        elif not has_length and status >= 200 and status not in (204, 304) and self.request.method != b"HEAD":
            self.close_after = True  # a close-delimited body can only be relayed as one
        out.append(b"X-Request-Id: %s\r\n" % self.request_id)
        if self.close_after or not self.client.keep_alive_after(self.request):
            out.append(b"Connection: close\r\n")
        out.append(b"\r\n")
        # Held back to go out with the first body bytes: one write (one syscall) for a typical small response.
        self.head = b"".join(out)
        self.status = status

    def response_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        if self.chunked:
            data = b"%x\r\n%s\r\n" % (len(data), data)
        if self.head:
            data, self.head = self.head + data, b""
        self.client.write(data)

    def response_end(self) -> None:
        if self.done:
            return
        tail = b"0\r\n\r\n" if self.chunked else b""
        if self.head or tail:
            self.client.write(self.head + tail)
            self.head = b""
        self._finish(self.status, None, keep_alive=not self.close_after)

    def upstream_failed(self, reason: str, response_started: bool) -> None:
        if self.done:
            return
        if response_started and not self.head:
            # Part of the response is already on its way: the client can only learn of it by the connection closing.
            self._finish(502, reason, keep_alive=False)
            return
        if response_started:  # headers arrived but nothing reached the client yet: a clean error is still possible
            self._error(502, "BadGateway", "chroma closed the connection mid-response; retry", reason)
            return
        if self.attempts == 1 and self.request.method in _RETRYABLE:
            # Chroma closed a pooled keep-alive connection under us; an idempotent request is safe to resend once.
            asyncio.get_running_loop().create_task(self._connect_and_send())
            return
        self._unavailable(reason)

    def timeout(self) -> None:
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.abandon()
        if self.started:
            self._finish(504, "upstream timeout mid-response", keep_alive=False)
            return
        seconds = self.client.gateway.settings.upstream_timeout_seconds
        self._error(504, "GatewayTimeout", f"chroma did not answer within {seconds:g} s", "upstream timeout")

    def client_gone(self) -> None:
        if self.done:
            return
        if self.upstream is not None:
            self.upstream.abandon()
        self._finish(499, "client disconnected", keep_alive=False)

    def pause(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def _unavailable(self, why: str) -> None:
        self._error(503, "ServiceUnavailable", f"{why}; retry shortly", why, retry_after=True)

    def _error(self, status: int, error: str, message: str, why: str, retry_after: bool = False) -> None:
        if self.done:
            return
        self.done = True
        self._cancel_timer()
        self.client.respond(self.request, status, json_body(error, message), self.request_id,
                            error=why, retry_after=retry_after)

    def _finish(self, status: int, error: str | None, keep_alive: bool) -> None:
        if self.done:
            return
        self.done = True
        self._cancel_timer()
        self.client.finished(self.request, status, self.request_id, self.bytes_out, error, keep_alive)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class ClientConnection(asyncio.Protocol):
    """One client (load balancer) connection. Requests on it are answered in order, one at a time."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.current: Request | None = None
        self.queue: deque[Request] = deque()
        self.active: Exchange | Request | None = None
        self.rejection: Rejected | None = None
        self.read_timer: asyncio.TimerHandle | None = None
        self.idle_timer: asyncio.TimerHandle | None = None
        self.closed = False

    # asyncio.Protocol -------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.gateway.connections.add(self)
        self._arm_idle_timer()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(Rejected(400, "BadRequest", "protocol upgrades are not supported"))
        except httptools.HttpParserCallbackError:
            self._reject(self.rejection or Rejected(500, "InternalError", "gateway error"))
        except httptools.HttpParserError:
            self._reject(Rejected(400, "BadRequest", "malformed HTTP request"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.gateway.connections.discard(self)
        self._cancel(self.read_timer)
        self._cancel(self.idle_timer)
        if isinstance(self.active, Exchange):
            self.active.client_gone()

    def pause_writing(self) -> None:
        if isinstance(self.active, Exchange):
            self.active.pause()

    def resume_writing(self) -> None:
        if isinstance(self.active, Exchange):
            self.active.resume()

    # httptools callbacks ----------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._cancel(self.idle_timer)
        self.current = Request(started=time.perf_counter())
        self.read_timer = asyncio.get_running_loop().call_later(
            self.gateway.settings.client_timeout_seconds, self._read_timeout)

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url
        if len(self.current.url) > MAX_URL_BYTES:
            self._stop(Rejected(414, "URITooLong", f"request target exceeds {MAX_URL_BYTES} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name, value))
        self.current.header_bytes += len(name) + len(value) + 4
        if self.current.header_bytes > MAX_HEADER_BYTES:
            self._stop(Rejected(431, "RequestHeaderFieldsTooLarge",
                                f"request headers exceed {MAX_HEADER_BYTES} bytes"))

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None and self.transport is not None
        request.method = self.parser.get_method()
        limit = self.gateway.settings.max_body_bytes
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"content-length" and value.strip().isdigit() and int(value) > limit:
                self._stop(Rejected(413, "PayloadTooLarge", f"request body exceeds {limit} bytes"))
            elif lowered == b"expect" and value.strip().lower() == b"100-continue":
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, data: bytes) -> None:
        request = self.current
        assert request is not None
        request.body_bytes += len(data)
        if request.body_bytes > self.gateway.settings.max_body_bytes:
            self._stop(Rejected(413, "PayloadTooLarge",
                                f"request body exceeds {self.gateway.settings.max_body_bytes} bytes"))
        request.body.append(data)

    def on_message_complete(self) -> None:
        self._cancel(self.read_timer)
        request, self.current = self.current, None
        assert request is not None and self.transport is not None
        request.keep_alive = self.parser.should_keep_alive()
        self.queue.append(request)
        if len(self.queue) > MAX_QUEUED_REQUESTS:
            self.transport.pause_reading()
        self._next()

    # request handling -------------------------------------------------------------------------------------------

    def _next(self) -> None:
        while self.active is None and self.queue and not self.closed:
            self._handle(self.queue.popleft())
        if self.active is None and not self.queue and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            if self.gateway.draining:
                self.close()
            else:
                self._arm_idle_timer()

    def _handle(self, request: Request) -> None:
        path = request.url.partition(b"?")[0]
        if path == _LIVE:
            self.respond(request, 200, b'{"status": "live"}', None)
            return
        if path == _READY:
            self.active = request
            asyncio.get_running_loop().create_task(self._ready(request))
            return
        supplied = next((v for n, v in request.headers if n.lower() == b"x-request-id"), b"")
        request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex.encode()
        token = extract_token(request.headers)
        if not token or not is_well_formed(token) or not self.gateway.tokens.accepts(token):
            reason = "missing" if not token else "invalid"
            self.respond(request, 401, json_body(
                "AuthorizationError",
                f"{reason} token: send 'Authorization: Bearer <token>' or 'X-Chroma-Token: <token>'"),
                request_id, auth_failure=True)
            return
        if not request.url.startswith(b"/"):
            self.respond(request, 400, json_body("BadRequest", "request target must be a path"), request_id)
            return
        body = b"".join(request.body)
        head = [b"%s %s HTTP/1.1\r\n" % (request.method, request.url), self.gateway.host_header]
        head += [b"%s: %s\r\n" % (n, v) for n, v in request.headers if n.lower() not in _NOT_FORWARDED]
        head.append(b"Content-Length: %d\r\nX-Request-Id: %s\r\n\r\n" % (len(body), request_id))
        exchange = Exchange(self, request, request_id, b"".join(head) + body)
        self.active = exchange
        exchange.start()

    async def _ready(self, request: Request) -> None:
        status, body = await self.gateway.readiness()
        if not self.closed:
            self.respond(request, status, body, None)

    def keep_alive_after(self, request: Request) -> bool:
        return request.keep_alive and not self.gateway.draining

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def respond(self, request: Request, status: int, body: bytes, request_id: bytes | None, *,
                auth_failure: bool = False, error: str | None = None, retry_after: bool = False) -> None:
        """A complete response of the gateway's own (errors, health)."""
        keep_alive = self.keep_alive_after(request)
        head = [b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                % (status, _REASONS.get(status, b"Unknown"), len(body))]
        if request_id is not None:
            head.append(b"X-Request-Id: %s\r\n" % request_id)
        if retry_after:
            head.append(b"Retry-After: 1\r\n")
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        self.write(b"".join(head) + b"\r\n" + body)
        if request_id is None:  # health checks are not access-logged: every 10 s per checker is noise
            self._done(keep_alive)
        else:
            self.finished(request, status, request_id, len(body), error, keep_alive, auth_failure)

    def finished(self, request: Request, status: int, request_id: bytes, bytes_out: int, error: str | None,
                 keep_alive: bool, auth_failure: bool = False) -> None:
        path = request.url.partition(b"?")[0].decode("latin-1")
        route, operation = classify(request.method.decode("latin-1"), path)
        self.gateway.access_log.write(AccessRecord(
            request_id=request_id.decode("ascii"), method=request.method.decode("latin-1"), route=route,
            operation=operation, status=status, latency_ms=(time.perf_counter() - request.started) * 1000,
            bytes_in=request.body_bytes, bytes_out=bytes_out, auth_failure=auth_failure, error=error,
            client=self._client_address(request)))
        self._done(keep_alive and self.keep_alive_after(request))

    def _client_address(self, request: Request) -> str:
        """The original client (first X-Forwarded-For entry, as the ALB sets it), else the peer."""
        forwarded = next((v for n, v in request.headers if n.lower() == b"x-forwarded-for"), None)
        if forwarded:
            return forwarded.split(b",")[0].strip().decode("latin-1")[:64]
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        return str(peer[0]) if peer else ""

    def _done(self, keep_alive: bool) -> None:
        self.active = None
        if not keep_alive:
            self.close()
            return
        self._next()

    # failures and timeouts --------------------------------------------------------------------------------------

    def _stop(self, rejection: Rejected) -> None:
        self.rejection = rejection
        raise rejection

    def _reject(self, rejection: Rejected) -> None:
        """A request the gateway refuses before it is complete: answer (if nothing else is mid-answer), close."""
        self._cancel(self.read_timer)
        request, self.current = self.current, None
        if self.active is None:
            request = request or Request(started=time.perf_counter())
            request.keep_alive = False
            self.respond(request, rejection.status, json_body(rejection.error, rejection.message),
                         uuid.uuid4().hex.encode(), error=rejection.message)
        else:
            self.close()

    def _read_timeout(self) -> None:
        seconds = self.gateway.settings.client_timeout_seconds
        self._reject(Rejected(408, "RequestTimeout", f"request not received within {seconds:g} s"))

    def _arm_idle_timer(self) -> None:
        self._cancel(self.idle_timer)
        self.idle_timer = asyncio.get_running_loop().call_later(self.gateway.settings.keepalive_seconds,
                                                                self.close)

    def close_when_idle(self) -> None:
        if self.active is None and not self.queue and self.current is None:
            self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    @staticmethod
    def _cancel(handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()


async def serve(gateway: Gateway, ready: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then drain: stop accepting, finish in-flight requests, close."""
    settings = gateway.settings
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(gateway.tokens.refresh)  # before serving; on failure readiness says so
    server = await loop.create_server(lambda: ClientConnection(gateway), settings.listen_address, settings.port,
                                      reuse_address=True, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background = [asyncio.create_task(_refresh_tokens(gateway.tokens, settings.token_refresh_seconds)),
                  asyncio.create_task(_flush_logs(gateway.access_log))]
    log.info("gateway serving", extra={"event": "serving", "port": settings.port})
    if ready is not None:
        ready.set()
    await stop.wait()

    log.info("draining", extra={"event": "draining", "connections": len(gateway.connections)})
    gateway.draining = True
    server.close()
    for connection in list(gateway.connections):
        connection.close_when_idle()
    deadline = loop.time() + settings.drain_seconds
    while gateway.connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
    for connection in list(gateway.connections):
        connection.close()
    for task in background:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    gateway.pool.close()
    gateway.access_log.flush()


async def _refresh_tokens(tokens: TokenCache, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(tokens.refresh)


async def _flush_logs(access_log: AccessLog, interval: float = 0.25) -> None:
    while True:
        await asyncio.sleep(interval)
        access_log.flush()
