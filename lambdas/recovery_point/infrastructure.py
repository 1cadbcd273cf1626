"""CDK: the daily quiesced recovery point (and the one backup-now starts): ask the node, then AWS Backup.

Replaces the backup plan's own schedule, which copied the file system while Chroma wrote. Allowed to write the
request and read the node's answers under the node's prefix of the requests bucket, and to start a backup job of
this file system into this vault with the backup role; nothing else.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EnvironmentConfig, NodeConfig
from cdk_app.constants import (
    RECOVERY_POINT_JOB_TIMEOUT_SECONDS,
    log_group_name,
    recovery_point_wait_seconds,
)
from cdk_app.constructs.scheduled_function import ScheduledFunction
from cdk_app.nag import acknowledge
from cdk_app.node.names import NodeNames
from cdk_app.storage.recovery_points import (
    RECOVERY_POINTS_ARN,
    RECOVERY_POINTS_FINDING,
    NodePrefix,
    requests_bucket_name,
)
from lambdas.recovery_point.function import settings as runtime

# The protocol module the job shares with the node's gateway (standard library only).
PROTOCOL_FILES = ("gateway/__init__.py", "gateway/snapshot_protocol.py")


class RecoveryPointJob(ScheduledFunction):
    """One per node (each waits up to 14 minutes for its node, so one job cannot serve several)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, node: NodeConfig,
                 file_system_arn: str, vault_name: str, vault_arn: str, backup_role_arn: str, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        bucket = requests_bucket_name(config.name)
        b = config.backup
        names = NodeNames(node.name)
        task = config.node_task(node)
        prefix = NodePrefix(config.name, node.name)
        super().__init__(
            scope, construct_id, unit="recovery_point",
            description=f"Chroma {config.name}: a quiesced recovery point from the node, kept by AWS Backup"
                        + names.of_node,
            service=runtime.service_name(config.name, node.name),
            schedule=events.Schedule.cron(hour=str(b.hour_utc), minute=str(b.minute_utc)),
            environment={
                runtime.ENV_CONTROL_BUCKET: bucket,
                runtime.ENV_NODE_PREFIX: prefix.prefix,
                runtime.ENV_FILE_SYSTEM_ARN: file_system_arn,
                runtime.ENV_BACKUP_VAULT_NAME: vault_name,
                runtime.ENV_BACKUP_ROLE_ARN: backup_role_arn,
                runtime.ENV_RETENTION_DAYS: str(b.retention_days),
                runtime.ENV_ANSWER_WAIT_SECONDS: str(recovery_point_wait_seconds(
                    task.upstream_timeout_seconds, b.max_write_pause_seconds)),
                runtime.ENV_ENVIRONMENT: config.name,
            },
            log_group_name=log_group_name(config.name, names.qualified("recovery-point")),
            log_retention_days=task.log_retention_days, log_key=key, removal_policy=removal_policy,
            timeout_seconds=RECOVERY_POINT_JOB_TIMEOUT_SECONDS,
            # A failed run has already asked the node once; the alarm, not a silent retry, handles it.
            retry=False, bundled_files=PROTOCOL_FILES)
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:PutObject"],
                                                             resources=[prefix.request_arn]))
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"],
                                                             resources=[prefix.answers_arn]))
        self.function.add_to_role_policy(prefix.list_statement())
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["backup:StartBackupJob"], resources=[vault_arn]))
        # No recovery point while a backup of the file system still runs (it may be reading the node's last copy).
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["backup:ListBackupJobs"], resources=["*"]))
        # The recovery point is tagged with the node's totals as it is created.
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["backup:TagResource"], resources=[RECOVERY_POINTS_ARN]))
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[backup_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}))
        role = self.function.role
        assert role is not None
        acknowledge(role, {
            "AwsSolutions-IAM5[Resource::*]": "X-Ray's trace actions and backup:ListBackupJobs have no "
                                              "resource-level permissions.",
            prefix.answers_finding: "The job reads the node's answer to its own request, an object named by the "
                                    "request's id (one per backup), under the node's prefix of the requests bucket.",
            RECOVERY_POINTS_FINDING: "backup:TagResource tags the recovery point StartBackupJob creates; its id is "
                                     "not known before.",
        })

