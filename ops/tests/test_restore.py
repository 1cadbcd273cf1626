"""chroma-ops restore, every step, against real processes: Chroma and the gateway on loopback (the node), the
restore swap as a process (the one-off task), moto as S3 (the verdict), and the local file system as EFS and as
AWS Backup's vault (a copy of the file system at backup time). Only the AWS calls themselves are stood in for:
their requests are checked in test_restore_aws.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.restore_swap import Layout, arguments
from gateway.tests.conftest import GatewayFactory
from gateway.tests.test_proxy import _wait_for as wait_for
from gateway.tests.test_restore_drill import client, node, vectors, write_status
from gateway.tests.test_snapshot_requests import ask, outcome
from ops import restore
from ops.errors import OpsError
from ops.recovery_points import RecoveryPoint

pytestmark = pytest.mark.servers

SNAPSHOT = "dev-20261126-030000"
ARN = "arn:aws:backup:us-east-1:111122223333:recovery-point:local-1"
NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)


class LocalNode:
    """restore.Node on loopback: the node's processes, the swap process, S3 in moto, a vault on disk."""

    def __init__(self, root: Path, vault: Path, point: RecoveryPoint, start_gateway: GatewayFactory,
                 aws_env: dict[str, str], s3: Any) -> None:
        self.root, self.vault, self.point = root, vault, point
        self._start_gateway, self._aws_env, self._s3 = start_gateway, aws_env, s3
        self.running: contextlib.ExitStack | None = None
        self.gateway: Any = None

    def recovery_points(self) -> list[RecoveryPoint]:
        return [self.point]

    def start(self) -> str:
        self.running = contextlib.ExitStack()
        self.gateway = self.running.enter_context(node(self.root, self._start_gateway, self._aws_env))
        return "started"

    def stop(self) -> str:
        if self.running:
            self.running.close()
        self.running, self.gateway = None, None
        return "stopped"

    def restore_copy(self, point: RecoveryPoint, restore_id: str) -> str:
        item = "chroma/recovery-points/latest"  # AWS Backup: the item's path, under a new folder
        if point.arn not in self.vault.name:
            raise OpsError(f"restore job FAILED: no recovery point {point.arn} in the vault")
        shutil.copytree(self.vault / item, self.root / f"aws-backup-restore_{restore_id}" / item)
        return "copied"

    def swap(self, point: RecoveryPoint | None, restore_id: str, undo: bool = False) -> str:
        if point is None or undo:
            return self._task(arguments(Layout(self.root), restore_id, os.getuid(), os.getgid()))
        return self._task(arguments(Layout(self.root), restore_id, os.getuid(), os.getgid(), str(point.snapshot_id),
                                    point.arn))

    def discard(self, restore_id: str) -> str:
        return self._task(arguments(Layout(self.root), restore_id, os.getuid(), os.getgid(), action="--discard"))

    @staticmethod
    def _task(args: list[str]) -> str:
        """The restore task, as a process: the same module and arguments."""
        done = subprocess.run([sys.executable, "-m", "gateway.restore_swap", *args], capture_output=True, text=True,
                              check=False, timeout=60)
        if done.returncode:
            raise OpsError(f"the restore task exited {done.returncode}: {done.stdout}")
        return str(json.loads(done.stdout))

    def verdict(self, restore_id: str) -> dict[str, Any]:
        wait_for(lambda: outcome(self._s3, restore_id) is not None, timeout=60)
        return outcome(self._s3, restore_id) or {}


@pytest.fixture
def environment(tmp_path: Path, start_gateway: GatewayFactory, aws_env: dict[str, str], s3: Any) -> LocalNode:
    """A running node with a recovery point in the vault, and writes made after it."""
    root, vault = tmp_path / "efs", tmp_path / f"vault-{ARN}"
    Layout(root).pending.parent.mkdir(parents=True)
    point = RecoveryPoint(ARN, NOW, SNAPSHOT, "1.5.9", 2, 70)
    local = LocalNode(root, vault, point, start_gateway, aws_env, s3)
    local.start()
    api = client(local.gateway.port)
    api.create_collection("kept").add(*vectors("k", 50))
    api.create_collection("other").add(*vectors("o", 20))
    ask(s3, SNAPSHOT)
    wait_for(lambda: outcome(s3, SNAPSHOT) is not None, timeout=30)
    shutil.copytree(root, vault, ignore=shutil.ignore_patterns("*.log", "*.yaml"))  # AWS Backup keeps the FS
    api.get_collection("kept").add(*vectors("late", 10))
    return local


