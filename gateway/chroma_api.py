"""Chroma's HTTP API on loopback, for the gateway's own calls (no token: the gateway is Chroma's only client)."""

from __future__ import annotations

import http.client
import json
from typing import Any


class ChromaError(RuntimeError):
    """Chroma answered with an error status; `status` is it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ChromaApi:
    """Chroma's HTTP API on loopback (no token: the gateway's own upstream)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self._host, self._port, self._timeout = host, port, timeout

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(method, "/api/v2" + path, body=payload,
                               headers={"Content-Type": "application/json"} if payload else {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise ChromaError(response.status, f"{method} {path}: {response.status} {data[:200]!r}")
        return json.loads(data)
