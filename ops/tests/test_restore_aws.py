"""The AWS side of chroma-ops restore: the exact requests it makes, in order, and how it reads their answers.
SSM, EFS and S3 are moto; ECS and AWS Backup (whose EFS restores and ECS task lifecycles moto does not run) are
botocore Stubbers that fail the test on any request not expected here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from cdk_app.constants import ssm_parameter_prefix
from ops import restore
from ops.errors import OpsError
from ops.recovery_points import RecoveryPoint, RecoveryPointRefused, choose
from ops.restore_aws import PARAMETERS, AwsNode, Timeouts

REGION = "us-east-1"
VAULT, CLUSTER, SERVICE, FAMILY = "chroma-dev", "chroma-dev", "chroma-dev-node", "chroma-dev-restore"
BUCKET = "chroma-dev-rp-111122223333-us-east-1"
ROLE = "arn:aws:iam::111122223333:role/chroma-dev-backup"
POINT = "arn:aws:backup:us-east-1:111122223333:recovery-point:11111111-2222-3333-4444-555555555555"
OLD_POINT = "arn:aws:backup:us-east-1:111122223333:recovery-point:00000000-2222-3333-4444-555555555555"
TASK = "arn:aws:ecs:us-east-1:111122223333:task/chroma-dev/abc"
NOW = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
RESTORE_ID = "restore-dev-20261126-101500"
SNAPSHOT = "dev-20261126-030000"


class Session:
    """boto3.Session's `client`, returning the clients the test stubs."""

    def __init__(self, clients: dict[str, Any]) -> None:
        self.clients = clients

    def client(self, name: str) -> Any:
        return self.clients[name]


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        clients: dict[str, Any] = {name: boto3.client(name, region_name=REGION)
                                   for name in ("ssm", "efs", "s3", "ecs", "backup")}
        file_system = clients["efs"].create_file_system(CreationToken="fs")["FileSystemId"]
        values = {"cluster-name": CLUSTER, "service-name": SERVICE, "file-system-id": file_system,
                  "backup-vault-name": VAULT, "backup-role-arn": ROLE, "restore-task-family": FAMILY,
                  "private-subnets": "subnet-a,subnet-b", "task-security-group": "sg-node",
                  "recovery-points-bucket": BUCKET}
        assert set(values) == set(PARAMETERS)
        for name, value in values.items():
            clients["ssm"].put_parameter(Name=f"{ssm_parameter_prefix('dev')}/{name}", Value=value, Type="String")
        clients["s3"].create_bucket(Bucket=BUCKET)
        clients["file_system"] = file_system
        yield clients


def expect_stop(ecs: Stubber) -> None:
    ecs.add_response("update_service", {}, {"cluster": CLUSTER, "service": SERVICE, "desiredCount": 0})
    ecs.add_response("describe_services", {"services": [{"runningCount": 1, "pendingCount": 0}]},
                     {"cluster": CLUSTER, "services": [SERVICE]})
    ecs.add_response("describe_services", {"services": [{"runningCount": 0, "pendingCount": 0}]},
                     {"cluster": CLUSTER, "services": [SERVICE]})
    ecs.add_response("list_tasks", {"taskArns": []},
                     {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "RUNNING"})


def expect_points(backup: Stubber, file_system_arn: str) -> None:
    backup.add_response("list_recovery_points_by_backup_vault", {"RecoveryPoints": [
        {"RecoveryPointArn": OLD_POINT, "Status": "COMPLETED", "CreationDate": datetime(2026, 11, 20, tzinfo=UTC)},
        {"RecoveryPointArn": POINT, "Status": "COMPLETED", "CreationDate": datetime(2026, 11, 26, 3, tzinfo=UTC)},
    ]}, {"BackupVaultName": VAULT, "ByResourceArn": file_system_arn})
    backup.add_response("list_tags", {"Tags": {}}, {"ResourceArn": OLD_POINT})  # from the old plan: untagged
    backup.add_response("list_tags", {"Tags": {"chroma-snapshot-id": SNAPSHOT, "chroma-version": "1.5.9",
                                               "chroma-collections": "2", "chroma-records": "70"}},
                        {"ResourceArn": POINT})


