"""One JSON line per request: the access log and, in CloudWatch Embedded Metric Format, the metrics.

CloudWatch Logs extracts the `_aws` block into metrics (latency, requests, 4xx, 5xx, auth failures) per Environment
and Operation, and per Environment alone, so dashboards can plot p50/p95/p99 per operation and alarms can watch
totals. Tokens never appear here.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

METRICS = (
    {"Name": "Latency", "Unit": "Milliseconds"},
    {"Name": "Requests", "Unit": "Count"},
    {"Name": "Status4xx", "Unit": "Count"},
    {"Name": "Status5xx", "Unit": "Count"},
    {"Name": "AuthFailures", "Unit": "Count"},
)
# The node's own state, published by the gateway every disk_metrics_seconds (gateway.node_start, integrity).
NODE_METRICS = {
    "QuarantinedCollections": "Count",
    "SqliteBytes": "Bytes",
    "IndexBytes": "Bytes",
    "LogRows": "Count",
    "SnapshotPauseSeconds": "Seconds",
    "SnapshotBytes": "Bytes",
    "SnapshotCopiedBytes": "Bytes",  # what changed since the last recovery point: what the pause copied
    "SnapshotFailed": "Count",
    "WritesHeld": "Count",  # 1 while a recovery point holds writes
}


@dataclass(frozen=True)
class AccessRecord:
    request_id: str
    method: str
    route: str
    operation: str
    status: int
    latency_ms: float
    bytes_in: int
    bytes_out: int
    auth_failure: bool = False
    error: str | None = None
    client: str = ""


class AccessLog:
    def __init__(self, namespace: str, environment: str, node: str = "primary", stream: IO[str] | None = None) -> None:
        self._environment_name = environment
        self._node_name = node
        self._environment = json.dumps(environment)  # pre-encoded for the hand-formatted access lines
        self._node = json.dumps(node)
        self._stream = stream or sys.stdout
        self._buffer: list[str] = []
        self._namespace = namespace
        self._lock = threading.Lock()  # the access-log thread flushes; the control plane writes node metrics
        # Per node and operation (the latency alarms), per node (the error and auth alarms) and per environment
        # across its nodes (the dashboard's totals).
        self._directive = json.dumps([{"Namespace": namespace, "Dimensions": [["Environment", "Node", "Operation"],
                                                                              ["Environment", "Node"],
                                                                              ["Environment"]],
                                       "Metrics": list(METRICS)}], separators=(",", ":"))

    def write(self, record: AccessRecord) -> None:
        # Formatted by hand around the constant EMF directive: a third of json.dumps's cost, on every request.
        # Every interpolated string is either from a closed set (operation, route segments, HTTP token chars) or
        # JSON-encoded (error, request id).
        error = f',"error":{json.dumps(record.error)}' if record.error else ""
        latency = round(record.latency_ms, 3)
        self._buffer.append(
            f'{{"_aws":{{"Timestamp":{int(time.time() * 1000)},"CloudWatchMetrics":{self._directive}}},'
            f'"type":"access","Environment":{self._environment},"Node":{self._node},"Operation":"{record.operation}",'
            f'"request_id":{json.dumps(record.request_id)},"client":{json.dumps(record.client)},'
            f'"method":"{record.method}","route":"{record.route}",'
            f'"status":{record.status},"latency_ms":{latency},"bytes_in":{record.bytes_in},'
            f'"bytes_out":{record.bytes_out},"Latency":{latency},"Requests":1,'
            f'"Status4xx":{int(400 <= record.status < 500)},"Status5xx":{int(record.status >= 500)},'
            f'"AuthFailures":{int(record.auth_failure)}{error}}}')

    def flush(self) -> None:
        """Written in batches (gateway.access_log flushes after each drain and at shutdown): cheaper per request."""
        with self._lock:
            if self._buffer:
                lines, self._buffer = self._buffer, []
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()

    def node_metrics(self, values: Mapping[str, float]) -> None:
        """One EMF line with the node's metrics (names from NODE_METRICS), per node."""
        directive = [{"Namespace": self._namespace, "Dimensions": [["Environment", "Node"]],
                      "Metrics": [{"Name": name, "Unit": NODE_METRICS[name]} for name in values]}]
        line = json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directive},
                           "type": "node", "Environment": self._environment_name,
                           "Node": self._node_name, **values})
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class JsonFormatter(logging.Formatter):
    """Structured operational logs (start, stop, token refresh) on stderr, one JSON object per line."""

    _RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        line.update({k: v for k, v in record.__dict__.items() if k not in self._RESERVED})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
