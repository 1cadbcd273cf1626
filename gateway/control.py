"""The control plane's HTTP endpoint on loopback: liveness and readiness, which HAProxy routes to without a token.

Only HAProxy talks to it (it listens on 127.0.0.1 and HAProxy has already parsed and limited the request), so it
reads one small request, answers with JSON and closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from gateway.settings import LIVENESS_PATH, READINESS_PATH

MAX_REQUEST_BYTES = 8_192
READ_TIMEOUT_SECONDS = 5.0
HEARTBEAT_PATH = "/api/v2/heartbeat"


async def http_status(host: str, port: int, path: str, timeout: float) -> int:
    """Status of GET `path` on host:port (Chroma's heartbeat); raises OSError or TimeoutError."""

    async def get() -> int:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            status_line = await reader.readline()
            return int(status_line.split()[1])
        except (IndexError, ValueError):
            raise OSError(f"not an HTTP answer: {status_line[:40]!r}") from None
        finally:
            writer.close()

    return await asyncio.wait_for(get(), timeout)


Probe = Callable[[], Awaitable[list[str]]]


class ControlServer:
    """`probe()` lists why the gateway is not ready (empty: ready); `details()` adds to the readiness answer what
    does not make the node unready (quarantined collections: the others still serve)."""

    def __init__(self, probe: Probe, token_refresh_failures: Callable[[], int],
                 details: Callable[[], dict[str, object]] = dict) -> None:
        self._probe = probe
        self._failures = token_refresh_failures
        self._details = details

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_SECONDS)
            path = head.split(b" ", 2)[1].split(b"?", 1)[0].decode("ascii", "replace") if b" " in head else ""
            status, body = await self.answer(path)
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n%s"
                         % (status, b"OK" if status == 200 else b"Service Unavailable", len(body), body))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def answer(self, path: str) -> tuple[int, bytes]:
        if path == LIVENESS_PATH:
            return 200, b'{"status": "alive"}'
        if path != READINESS_PATH:
            return 404, b'{"error": "NotFound", "message": "unknown control path"}'
        problems = await self._probe()
        body = {"status": "not ready" if problems else "ready", "problems": problems,
                "token_refresh_failures": self._failures(), **self._details()}
        return (503 if problems else 200), json.dumps(body).encode()

    async def start(self, port: int) -> asyncio.Server:
        return await asyncio.start_server(self.handle, "127.0.0.1", port, limit=MAX_REQUEST_BYTES)
