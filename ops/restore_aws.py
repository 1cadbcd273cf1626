"""The restore's steps against an environment in AWS: ECS for the node and the one-off swap task, AWS Backup for
the item-level restore, S3 for the node's verdict. Everything it needs is published under /chroma/<env>/ (SSM)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from cdk_app.config import PRIMARY_NODE
from cdk_app.constants import (
    EFS_POSIX_GID,
    EFS_POSIX_UID,
    RECOVERY_POINT_ITEM,
    RECOVERY_POINTS_ROOT,
    RESTORE_CONTAINER,
    RESTORE_MOUNT_PATH,
    SSM_BACKUP_ROLE_ARN,
    SSM_BACKUP_VAULT_NAME,
    SSM_CLUSTER_NAME,
    SSM_FILE_SYSTEM_ID,
    SSM_PRIVATE_SUBNETS,
    SSM_RECOVERY_POINTS_BUCKET,
    SSM_RESTORE_TASK_FAMILY,
    SSM_SERVICE_NAME,
    SSM_TASK_SECURITY_GROUP,
    log_group_name,
    recovery_point_prefix,
    ssm_parameter_prefix,
)
from cdk_app.node.names import NodeNames
from gateway.restore_swap import EXIT_LOCKED, EXIT_NOT_FOUND, EXIT_USAGE, Layout, arguments
from gateway.snapshot_protocol import result_key
from ops.errors import OpsError
from ops.recovery_points import RecoveryPoint, recovery_points
from ops.restore_verdict import read as read_verdict
from ops.waiting import wait_until

if TYPE_CHECKING:
    import boto3

PARAMETERS = (SSM_CLUSTER_NAME, SSM_SERVICE_NAME, SSM_FILE_SYSTEM_ID, SSM_BACKUP_VAULT_NAME, SSM_BACKUP_ROLE_ARN,
              SSM_RESTORE_TASK_FAMILY, SSM_PRIVATE_SUBNETS, SSM_TASK_SECURITY_GROUP, SSM_RECOVERY_POINTS_BUCKET)
# Published per node (under nodes/<node>/ for a node other than the primary): the rest is the environment's.
NODE_PARAMETERS = (SSM_SERVICE_NAME, SSM_FILE_SYSTEM_ID, SSM_RESTORE_TASK_FAMILY)


def task_layout(node: str = PRIMARY_NODE) -> Layout:
    """The node's file system as the restore task mounts it (its root), the node's and the recovery points'
    directories in it."""
    return Layout(Path(RESTORE_MOUNT_PATH), NodeNames(node).data_path.strip("/"), RECOVERY_POINTS_ROOT.strip("/"))


TASK_LAYOUT = task_layout()
SWAP_EXIT_MEANINGS = {EXIT_USAGE: "bad arguments or an id already used", EXIT_NOT_FOUND: "the restored copy or the "
                      "directory to put back was not found", EXIT_LOCKED: "a Chroma process still held the writer lock"}


@dataclass(frozen=True)
class Timeouts:
    stop_seconds: float = 600
    restore_job_seconds: float = 6 * 3600
    swap_seconds: float = 900
    verdict_seconds: float = 1200
    poll_seconds: float = 10


class AwsNode:
    def __init__(self, session: boto3.Session, environment: str, timeouts: Timeouts = Timeouts(),
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                 node: str = PRIMARY_NODE) -> None:
        self.node, self.layout = node, task_layout(node)
        self._directory = NodeNames(node).data_path
        self._ecs = session.client("ecs")
        self._backup = session.client("backup")
        self._s3 = session.client("s3")
        self._efs = session.client("efs")
        self._environment, self._timeouts, self._sleep, self._clock = environment, timeouts, sleep, clock
        self.params = self._parameters(session)

    def _parameters(self, session: boto3.Session) -> dict[str, str]:
        prefix = ssm_parameter_prefix(self._environment)
        node = NodeNames(self.node)
        names = {f"{prefix}/{node.parameter(name) if name in NODE_PARAMETERS else name}": name for name in PARAMETERS}
        found = {names[p["Name"]]: p["Value"] for p in self._call(
            lambda: session.client("ssm").get_parameters(Names=list(names)))["Parameters"]}
        missing = [name for name in PARAMETERS if name not in found]
        if missing:
            raise OpsError(f"environment {self._environment!r} does not publish {', '.join(missing)} under "
                           f"{prefix}/: is it deployed, with a version that has the restore task?")
        return found

    @staticmethod
    def _call(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except (ClientError, BotoCoreError) as error:
            raise OpsError(f"AWS refused: {error}") from None

    def _wait(self, what: str, timeout: float, done: Callable[[], bool]) -> None:
        if not wait_until(done, timeout, self._timeouts.poll_seconds, self._sleep, self._clock):
            raise OpsError(f"{what} did not happen within {timeout:g} s")

    @property
    def file_system_arn(self) -> str:
        described = self._call(lambda: self._efs.describe_file_systems(FileSystemId=self.params[SSM_FILE_SYSTEM_ID]))
        return str(described["FileSystems"][0]["FileSystemArn"])

    def recovery_points(self) -> list[RecoveryPoint]:
        return list(self._call(lambda: recovery_points(self._backup, self.params[SSM_BACKUP_VAULT_NAME],
                                                       self.file_system_arn)))

    def _service(self) -> dict[str, Any]:
        p = self.params
        found = self._call(lambda: self._ecs.describe_services(cluster=p[SSM_CLUSTER_NAME],
                                                              services=[p[SSM_SERVICE_NAME]]))["services"]
        if not found:
            raise OpsError(f"service {p[SSM_SERVICE_NAME]} not found in cluster {p[SSM_CLUSTER_NAME]}")
        return dict(found[0])

    def _desired(self, count: int) -> None:
        p = self.params
        self._call(lambda: self._ecs.update_service(cluster=p[SSM_CLUSTER_NAME], service=p[SSM_SERVICE_NAME],
                                                    desiredCount=count))

    def stop(self) -> str:
        self._desired(0)

        def stopped() -> bool:
            service = self._service()
            if service["runningCount"] or service["pendingCount"]:
                return False
            p = self.params
            return not self._call(lambda: self._ecs.list_tasks(cluster=p[SSM_CLUSTER_NAME],
                                                               serviceName=p[SSM_SERVICE_NAME],
                                                               desiredStatus="RUNNING"))["taskArns"]

        self._wait("the node's tasks stopping", self._timeouts.stop_seconds, stopped)
        return "desired count 0, no task running"

    def start(self) -> str:
        self._desired(1)
        return "desired count 1"

    def restore_copy(self, point: RecoveryPoint, restore_id: str) -> str:
        vault = self.params[SSM_BACKUP_VAULT_NAME]
        metadata = dict(self._call(lambda: self._backup.get_recovery_point_restore_metadata(
            BackupVaultName=vault, RecoveryPointArn=point.arn))["RestoreMetadata"])
        metadata.update({"file-system-id": self.params[SSM_FILE_SYSTEM_ID], "newFileSystem": "false",
                         "CreationToken": restore_id,
                         "ItemsToRestore": json.dumps([RECOVERY_POINT_ITEM])})
        job = self._call(lambda: self._backup.start_restore_job(
            RecoveryPointArn=point.arn, Metadata=metadata, IamRoleArn=self.params[SSM_BACKUP_ROLE_ARN],
            IdempotencyToken=restore_id, ResourceType="EFS"))["RestoreJobId"]
        state: dict[str, Any] = {}

        def finished() -> bool:
            state.update(self._call(lambda: self._backup.describe_restore_job(RestoreJobId=job)))
            return state.get("Status") in ("COMPLETED", "FAILED", "ABORTED")

        self._wait(f"restore job {job} finishing", self._timeouts.restore_job_seconds, finished)
        if state["Status"] != "COMPLETED":
            raise OpsError(f"restore job {job} {state['Status']}: {state.get('StatusMessage', 'no message')}")
        return f"restore job {job}, {state.get('BackupSizeInBytes', '?')} bytes"

    def swap(self, point: RecoveryPoint | None, restore_id: str, undo: bool = False) -> str:
        if undo or point is None:
            task_arn = self._run_task(arguments(self.layout, restore_id, EFS_POSIX_UID, EFS_POSIX_GID))
            return f"task {task_arn}; restored directory kept as {self._directory}.failed-{restore_id}"
        task_arn = self._run_task(arguments(self.layout, restore_id, EFS_POSIX_UID, EFS_POSIX_GID,
                                            str(point.snapshot_id), point.arn))
        return f"task {task_arn}; live directory kept as {self._directory}.before-{restore_id}"

    def discard(self, restore_id: str) -> str:
        task_arn = self._run_task(arguments(self.layout, restore_id, EFS_POSIX_UID, EFS_POSIX_GID,
                                            action="--discard"))
        return f"task {task_arn}; deleted {self._directory}.before-{restore_id} and .failed-{restore_id}"

    def _run_task(self, command: list[str]) -> str:
        """Run the restore task with `command`; its ARN once it stopped with exit code 0, else OpsError."""
        p = self.params
        started = self._call(lambda: self._ecs.run_task(
            cluster=p[SSM_CLUSTER_NAME], taskDefinition=p[SSM_RESTORE_TASK_FAMILY], launchType="FARGATE", count=1,
            startedBy="chroma-ops-restore",
            networkConfiguration={"awsvpcConfiguration": {"subnets": p[SSM_PRIVATE_SUBNETS].split(","),
                                                          "securityGroups": [p[SSM_TASK_SECURITY_GROUP]],
                                                          "assignPublicIp": "DISABLED"}},
            overrides={"containerOverrides": [{"name": RESTORE_CONTAINER, "command": command}]}))
        if started.get("failures") or not started.get("tasks"):
            raise OpsError(f"the restore task did not start: {started.get('failures')}")
        task_arn = started["tasks"][0]["taskArn"]
        task: dict[str, Any] = {}

        def stopped() -> bool:
            task.update(self._call(lambda: self._ecs.describe_tasks(cluster=p[SSM_CLUSTER_NAME],
                                                                    tasks=[task_arn]))["tasks"][0])
            return task.get("lastStatus") == "STOPPED"

        self._wait(f"restore task {task_arn} finishing", self._timeouts.swap_seconds, stopped)
        code = next((c.get("exitCode") for c in task.get("containers", []) if c["name"] == RESTORE_CONTAINER), None)
        if code != 0:
            meaning = SWAP_EXIT_MEANINGS.get(code, "see its log") if isinstance(code, int) else "it did not run"
            logs = log_group_name(self._environment, NodeNames(self.node).qualified("restore"))
            raise OpsError(f"the restore task {task_arn} exited {code} ({meaning}; {task.get('stoppedReason', '')}); "
                           f"its log is in {logs}")
        return str(task_arn)

    def verdict(self, restore_id: str) -> dict[str, Any]:
        bucket, key = self.params[SSM_RECOVERY_POINTS_BUCKET], result_key(recovery_point_prefix(self.node),
                                                                           restore_id)
        found: dict[str, Any] = {}

        def answered() -> bool:
            try:
                verdict = read_verdict(self._s3, bucket, key)
            except (ClientError, BotoCoreError) as error:
                raise OpsError(f"cannot read the node's verdict s3://{bucket}/{key}: {error}") from None
            found.update(verdict or {})
            return verdict is not None

        self._wait(f"the node's verdict on {restore_id} (s3://{bucket}/{key})", self._timeouts.verdict_seconds,
                   answered)
        return found
