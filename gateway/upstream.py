"""Keep-alive HTTP/1.1 connections to Chroma on loopback, parsed with httptools (llhttp).

The gateway hands a connection one serialized request and a `ResponseSink`; the connection feeds the sink the
status, headers and body chunks as they arrive, then returns itself to the pool if Chroma keeps it alive.
"""

from __future__ import annotations

import asyncio
from typing import Protocol, cast

import httptools

Headers = list[tuple[bytes, bytes]]


class ResponseSink(Protocol):
    def response_start(self, status: int, headers: Headers, chunked: bool, keep_alive: bool) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_end(self) -> None: ...

    def upstream_failed(self, reason: str, response_started: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.headers: Headers = []
        self.started = False
        self.head_only = False
        self.open = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes
        self.open = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail("invalid response from chroma")

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.pool.discard(self)
        self._fail("chroma closed the connection")

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.headers = []
        self.started = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.sink is None:
            return
        self.started = True
        chunked = any(n.lower() == b"transfer-encoding" and b"chunked" in v.lower() for n, v in self.headers)
        self.sink.response_start(self.parser.get_status_code(), self.headers, chunked,
                                 self.parser.should_keep_alive())
        if self.head_only:  # a HEAD response has no body, whatever its Content-Length says (and closes)
            self.on_message_complete()

    def on_body(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.response_body(data)

    def on_message_complete(self) -> None:
        sink, self.sink = self.sink, None
        if sink is None:
            return
        # Back to the pool first, so the sink may reuse this very connection for the client's next request.
        if self.parser.should_keep_alive() and not self.head_only:
            self.pool.release(self)
        else:
            self.close()
        sink.response_end()

    # used by the gateway
    def send(self, data: bytes, sink: ResponseSink, head_only: bool = False) -> None:
        assert self.transport is not None
        self.sink = sink
        self.head_only = head_only
        self.transport.write(data)

    def pause_reading(self) -> None:
        if self.transport is not None and self.open:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and self.open:
            self.transport.resume_reading()

    def abandon(self) -> None:
        """Stop caring about the in-flight response (timeout, client gone) and drop the connection."""
        self.sink = None
        self.close()

    def close(self) -> None:
        if self.transport is not None and self.open:
            self.open = False
            self.transport.close()

    def _fail(self, reason: str) -> None:
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_failed(reason, self.started)
        self.close()


class UpstreamPool:
    def __init__(self, host: str, port: int, connect_timeout: float = 2.0, max_idle: int = 128) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.idle: list[UpstreamConnection] = []
        self.closed = False

    def take_idle(self) -> UpstreamConnection | None:
        while self.idle:
            connection = self.idle.pop()
            if connection.open:
                return connection
        return None

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        _, protocol = await asyncio.wait_for(
            loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
            self.connect_timeout)
        return protocol

    def release(self, connection: UpstreamConnection) -> None:
        if self.closed or len(self.idle) >= self.max_idle or not connection.open:
            connection.close()
        else:
            self.idle.append(connection)

    def discard(self, connection: UpstreamConnection) -> None:
        if connection in self.idle:
            self.idle.remove(connection)

    def close(self) -> None:
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class _Collect:
    """A sink that gathers a whole (small) response, for the gateway's own calls such as the heartbeat."""

    def __init__(self) -> None:
        self.done: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.body: list[bytes] = []

    def response_start(self, status: int, headers: Headers, chunked: bool, keep_alive: bool) -> None:
        self.status = status

    def response_body(self, data: bytes) -> None:
        self.body.append(data)

    def response_end(self) -> None:
        if not self.done.done():
            self.done.set_result((self.status, b"".join(self.body)))

    def upstream_failed(self, reason: str, response_started: bool) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(reason))


async def fetch(pool: UpstreamPool, method: str, path: str, timeout: float) -> tuple[int, bytes]:
    """One small request of the gateway's own (no body), through the pool."""
    connection = pool.take_idle() or await pool.connect()
    sink = _Collect()
    connection.send(f"{method} {path} HTTP/1.1\r\nHost: {pool.host}:{pool.port}\r\nContent-Length: 0\r\n\r\n"
                    .encode("ascii"), sink)
    try:
        return await asyncio.wait_for(sink.done, timeout)
    except TimeoutError:
        connection.abandon()
        raise
