"""HAProxy's runtime API (its admin socket): replace the token map atomically, without a reload.

A reload would close idle keep-alive connections that the load balancer may be about to reuse; a versioned map
update (`prepare map`, `add map @v`, `commit map @v`) swaps the whole set at once and touches no connection.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path

_VERSION = re.compile(r"New version created: (\d+)")


class RuntimeApiError(RuntimeError):
    """HAProxy refused a command or could not be reached; the message never holds a token (only digests)."""


def digest(token: str) -> str:
    """What the map holds, and what HAProxy computes from the request's token (`digest(sha256),hex,lower`)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class RuntimeApi:
    def __init__(self, socket_path: Path, timeout: float = 5.0) -> None:
        self._socket_path = socket_path
        self._timeout = timeout

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self._timeout)
            try:
                sock.connect(str(self._socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            except OSError as error:
                raise RuntimeApiError(f"HAProxy admin socket {self._socket_path}: {error}") from None
        return b"".join(chunks).decode(errors="replace").strip()

    def replace_map(self, map_file: Path, digests: Iterable[str]) -> None:
        """Make the map hold exactly `digests` (see `digest`), in one atomic commit."""
        self.replace_map_entries(map_file, dict.fromkeys(digests, "1"))

    def replace_map_entries(self, map_file: Path, entries: Mapping[str, str]) -> None:
        """Make the map hold exactly `entries` (key -> value, neither with spaces), in one atomic commit."""
        prepared = self.command(f"prepare map {map_file}")
        match = _VERSION.search(prepared)
        if not match:
            raise RuntimeApiError(f"prepare map {map_file}: {prepared!r}")
        version = match.group(1)
        for key, value in sorted(entries.items()):
            answer = self.command(f"add map @{version} {map_file} {key} {value}")
            if answer:
                raise RuntimeApiError(f"add map @{version} {map_file}: {answer!r}")
        answer = self.command(f"commit map @{version} {map_file}")
        if answer:
            raise RuntimeApiError(f"commit map @{version} {map_file}: {answer!r}")

    def sessions(self, backend: str) -> int:
        """Requests on `backend` now, in progress or queued (`show stat`: scur + qcur of its BACKEND row)."""
        lines = self.command("show stat").splitlines()
        if not lines or not lines[0].startswith("# "):
            raise RuntimeApiError(f"show stat: unexpected answer {lines[:1]!r}")
        header = lines[0][2:].split(",")
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == backend and row.get("svname") == "BACKEND":
                return int(row.get("scur") or 0) + int(row.get("qcur") or 0)
        raise RuntimeApiError(f"show stat: no backend {backend!r}")