def expect_swap(ecs: Stubber, command: list[str], exit_code: int) -> None:
    ecs.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": CLUSTER, "taskDefinition": FAMILY, "launchType": "FARGATE", "count": 1,
        "startedBy": "chroma-ops-restore",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"],
                                                         "securityGroups": ["sg-node"], "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [{"name": "restore", "command": command}]}})
    ecs.add_response("describe_tasks", {"tasks": [{"lastStatus": "RUNNING"}]}, {"cluster": CLUSTER, "tasks": [TASK]})
    ecs.add_response("describe_tasks", {"tasks": [{"lastStatus": "STOPPED", "stoppedReason": "Essential container "
                                                   "in task exited", "containers": [{"name": "restore",
                                                                                     "exitCode": exit_code}]}]},
                     {"cluster": CLUSTER, "tasks": [TASK]})


SWAP_COMMAND = ["--root", "/efs", "--node", "chroma/primary", "--recovery-points", "chroma/recovery-points",
                "--restore-id", RESTORE_ID, "--uid", "1000", "--gid", "1000", "--snapshot-id", SNAPSHOT,
                "--recovery-point-arn", POINT]


def node_of(aws: dict[str, Any]) -> AwsNode:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    return AwsNode(Session(aws), "dev", Timeouts(poll_seconds=5), sleep=sleep, clock=lambda: clock[0])  # type: ignore[arg-type]


def test_a_restore_makes_exactly_these_requests(aws: dict[str, Any]) -> None:
    ecs, backup = Stubber(aws["ecs"]), Stubber(aws["backup"])
    file_system_arn = aws["efs"].describe_file_systems()["FileSystems"][0]["FileSystemArn"]
    expect_points(backup, file_system_arn)
    expect_stop(ecs)
    backup.add_response("get_recovery_point_restore_metadata", {"RestoreMetadata": {
        "file-system-id": aws["file_system"], "Encrypted": "true", "PerformanceMode": "generalPurpose",
        "newFileSystem": "true", "CreationToken": "old"}}, {"BackupVaultName": VAULT, "RecoveryPointArn": POINT})
    backup.add_response("start_restore_job", {"RestoreJobId": "job-1"}, {
        "RecoveryPointArn": POINT, "IamRoleArn": ROLE, "IdempotencyToken": RESTORE_ID, "ResourceType": "EFS",
        "Metadata": {"file-system-id": aws["file_system"], "Encrypted": "true", "PerformanceMode": "generalPurpose",
                     "newFileSystem": "false", "CreationToken": RESTORE_ID,
                     "ItemsToRestore": '["/chroma/recovery-points/latest"]'}})
    backup.add_response("describe_restore_job", {"Status": "RUNNING"}, {"RestoreJobId": "job-1"})
    backup.add_response("describe_restore_job", {"Status": "COMPLETED", "BackupSizeInBytes": 4096},
                        {"RestoreJobId": "job-1"})
    expect_swap(ecs, SWAP_COMMAND, 0)
    ecs.add_response("update_service", {}, {"cluster": CLUSTER, "service": SERVICE, "desiredCount": 1})
    aws["s3"].put_object(Bucket=BUCKET, Key=f"nodes/primary/snapshots/{RESTORE_ID}.json", Body=json.dumps(
        {"status": "ok", "collections": 2, "records": 70, "problems": []}).encode())
    with ecs, backup:
        report = restore.restore(node_of(aws), "dev", "latest", "1.5.9", False, NOW)
    ecs.assert_no_pending_responses()
    backup.assert_no_pending_responses()
    assert report.ok and report.recovery_point is not None and report.recovery_point["arn"] == POINT
    assert report.steps[1].detail == "restore job job-1, 4096 bytes"
    assert report.steps[2].detail == f"task {TASK}; live directory kept as /chroma/primary.before-{RESTORE_ID}"


