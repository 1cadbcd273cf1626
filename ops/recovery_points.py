"""Which recovery point a restore uses, and whether it may: shared by `chroma-ops restore` and the restore SSM
Automation document (whose `aws:executeScript` step embeds this file: standard library and boto3 only).

A recovery point restores only if the node took a quiesced copy for it: the backup job tags those with the copy's
snapshot id, Chroma's image tag and the totals (lambdas/recovery_point). Recovery points without the tags (taken by
the old backup plan, or by hand) hold no quiesced copy and are refused with a message that says so. A copy from
another Chroma release is refused unless forced: Chroma may not read, or may silently migrate, another release's
files (runbooks/upgrade-chroma.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

HANDLER = "handler"
TAG_SNAPSHOT_ID = "chroma-snapshot-id"
TAG_CHROMA_VERSION = "chroma-version"
TAG_RECORDS = "chroma-records"
TAG_COLLECTIONS = "chroma-collections"
LATEST = "latest"


class RecoveryPointRefused(ValueError):
    """This recovery point cannot be restored (as asked); the message says why and what to do."""


@dataclass(frozen=True)
class RecoveryPoint:
    arn: str
    created_at: datetime
    snapshot_id: str | None  # None: no quiesced copy in it
    chroma_version: str | None
    collections: int | None
    records: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"arn": self.arn, "created_at": self.created_at.isoformat(), "snapshot_id": self.snapshot_id,
                "chroma_version": self.chroma_version, "collections": self.collections, "records": self.records}


def _number(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def recovery_points(backup: Any, vault: str, file_system_arn: str) -> list[RecoveryPoint]:
    """Completed recovery points of the file system in the vault, newest first, with their chroma-* tags."""
    found: list[RecoveryPoint] = []
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, ByResourceArn=file_system_arn)
    for page in pages:
        for point in page.get("RecoveryPoints", []):
            if point.get("Status") != "COMPLETED":
                continue
            tags = backup.list_tags(ResourceArn=point["RecoveryPointArn"]).get("Tags", {})
            found.append(RecoveryPoint(point["RecoveryPointArn"], point["CreationDate"], tags.get(TAG_SNAPSHOT_ID),
                                       tags.get(TAG_CHROMA_VERSION), _number(tags.get(TAG_COLLECTIONS)),
                                       _number(tags.get(TAG_RECORDS))))
    return sorted(found, key=lambda p: p.created_at, reverse=True)


def choose(points: list[RecoveryPoint], wanted: str, running_version: str, force_version: bool) -> RecoveryPoint:
    """`wanted`: a recovery point ARN, or `latest` (the newest with a quiesced copy)."""
    if wanted == LATEST:
        quiesced = [p for p in points if p.snapshot_id]
        if not quiesced:
            raise RecoveryPointRefused(
                f"no completed recovery point with a quiesced copy ({len(points)} without one): take one with the "
                "backup-now automation, or restore an untagged one by hand (runbooks/restore-from-backup.md)")
        point = quiesced[0]
    else:
        matching = [p for p in points if p.arn == wanted]
        if not matching:
            raise RecoveryPointRefused(f"recovery point {wanted} is not a completed recovery point of this "
                                       f"environment's file system ({len(points)} are; list them with --list)")
        point = matching[0]
        if not point.snapshot_id:
            raise RecoveryPointRefused(
                f"recovery point {wanted} holds no quiesced copy (no {TAG_SNAPSHOT_ID} tag: taken before quiesced "
                "backups, or by hand); restoring it could bring back a torn copy. Choose a tagged one (--list).")
    if point.chroma_version != running_version and not force_version:
        raise RecoveryPointRefused(
            f"recovery point {point.arn} was taken with Chroma {point.chroma_version}, the node runs "
            f"{running_version}: restore it into the same release (deploy chroma_image {point.chroma_version} "
            "first), or pass --force-version to accept that Chroma may migrate or refuse the files")
    return point


def handler(events: dict[str, Any], context: Any) -> dict[str, Any]:
    """The executeScript entry point of the restore document."""
    import boto3

    points = recovery_points(boto3.client("backup"), events["BackupVaultName"], events["FileSystemArn"])
    point = choose(points, events["RecoveryPoint"], events["ChromaVersion"],
                   str(events.get("ForceVersion", "false")).lower() == "true")
    return {"RecoveryPointArn": point.arn, "SnapshotId": point.snapshot_id,
            "ChromaVersion": point.chroma_version, "Records": str(point.records)}
