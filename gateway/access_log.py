"""The proxy's access lines (UDP on loopback) turned into the gateway's EMF access log.

HAProxy sends one raw line per request (`haproxy_config.ACCESS_LOG_FORMAT`); this classifies the path into a route
template and a Chroma operation (`gateway.operations`) and writes the same EMF record as before, so dashboards and
alarms keep their metrics. Sending is fire-and-forget for HAProxy: a slow log never slows a request (under extreme
load, lines may be dropped rather than queued; the ALB's own metrics still count every request).

The receiver drains the socket in batches a few times a second instead of waking per request: on a task whose
CPUs belong to Chroma, one wake-up per request cost about 5 % of query throughput (docs/gateway-benchmark.md).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

from gateway.operations import classify
from gateway.telemetry import AccessLog, AccessRecord

log = logging.getLogger("gateway.access")

# HAProxy's termination state (first two characters of %ts) -> what happened, for the few worth naming.
TERMINATIONS = {
    "SC": "chroma is not reachable", "sH": "upstream timeout", "SH": "chroma closed the connection",
    "SD": "chroma closed the connection mid-response", "cR": "client timeout (headers)",
    "cD": "client timeout", "CD": "client disconnected", "CH": "client disconnected", "CR": "client disconnected",
    "PR": "refused by the gateway", "PH": "invalid response from chroma",
}
_FIELDS = 11


def parse(line: str) -> AccessRecord | None:
    """One access line -> a record; None for a line that is not one (never raises on what a client sent)."""
    parts = line.rstrip("\n").split(" ", _FIELDS - 1)
    if len(parts) != _FIELDS:
        return None
    start_us, end_us, status, bytes_in, bytes_out, request_id, auth, client, termination, method, path = parts
    latency_ms = (int(end_us) - int(start_us)) / 1000 if start_us.isdigit() and end_us.isdigit() else 0.0
    route, operation = classify(method, path)
    return AccessRecord(
        request_id="" if request_id == "-" else request_id, method=method, route=route, operation=operation,
        status=int(status) if status.isdigit() else 0, latency_ms=max(latency_ms, 0.0),
        bytes_in=int(bytes_in) if bytes_in.isdigit() else 0, bytes_out=int(bytes_out) if bytes_out.isdigit() else 0,
        auth_failure=auth in ("missing", "invalid"), error=TERMINATIONS.get(termination[:2]),
        client="" if client == "-" else client)


# Drain every IDLE_SECONDS; every BUSY_SECONDS while batches are large, so the socket's buffer never overflows.
IDLE_SECONDS = 0.1
BUSY_SECONDS = 0.01
BUSY_BATCH = 64
RECEIVE_BUFFER_BYTES = 4 << 20  # the kernel caps it at net.core.rmem_max


class AccessLogReceiver:
    """Receives access lines on 127.0.0.1:`port` and writes them to `access_log`, in batches, on its own thread."""

    def __init__(self, access_log: AccessLog, port: int = 0) -> None:
        self.access_log = access_log
        self.malformed = 0
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        self._socket.bind(("127.0.0.1", port))
        self._socket.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def datagram_received(self, data: bytes) -> None:
        for line in data.decode("utf-8", "replace").splitlines():
            record = parse(line)
            if record is None:
                self.malformed += 1
                continue
            self.access_log.write(record)

    def drain(self) -> int:
        """Process every datagram waiting now; returns how many."""
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self.datagram_received(self._socket.recv(65536))
                count += 1
        self.access_log.flush()
        return count

    def _run(self) -> None:
        interval = IDLE_SECONDS
        while not self._stop.wait(interval):
            interval = BUSY_SECONDS if self.drain() >= BUSY_BATCH else IDLE_SECONDS

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.drain()
        self._socket.close()