def test_a_swap_that_finds_the_writer_lock_held_is_reported_as_such(aws: dict[str, Any]) -> None:
    ecs = Stubber(aws["ecs"])
    expect_swap(ecs, SWAP_COMMAND, 4)
    point = RecoveryPoint(POINT, NOW, SNAPSHOT, "1.5.9", 2, 70)
    with ecs, pytest.raises(OpsError, match=r"exited 4 \(a Chroma process still held the writer lock; Essential"):
        node_of(aws).swap(point, RESTORE_ID)


def test_a_failed_restore_job_is_reported_with_its_message(aws: dict[str, Any]) -> None:
    backup = Stubber(aws["backup"])
    backup.add_response("get_recovery_point_restore_metadata", {"RestoreMetadata": {}},
                        {"BackupVaultName": VAULT, "RecoveryPointArn": POINT})
    backup.add_response("start_restore_job", {"RestoreJobId": "job-2"}, None)
    backup.add_response("describe_restore_job", {"Status": "FAILED", "StatusMessage": "Access denied to KMS key"},
                        {"RestoreJobId": "job-2"})
    with backup, pytest.raises(OpsError, match="restore job job-2 FAILED: Access denied to KMS key"):
        node_of(aws).restore_copy(RecoveryPoint(POINT, NOW, SNAPSHOT, "1.5.9", 2, 70), RESTORE_ID)


def test_a_node_that_does_not_stop_is_not_restored_into(aws: dict[str, Any]) -> None:
    ecs = Stubber(aws["ecs"])
    ecs.add_response("update_service", {}, {"cluster": CLUSTER, "service": SERVICE, "desiredCount": 0})
    for _ in range(3):
        ecs.add_response("describe_services", {"services": [{"runningCount": 1, "pendingCount": 0}]},
                         {"cluster": CLUSTER, "services": [SERVICE]})
    node = AwsNode(Session(aws), "dev", Timeouts(stop_seconds=10, poll_seconds=5), sleep=lambda _: None,  # type: ignore[arg-type]
                   clock=iter([0.0, 0.0, 6.0, 11.0]).__next__)
    with ecs, pytest.raises(OpsError, match="the node's tasks stopping did not happen within 10 s"):
        node.stop()


def test_missing_parameters_are_named(aws: dict[str, Any]) -> None:
    aws["ssm"].delete_parameter(Name=f"{ssm_parameter_prefix('dev')}/restore-task-family")
    with pytest.raises(OpsError, match="does not publish restore-task-family under /chroma/dev/"):
        node_of(aws)


POINTS = [RecoveryPoint(POINT, NOW, SNAPSHOT, "1.5.9", 2, 70),
          RecoveryPoint(OLD_POINT, datetime(2026, 11, 20, tzinfo=UTC), None, None, None, None)]


def test_only_quiesced_points_of_the_running_release_are_chosen() -> None:
    assert choose(POINTS, "latest", "1.5.9", False).arn == POINT
    with pytest.raises(RecoveryPointRefused, match="holds no quiesced copy"):
        choose(POINTS, OLD_POINT, "1.5.9", False)
    with pytest.raises(RecoveryPointRefused, match=r"taken with Chroma 1.5.9, the node runs 1.6.0: .*--force-version"):
        choose(POINTS, "latest", "1.6.0", False)
    assert choose(POINTS, POINT, "1.6.0", True).arn == POINT
    with pytest.raises(RecoveryPointRefused, match="is not a completed recovery point of this environment"):
        choose(POINTS, POINT + "x", "1.5.9", False)
    with pytest.raises(RecoveryPointRefused, match="no completed recovery point with a quiesced copy"):
        choose(POINTS[1:], "latest", "1.5.9", False)


