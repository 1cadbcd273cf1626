"""The node takes the recovery points the backup job asks for in S3: real gateway and Chroma, moto as S3.

A request is answered once (a restarted gateway does not take it again), an expired or malformed one never pauses
writes, and the outcome (Chroma's version, the counts, the pause) is what the backup job reads back.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from gateway import settings as gw
from gateway import snapshot
from gateway.local import LOOPBACK, Server
from gateway.snapshot_protocol import parse_request, request_key, result_key
from gateway.tests.conftest import REQUESTS_BUCKET as BUCKET
from gateway.tests.conftest import GatewayFactory
from gateway.tests.test_proxy import _wait_for as wait_for

pytestmark = pytest.mark.servers

PREFIX = "nodes/primary"


def ask(s3: Any, snapshot_id: str, expires_in: float = 300) -> None:
    s3.put_object(Bucket=BUCKET, Key=request_key(PREFIX),
                  Body=json.dumps({"id": snapshot_id, "expires_at": time.time() + expires_in}).encode())


def outcome(s3: Any, snapshot_id: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=BUCKET, Key=result_key(PREFIX, snapshot_id))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return dict(json.loads(body))


def readiness(gateway: Server) -> dict[str, Any]:
    with urllib.request.urlopen(f"{gateway.url}{gw.READINESS_PATH}", timeout=5) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


@pytest.fixture
def node_gateway(chroma: Server, start_gateway: GatewayFactory, aws_env: dict[str, str],
                 tmp_path: Path) -> Callable[[], Server]:
    data = Path(chroma.log_path).parent / "data"  # the session Chroma's directory (gateway.local layout)
    points, start = tmp_path / "recovery-points", tmp_path / "node-start"
    points.mkdir(exist_ok=True)
    start.mkdir(exist_ok=True)
    (start / "writer-lock-held").touch()  # as the Chroma entrypoint announces it (Chroma already runs here)
    return lambda: start_gateway(chroma.url, snapshot_dir=str(points), snapshot_bucket=BUCKET,
                                 snapshot_prefix=PREFIX, snapshot_poll_seconds="0.2", chroma_version="1.5.9",
                                 node_data_dir=str(data),
                                 node_start_dir=str(start), **aws_env)


def test_a_requested_recovery_point_is_taken_once_and_reported(node_gateway: Callable[[], Server], s3: Any,
                                                               chroma: Server, tmp_path: Path) -> None:
    api = chromadb.HttpClient(host=LOOPBACK, port=chroma.port, settings=ChromaSettings(anonymized_telemetry=False))
    api.get_or_create_collection("requested").upsert(ids=["a", "b"], embeddings=[[1.0, 2.0], [2.0, 1.0]])
    gateway = node_gateway()
    ask(s3, "daily-1")
    wait_for(lambda: outcome(s3, "daily-1") is not None, timeout=30)
    result = outcome(s3, "daily-1")
    assert result is not None and result["status"] == "ok", result
    assert result["chroma_version"] == "1.5.9"
    assert result["collections"]["default_tenant/default_database/requested"] == 2
    assert result["pause_seconds"] < 5 and result["bytes"] > 0
    point = snapshot.read(tmp_path / "recovery-points" / "latest")
    assert point.snapshot_id == "daily-1" and point.collections == result["collections"]
    ready = readiness(gateway)
    assert ready["writes"] == "flowing" and ready["last_recovery_point"]["id"] == "daily-1"
    wait_for(lambda: '"SnapshotPauseSeconds"' in gateway.log(), timeout=10)
    # A restarted gateway finds the same request answered, and does not take it again.
    gateway.stop()
    again = node_gateway()
    time.sleep(1.5)
    assert "snapshot_taken" not in again.log()
    assert [p.name for p in (tmp_path / "recovery-points").iterdir()] == ["latest"]
    assert snapshot.read(tmp_path / "recovery-points" / "latest").snapshot_id == "daily-1"


def test_expired_and_malformed_requests_never_pause_writes(node_gateway: Callable[[], Server], s3: Any,
                                                           tmp_path: Path) -> None:
    gateway = node_gateway()
    ask(s3, "stale", expires_in=-1)
    wait_for(lambda: "snapshot_request_expired" in gateway.log(), timeout=10)
    s3.put_object(Bucket=BUCKET, Key=request_key(PREFIX), Body=b'{"id": "../etc", "expires_at": 1e12}')
    wait_for(lambda: "snapshot_request_invalid" in gateway.log(), timeout=10)
    assert outcome(s3, "stale") is None and not list((tmp_path / "recovery-points").iterdir())
    assert "snapshot_taken" not in gateway.log()


def test_a_recovery_point_that_cannot_be_written_fails_loudly(node_gateway: Callable[[], Server], s3: Any,
                                                              tmp_path: Path) -> None:
    (tmp_path / "recovery-points").rmdir()
    (tmp_path / "recovery-points").write_text("not a directory")
    gateway = node_gateway()
    ask(s3, "broken-1")
    wait_for(lambda: outcome(s3, "broken-1") is not None, timeout=30)
    result = outcome(s3, "broken-1")
    assert result is not None and result["status"] == "failed" and result["error"]
    assert "snapshot_failed" in gateway.log() and '"SnapshotFailed": 1' in gateway.log()
    assert readiness(gateway)["writes"] == "flowing"  # the pause ended with the failure


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not a snapshot request"),
    (b'{"id": "x"}', "not a snapshot request"),
    (b'{"id": "a b", "expires_at": 1}', "use 1-64 letters, digits and '-'"),
])
def test_malformed_requests_are_named(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_request(body)
