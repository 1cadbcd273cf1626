"""One quiesced recovery point: ask the node, wait for its answer, then have AWS Backup keep the file system.

The node (its gateway) takes the copy while writes are held (gateway/snapshot.py) and answers in S3; only an `ok`
answer starts the AWS Backup job, so every recovery point the vault holds has a quiesced copy of the node's
directory in it. The recovery point is tagged with what the node recorded (the snapshot id, Chroma's image tag,
the totals); every collection's count is in `snapshot.json` inside the copy. On-demand jobs get the plan's
retention (`Lifecycle`), and the snapshot id is the idempotency token, so a retried job never backs up twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from gateway.snapshot_protocol import SnapshotRequest, request_body, request_key, result_key, snapshot_id

from .settings import POLL_SECONDS, BackupJobSettings

if TYPE_CHECKING:
    from mypy_boto3_backup import BackupClient
    from mypy_boto3_backup.literals import BackupJobStateType
    from mypy_boto3_s3 import S3Client


UNFINISHED_STATES: tuple[BackupJobStateType, ...] = ("CREATED", "PENDING", "RUNNING")


class RecoveryPointError(RuntimeError):
    """No quiesced recovery point this time; the message says why. Nothing was sent to AWS Backup."""


@dataclass(frozen=True)
class BackupStarted:
    snapshot_id: str
    backup_job_id: str
    pause_seconds: float
    bytes: int
    records: int


def ask_node(s3: S3Client, settings: BackupJobSettings, request: SnapshotRequest) -> None:
    s3.put_object(Bucket=settings.control_bucket, Key=request_key(settings.node_prefix),
                  Body=request_body(request), ContentType="application/json")


def await_answer(s3: S3Client, settings: BackupJobSettings, request: SnapshotRequest,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> dict[str, Any]:
    """The node's answer, or RecoveryPointError once the request expires unanswered."""
    key = result_key(settings.node_prefix, request.snapshot_id)
    while True:
        try:
            return dict(json.loads(s3.get_object(Bucket=settings.control_bucket, Key=key)["Body"].read()))
        except s3.exceptions.NoSuchKey:
            pass
        if clock() >= request.expires_at:
            raise RecoveryPointError(
                f"the node did not answer recovery point request {request.snapshot_id} within "
                f"{settings.answer_wait_seconds} s (is the Chroma task running, and can it reach S3?)")
        sleep(POLL_SECONDS)


def recovery_point_tags(answer: dict[str, Any]) -> dict[str, str]:
    collections = answer.get("collections", {})
    return {"chroma-snapshot-id": str(answer["snapshot_id"]), "chroma-version": str(answer["chroma_version"]),
            "chroma-collections": str(len(collections)), "chroma-records": str(sum(collections.values())),
            "chroma-pause-seconds": str(answer["pause_seconds"])}


def ensure_no_backup_running(backup: BackupClient, file_system_arn: str) -> None:
    """The node replaces its copy at each recovery point: never while AWS Backup may still be reading the last one."""
    for state in UNFINISHED_STATES:
        jobs = backup.list_backup_jobs(ByResourceArn=file_system_arn, ByState=state).get("BackupJobs", [])
        if jobs:
            raise RecoveryPointError(
                f"backup job {jobs[0].get('BackupJobId')} of this file system is still {state}: a new recovery point "
                "would replace the copy it is reading. Try again once it has finished.")


def run(settings: BackupJobSettings, s3: S3Client, backup: BackupClient, now: datetime,
        clock: Callable[[], float], sleep: Callable[[float], None]) -> BackupStarted:
    ensure_no_backup_running(backup, settings.file_system_arn)
    request = SnapshotRequest(snapshot_id(settings.environment, now), clock() + settings.answer_wait_seconds)
    ask_node(s3, settings, request)
    answer = await_answer(s3, settings, request, clock, sleep)
    if answer.get("status") != "ok":
        raise RecoveryPointError(f"the node could not take recovery point {request.snapshot_id}: "
                                 f"{answer.get('error', 'no reason given')}")
    job = backup.start_backup_job(
        BackupVaultName=settings.backup_vault_name, ResourceArn=settings.file_system_arn,
        IamRoleArn=settings.backup_role_arn, IdempotencyToken=request.snapshot_id,
        Lifecycle={"DeleteAfterDays": settings.retention_days}, RecoveryPointTags=recovery_point_tags(answer))
    return BackupStarted(request.snapshot_id, job["BackupJobId"], float(answer["pause_seconds"]),
                         int(answer["bytes"]), sum(answer.get("collections", {}).values()))