def test_the_automation_waits_for_the_verdict_and_fails_on_a_bad_one(aws: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from ops import restore_verdict

    monkeypatch.setattr("ops.restore_verdict.time.sleep", lambda _: None)
    key = f"nodes/primary/snapshots/{RESTORE_ID}.json"
    events = {"Bucket": BUCKET, "Key": key, "WaitSeconds": "0"}
    with pytest.raises(TimeoutError, match=f"no verdict at s3://{BUCKET}/{key} yet"):
        restore_verdict.handler(events, None)
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=json.dumps(
        {"status": "failed", "problems": ["default_tenant/default_database/docs: 9 records, 10 recorded"]}).encode())
    with pytest.raises(RuntimeError, match=r"does not match its recovery point: \['default_tenant/default_database/"
                                           r"docs: 9 records, 10 recorded'\]"):
        restore_verdict.handler(events, None)
    aws["s3"].put_object(Bucket=BUCKET, Key=key, Body=json.dumps(
        {"status": "ok", "collections": 2, "records": 70, "problems": []}).encode())
    assert restore_verdict.handler(events, None) == {"Collections": "2", "Records": "70"}


def test_discard_runs_the_restore_task_with_only_the_restore_id(aws: dict[str, Any]) -> None:
    ecs = Stubber(aws["ecs"])
    expect_swap(ecs, [*SWAP_COMMAND[:SWAP_COMMAND.index("--snapshot-id")], "--discard"], 0)
    with ecs:
        detail = node_of(aws).discard(RESTORE_ID)
    ecs.assert_no_pending_responses()
    assert detail == f"task {TASK}; deleted /chroma/primary.before-{RESTORE_ID} and .failed-{RESTORE_ID}"


def test_another_node_is_restored_with_its_own_parameters_directory_and_verdict(aws: dict[str, Any]) -> None:
    """--node search: its service, file system and restore task (published under nodes/search/), its directory
    /chroma/search, its verdict under nodes/search/; the environment's vault, role, subnets and bucket."""
    prefix = ssm_parameter_prefix("dev")
    for name, value in {"service-name": "svc-search", "file-system-id": aws["file_system"],
                        "restore-task-family": "chroma-dev-search-restore"}.items():
        aws["ssm"].put_parameter(Name=f"{prefix}/nodes/search/{name}", Value=value, Type="String")
    node = AwsNode(Session(aws), "dev", Timeouts(poll_seconds=5), sleep=lambda _: None,  # type: ignore[arg-type]
                   node="search")
    assert (node.params["service-name"], node.params["restore-task-family"], node.params["backup-vault-name"]) == (
        "svc-search", "chroma-dev-search-restore", VAULT)
    ecs = Stubber(aws["ecs"])
    command = [*SWAP_COMMAND[:SWAP_COMMAND.index("--snapshot-id")], "--discard"]
    command[command.index("chroma/primary")] = "chroma/search"
    ecs.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": CLUSTER, "taskDefinition": "chroma-dev-search-restore", "launchType": "FARGATE", "count": 1,
        "startedBy": "chroma-ops-restore",
        "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"],
                                                         "securityGroups": ["sg-node"], "assignPublicIp": "DISABLED"}},
        "overrides": {"containerOverrides": [{"name": "restore", "command": command}]}})
    ecs.add_response("describe_tasks", {"tasks": [{"lastStatus": "STOPPED", "containers": [
        {"name": "restore", "exitCode": 0}]}]}, {"cluster": CLUSTER, "tasks": [TASK]})
    with ecs:
        assert node.discard(RESTORE_ID) == (f"task {TASK}; deleted /chroma/search.before-{RESTORE_ID} and "
                                            f".failed-{RESTORE_ID}")
    ecs.assert_no_pending_responses()
    aws["s3"].put_object(Bucket=BUCKET, Key=f"nodes/search/snapshots/{RESTORE_ID}.json", Body=json.dumps(
        {"status": "ok", "collections": 1, "records": 5, "problems": []}).encode())
    assert node.verdict(RESTORE_ID)["records"] == 5
    with pytest.raises(OpsError, match="does not publish service-name, file-system-id, restore-task-family"):
        AwsNode(Session(aws), "dev", node="archive")  # type: ignore[arg-type]
