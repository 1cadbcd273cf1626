"""HAProxy's access lines -> the EMF access log: every field, and lines for requests that were not HTTP."""

from __future__ import annotations

import io
import json
import socket
import time

from gateway.access_log import AccessLogReceiver, parse
from gateway.telemetry import AccessLog

QUERY = ("1700000000000000 1700000000004250 200 812 1234 req-1 ok 10.0.1.7 -- POST "
         "/api/v2/tenants/acme/databases/main/collections/3f2a/query")


def test_a_proxied_request_becomes_a_templated_record() -> None:
    record = parse(QUERY)
    assert record is not None
    assert (record.operation, record.route) == (
        "query", "/api/v2/tenants/{tenant}/databases/{database}/collections/{collection}/query")
    assert (record.status, record.latency_ms, record.bytes_in, record.bytes_out) == (200, 4.25, 812, 1234)
    assert (record.request_id, record.client, record.auth_failure, record.error) == ("req-1", "10.0.1.7", False, None)


def test_refusals_and_unparseable_requests_still_count() -> None:
    refused = parse("1700000000000000 1700000000000100 401 90 200 abc missing 127.0.0.1 PR GET /api/v2/heartbeat")
    assert refused is not None and refused.auth_failure and refused.error == "refused by the gateway"
    garbage = parse("- 1700000000000100 400 0 0 - - - PR <BADREQ> <BADREQ>")
    assert garbage is not None and (garbage.status, garbage.latency_ms, garbage.request_id) == (400, 0.0, "")
    assert garbage.operation == "other"
    assert parse("not an access line") is None


def test_receiver_writes_one_emf_line_per_access_line() -> None:
    out = io.StringIO()
    receiver = AccessLogReceiver(AccessLog("ChromaGateway", "test", stream=out))
    port = receiver.port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(QUERY.encode(), ("127.0.0.1", port))
        sender.sendto(b"junk\n", ("127.0.0.1", port))
    time.sleep(0.05)
    receiver.stop()  # drains what is waiting
    [line] = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["Operation"] == "query" and line["Latency"] == 4.25 and line["Requests"] == 1
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ChromaGateway" and receiver.malformed == 1
