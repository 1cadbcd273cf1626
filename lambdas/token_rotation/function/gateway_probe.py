"""Calls Chroma through the load balancer and the gateway with a given token, as a client would."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass

# An authenticated call every Chroma server answers, with no side effects.
PROBE_PATH = "/api/v2/tenants/default_tenant"


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS to `host` (the load balancer's DNS name), verifying the certificate for `server_name` (the domain)."""

    def __init__(self, host: str, port: int, server_name: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._server_name)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class GatewayProbe:
    host: str
    port: int
    tls_server_name: str | None = None  # None: plain HTTP (an environment without TLS)
    timeout: float = 10.0

    def status_with(self, token: str) -> int:
        """HTTP status of an authenticated Chroma call made with `token`. Raises OSError if unreachable."""
        connection: http.client.HTTPConnection
        if self.tls_server_name:
            connection = _TlsConnection(self.host, self.port, self.tls_server_name, self.timeout)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request("GET", PROBE_PATH, headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            response.read()
            return int(response.status)
        finally:
            connection.close()
