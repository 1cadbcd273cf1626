"""The proxy's access lines (UDP on loopback) turned into the gateway's EMF access log.

HAProxy sends one raw line per request (`haproxy_config.ACCESS_LOG_FORMAT`); this classifies the path into a route
template and a Chroma operation (`gateway.operations`) and writes the same EMF record as before, so dashboards and
alarms keep their metrics. Sending is fire-and-forget for HAProxy: a slow log never slows a request (under extreme
load, lines may be dropped rather than queued; the ALB's own metrics still count every request).
"""

from __future__ import annotations

import asyncio
import logging

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


class AccessLogReceiver(asyncio.DatagramProtocol):
    def __init__(self, access_log: AccessLog) -> None:
        self.access_log = access_log
        self.malformed = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        for line in data.decode("utf-8", "replace").splitlines():
            record = parse(line)
            if record is None:
                self.malformed += 1
                continue
            self.access_log.write(record)
