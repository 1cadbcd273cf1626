"""A restore, end to end on loopback: real Chroma and gateway, moto as S3, the local file system as EFS.

A recovery point is taken the way the node takes them (the backup job's request in S3), more is written after it,
AWS Backup's item-level restore is stood in for by a copy under `aws-backup-restore_<time>/` (what AWS Backup
does), the swap runs as the one-off task runs it, and the node starts again on the restored directory: it serves
exactly the recorded collections and counts, with writes held until the gateway has verified that. A restore whose
data does not match what was recorded keeps writes held, says why in readiness and in S3, and a restart does not
release them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chromadb
import pytest
from chromadb.config import Settings as ChromaSettings

from gateway.local import LOOPBACK, Server, chroma_server
from gateway.restore_swap import Layout
from gateway.tests.conftest import REQUESTS_BUCKET as BUCKET
from gateway.tests.conftest import TOKEN, GatewayFactory
from gateway.tests.test_proxy import _wait_for as wait_for
from gateway.tests.test_snapshot_requests import PREFIX, ask, outcome, readiness

pytestmark = pytest.mark.servers

SNAPSHOT = "dev-20261126-030000"
RESTORE = "restore-dev-20261126-101500"


def client(port: int) -> chromadb.ClientAPI:
    return chromadb.HttpClient(host=LOOPBACK, port=port, headers={"Authorization": f"Bearer {TOKEN}"},
                               settings=ChromaSettings(anonymized_telemetry=False))


def vectors(prefix: str, count: int) -> tuple[list[str], list[list[float]]]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    return ids, [[float(i), float(i % 7), 1.0] for i in range(count)]


@contextlib.contextmanager
def node(root: Path, start_gateway: GatewayFactory, aws_env: dict[str, str]) -> Iterator[Server]:
    """Chroma on the node's directory and its gateway, set up as on the task (start check, recovery points)."""
    layout = Layout(root)
    start = root / f"node-start-{time.monotonic_ns()}"
    start.mkdir()
    (start / "writer-lock-held").touch()  # as the Chroma entrypoint announces it
    with chroma_server(layout.node_dir) as chroma:
        yield start_gateway(chroma.url, snapshot_dir=str(layout.pending.parent), snapshot_bucket=BUCKET,
                            snapshot_prefix=PREFIX, snapshot_poll_seconds="0.2", chroma_version="1.5.9",
                            node_data_dir=str(layout.node_dir), node_start_dir=str(start), **aws_env)


@pytest.fixture
def restored(tmp_path: Path, start_gateway: GatewayFactory, aws_env: dict[str, str], s3: Any) -> Path:
    """A file system whose node directory was just swapped for a recovery point taken before the last writes."""
    root = tmp_path / "efs"
    layout = Layout(root)
    layout.pending.parent.mkdir(parents=True)
    with node(root, start_gateway, aws_env) as gateway:
        api = client(gateway.port)
        api.create_collection("kept").add(*vectors("k", 50))
        api.create_collection("other").add(*vectors("o", 20))
        ask(s3, SNAPSHOT)
        wait_for(lambda: outcome(s3, SNAPSHOT) is not None, timeout=30)
        assert (outcome(s3, SNAPSHOT) or {})["status"] == "ok"
        api.get_collection("kept").add(*vectors("late", 10))  # after the recovery point: not restored
        api.create_collection("late").add(*vectors("l", 5))
    # AWS Backup's item-level restore into the same file system: the item's path under aws-backup-restore_<time>.
    item = "chroma/recovery-points/latest"
    shutil.copytree(root / item, root / "aws-backup-restore_2026-11-26T10-15-00-000Z" / item)
    swap = subprocess.run([sys.executable, "-m", "gateway.restore_swap", "--root", str(root), "--restore-id", RESTORE,
                           "--snapshot-id", SNAPSHOT, "--uid", str(os.getuid()), "--gid", str(os.getgid())],
                          capture_output=True, text=True, check=False, timeout=60)
    assert swap.returncode == 0, swap.stdout + swap.stderr
    return root


def logged(gateway: Server, event: str) -> Callable[[], bool]:
    return lambda: event in gateway.log()


def write_status(gateway: Server) -> int:
    """The status of one write through the gateway (raw HTTP: no client retry in the way)."""
    collection = client(gateway.port).get_collection("other")
    scope = "tenants/default_tenant/databases/default_database"
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{gateway.url}/api/v2/{scope}/collections/{collection.id}/upsert",
        data=json.dumps({"ids": ["probe"], "embeddings": [[0.5, 0.5, 0.5]]}).encode(), method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_the_node_serves_exactly_the_recovery_point_and_writes_flow_once_verified(
        restored: Path, start_gateway: GatewayFactory, aws_env: dict[str, str], s3: Any) -> None:
    layout = Layout(restored)
    with node(restored, start_gateway, aws_env) as gateway:
        wait_for(lambda: outcome(s3, RESTORE) is not None, timeout=60)
        verdict = outcome(s3, RESTORE)
        assert verdict is not None and verdict["status"] == "ok" and verdict["problems"] == [], verdict
        assert (verdict["collections"], verdict["records"]) == (2, 70)
        log = gateway.log()
        assert log.index('"restore_pending"') < log.index('"restore_verified"')  # held first, released after
        api = client(gateway.port)
        assert {c.name: c.count() for c in api.list_collections()} == {"kept": 50, "other": 20}
        assert "late-0" not in api.get_collection("kept").get(ids=["late-0"])["ids"]
        ready = readiness(gateway)
        assert ready["writes"] == "flowing" and ready["restore"]["ok"] is True
        assert write_status(gateway) == 200
    assert not layout.pending.exists() and (layout.pending.parent / f"{RESTORE}.verified.json").exists()
    assert (layout.aside(RESTORE) / "chroma.sqlite3").exists()  # the live directory, kept
    # A restart after a verified restore starts with writes flowing: nothing is checked again.
    with node(restored, start_gateway, aws_env) as again:
        assert readiness(again)["writes"] == "flowing" and write_status(again) == 200
        assert '"restore_pending"' not in again.log()


def test_a_restore_that_does_not_match_its_recording_keeps_writes_held_across_restarts(
        restored: Path, start_gateway: GatewayFactory, aws_env: dict[str, str], s3: Any) -> None:
    layout = Layout(restored)
    pending = json.loads(layout.pending.read_text())
    pending["collections"]["default_tenant/default_database/kept"] = 51  # one acknowledged record is not there
    layout.pending.write_text(json.dumps(pending))
    for attempt in range(2):
        with node(restored, start_gateway, aws_env) as gateway:
            wait_for(logged(gateway, '"restore_failed"'), timeout=60)
            assert write_status(gateway) == 503
            ready = readiness(gateway)
            assert ready["writes"] == "held: restore not verified" and ready["restore"]["ok"] is False
            assert ready["restore"]["problems"] == [
                "default_tenant/default_database/kept: 50 records, 51 recorded at backup time"]
            assert client(gateway.port).get_collection("kept").count() == 50  # reads still serve
        verdict = outcome(s3, RESTORE)
        assert verdict is not None and verdict["status"] == "failed", (attempt, verdict)
    assert layout.pending.exists() and (layout.pending.parent / f"{RESTORE}.failed.json").exists()
