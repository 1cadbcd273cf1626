"""The backup job against moto's S3, with the node answering through the gateway's own code, and AWS Backup through
botocore's Stubber (moto lacks StartBackupJob for EFS): only a quiesced, answered recovery point reaches AWS Backup.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from gateway.snapshot_requests import S3SnapshotRequests
from lambdas.env_settings import SettingsError
from lambdas.recovery_point.function import settings as names
from lambdas.recovery_point.function.job import UNFINISHED_STATES, RecoveryPointError, recovery_point_tags, run
from lambdas.recovery_point.function.settings import BackupJobSettings

BUCKET = "chroma-dev-control"
NOW = datetime(2026, 11, 26, 3, 0, 0, tzinfo=UTC)
SETTINGS = BackupJobSettings(
    control_bucket=BUCKET, node_prefix="nodes/primary",
    file_system_arn="arn:aws:elasticfilesystem:us-east-1:111111111111:file-system/fs-0123456789abcdef0",
    backup_vault_name="chroma-dev", backup_role_arn="arn:aws:iam::111111111111:role/chroma-dev-backup",
    retention_days=35, answer_wait_seconds=600, environment="dev")
ANSWER = {"status": "ok", "snapshot_id": "dev-20261126-030000", "chroma_version": "1.5.9", "pause_seconds": 1.25,
          "bytes": 4096, "collections": {"default_tenant/default_database/docs": 120,
                                         "acme/main/faq": 30}}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


class Clock:
    """Time that passes only when the job sleeps; the node answers at its `answer_after`-th look, or never."""

    def __init__(self, node: S3SnapshotRequests, answer: dict[str, Any] | None, answer_after: int = 2) -> None:
        self.now = 1_000_000.0
        self.looks = 0
        self._node, self._answer, self._after = node, answer, answer_after

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.looks += 1
        if self._answer is not None and self.looks == self._after:
            request = self._node.poll(now=self.now)
            assert request is not None  # the node sees the request the job wrote
            self._node.answer(request.snapshot_id, {**self._answer, "snapshot_id": request.snapshot_id})


def backup_client(running: str | None = None) -> tuple[Any, Stubber]:
    """AWS Backup, first asked for unfinished jobs of the file system (`running`: one in that state)."""
    client = boto3.client("backup", region_name="us-east-1")
    stub = Stubber(client)
    for state in UNFINISHED_STATES:
        jobs = [{"BackupJobId": "job-0", "State": state}] if state == running else []
        stub.add_response("list_backup_jobs", {"BackupJobs": jobs},
                          {"ByResourceArn": SETTINGS.file_system_arn, "ByState": state})
        if jobs:
            break
    return client, stub


def test_an_answered_recovery_point_is_sent_to_aws_backup_with_retention_and_tags(s3: Any) -> None:
    clock = Clock(S3SnapshotRequests(s3, BUCKET, "nodes/primary"), ANSWER)
    backup, stub = backup_client()
    stub.add_response("start_backup_job", {"BackupJobId": "job-1", "CreationDate": NOW}, {
        "BackupVaultName": "chroma-dev", "ResourceArn": SETTINGS.file_system_arn,
        "IamRoleArn": SETTINGS.backup_role_arn, "IdempotencyToken": "dev-20261126-030000",
        "Lifecycle": {"DeleteAfterDays": 35},
        "RecoveryPointTags": {"chroma-snapshot-id": "dev-20261126-030000", "chroma-version": "1.5.9",
                              "chroma-collections": "2", "chroma-records": "150", "chroma-pause-seconds": "1.25"}})
    with stub:
        started = run(SETTINGS, s3, backup, NOW, clock.time, clock.sleep)
    stub.assert_no_pending_responses()
    assert (started.snapshot_id, started.backup_job_id, started.records) == ("dev-20261126-030000", "job-1", 150)


def test_a_failed_snapshot_starts_no_backup(s3: Any) -> None:
    clock = Clock(S3SnapshotRequests(s3, BUCKET, "nodes/primary"),
                  {"status": "failed", "error": "the directory changed during each of 3 copies"})
    backup, stub = backup_client()  # only the check for unfinished jobs: any other call would fail the test
    with stub, pytest.raises(RecoveryPointError, match="could not take recovery point dev-20261126-030000: "
                                                       "the directory changed"):
        run(SETTINGS, s3, backup, NOW, clock.time, clock.sleep)


def test_no_answer_within_the_wait_fails_loudly_and_the_request_expires(s3: Any) -> None:
    node = S3SnapshotRequests(s3, BUCKET, "nodes/primary")
    clock = Clock(node, None)
    backup, stub = backup_client()
    with stub, pytest.raises(RecoveryPointError, match=r"did not answer .* within 600 s"):
        run(SETTINGS, s3, backup, NOW, clock.time, clock.sleep)
    assert clock.now >= 1_000_600.0
    assert node.poll(now=clock.now + 1) is None  # a node that comes back later never pauses for it


def test_tags_carry_the_totals() -> None:
    assert recovery_point_tags(ANSWER) == {"chroma-snapshot-id": "dev-20261126-030000", "chroma-version": "1.5.9",
                                           "chroma-collections": "2", "chroma-records": "150",
                                           "chroma-pause-seconds": "1.25"}


def test_missing_settings_are_named() -> None:
    env = {names.ENV_CONTROL_BUCKET: BUCKET, names.ENV_RETENTION_DAYS: "0"}
    with pytest.raises(SettingsError, match=f"{names.ENV_RETENTION_DAYS} = '0': must be greater than 0"):
        BackupJobSettings.from_env(env)


def test_no_recovery_point_while_a_backup_of_the_file_system_still_runs(s3: Any) -> None:
    node = S3SnapshotRequests(s3, BUCKET, "nodes/primary")
    clock = Clock(node, ANSWER)
    backup, stub = backup_client(running="RUNNING")
    with stub, pytest.raises(RecoveryPointError, match="backup job job-0 of this file system is still RUNNING"):
        run(SETTINGS, s3, backup, NOW, clock.time, clock.sleep)
    stub.assert_no_pending_responses()
    assert node.poll(now=clock.now) is None  # the node was never asked: its copy stays as AWS Backup reads it