def counts(local: LocalNode) -> dict[str, int]:
    return {c.name: c.count() for c in client(local.gateway.port).list_collections()}


def test_restore_brings_back_the_recovery_point_and_undo_brings_back_what_was_there(environment: LocalNode) -> None:
    lines: list[str] = []
    report = restore.restore(environment, "dev", "latest", "1.5.9", False, NOW, lines.append)
    assert report.ok and report.restore_id == "restore-dev-20261126-101500"
    assert [s.name for s in report.steps] == [
        "stop the node", "restore the copy beside the live directory", "swap the directories (live one kept aside)",
        "start the node (writes held)", "verify against the recorded counts"]
    assert report.verdict is not None and report.verdict["status"] == "ok" and report.verdict["records"] == 70
    assert counts(environment) == {"kept": 50, "other": 20}
    assert write_status(environment.gateway) == 200
    assert lines[0].startswith(f"restore {report.restore_id}: recovery point {ARN}")
    assert (Layout(environment.root).aside(report.restore_id) / "chroma.sqlite3").exists()

    undone = restore.undo(environment, "dev", report.restore_id)
    assert undone.ok
    assert counts(environment) == {"kept": 60, "other": 20}  # the writes made after the recovery point are back
    assert write_status(environment.gateway) == 200
    layout = Layout(environment.root)
    assert (layout.failed(report.restore_id) / "chroma.sqlite3").exists()  # the restored copy, kept in turn
    assert restore.discard(environment, report.restore_id).ok  # while the node serves: its directory is not touched
    assert not layout.failed(report.restore_id).exists() and not layout.aside(report.restore_id).exists()
    assert counts(environment) == {"kept": 60, "other": 21}  # with the probe written above
    environment.stop()


def test_a_restore_that_fails_verification_leaves_the_node_stopped_with_both_directories(
        environment: LocalNode) -> None:
    recorded = environment.vault / "chroma" / "recovery-points" / "latest" / "snapshot.json"
    snapshot = json.loads(recorded.read_text())
    snapshot["collections"]["default_tenant/default_database/other"] = 21  # the copy lacks an acknowledged record
    recorded.write_text(json.dumps(snapshot))
    with pytest.raises(restore.RestoreFailed) as failed:
        restore.restore(environment, "dev", "latest", "1.5.9", False, NOW)
    message = str(failed.value)
    assert "default_tenant/default_database/other: 20 records, 21 recorded at backup time" in message
    assert "The node is stopped" in message and "chroma-ops restore --env dev --undo restore-dev-20261126-101500" \
        in message
    assert environment.running is None  # stopped
    layout = Layout(environment.root)
    assert (layout.node_dir / "chroma.sqlite3").exists()
    assert (layout.aside("restore-dev-20261126-101500") / "chroma.sqlite3").exists()
    assert failed.value.report.verdict is not None and failed.value.report.verdict["status"] == "failed"

    restore.undo(environment, "dev", "restore-dev-20261126-101500")
    assert counts(environment) == {"kept": 60, "other": 20} and write_status(environment.gateway) == 200
    environment.stop()


def test_a_failed_restore_job_leaves_the_live_directory_untouched(environment: LocalNode) -> None:
    environment.point = RecoveryPoint(ARN + "-gone", NOW, SNAPSHOT, "1.5.9", 2, 70)  # not in the vault
    with pytest.raises(restore.RestoreFailed, match="directory untouched"):
        restore.restore(environment, "dev", "latest", "1.5.9", False, NOW)
    environment.start()
    assert counts(environment) == {"kept": 60, "other": 20} and write_status(environment.gateway) == 200
    environment.stop()
    assert not list(environment.root.glob("aws-backup-restore_*")) and not list(environment.root.glob("*/*.before-*"))
