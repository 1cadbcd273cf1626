"""`chroma-<env>-restore`: chroma-ops restore as an SSM Automation document, for operators without the CLI.

The same steps and the same choices: the recovery point is chosen by ops/recovery_points.py (embedded), the
verdict read by ops/restore_verdict.py (embedded), the swap is the restore task's. A restore job or swap that fails
leaves the node's directory untouched and starts the node again; a restore the node cannot verify stops the node
(it held writes) and keeps both directories. Every outcome but success ends the execution as Failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.constants import (
    EFS_POSIX_GID,
    EFS_POSIX_UID,
    RECOVERY_POINT_ITEM,
    RESTORE_CONTAINER,
    recovery_point_prefix,
)
from cdk_app.constructs.automation import SSM_PRINCIPAL, automation_content, automation_document
from cdk_app.nag import acknowledge
from cdk_app.node.names import NodeNames
from cdk_app.node.restore_task import restore_family
from cdk_app.storage.recovery_points import RECOVERY_POINTS_ARN, RECOVERY_POINTS_FINDING, NodePrefix
from gateway.restore_swap import arguments
from gateway.snapshot_protocol import result_key
from ops import recovery_points, restore_verdict
from ops.restore_aws import task_layout

CHOOSE_SOURCE = Path(recovery_points.__file__).read_text()
VERDICT_SOURCE = Path(restore_verdict.__file__).read_text()
RESTORE_ID = "restore-{{ automation:EXECUTION_ID }}"  # 44 characters: a valid snapshot-protocol id
RESTORE_JOB_TIMEOUT_SECONDS = 6 * 3600
# aws:executeScript runs at most 600 s a time; retried, the verdict wait covers a start and its health-check grace.
VERDICT_ATTEMPTS = 4


def _ecs(api: str, **inputs: Any) -> dict[str, Any]:
    return {"Service": "ecs", "Api": api, "cluster": "{{ ClusterName }}", **inputs}


def _desired(name: str, count: int, next_step: str | None = None) -> dict[str, Any]:
    step: dict[str, Any] = {"name": name, "action": "aws:executeAwsApi",
                            "inputs": _ecs("UpdateService", service="{{ ServiceName }}", desiredCount=count)}
    return {**step, "nextStep": next_step} if next_step else step


def restore_steps(node: str = PRIMARY_NODE) -> list[dict[str, Any]]:
    untouched = {"onFailure": "step:StartNodeUntouched"}
    swap = arguments(task_layout(node), RESTORE_ID, EFS_POSIX_UID, EFS_POSIX_GID,
                     "{{ ChooseRecoveryPoint.SnapshotId }}", "{{ ChooseRecoveryPoint.RecoveryPointArn }}")
    return [
        {"name": "ChooseRecoveryPoint", "action": "aws:executeScript",
         "inputs": {"Runtime": "python3.11", "Handler": recovery_points.HANDLER, "Script": CHOOSE_SOURCE,
                    "InputPayload": {"BackupVaultName": "{{ BackupVaultName }}", "FileSystemArn": "{{ FileSystemArn }}",
                                     "RecoveryPoint": "{{ RecoveryPoint }}", "ChromaVersion": "{{ ChromaVersion }}",
                                     "ForceVersion": "{{ ForceVersion }}"}},
         "outputs": [{"Name": "RecoveryPointArn", "Selector": "$.Payload.RecoveryPointArn", "Type": "String"},
                     {"Name": "SnapshotId", "Selector": "$.Payload.SnapshotId", "Type": "String"}]},
        _desired("StopNode", 0),
        {"name": "WaitNodeStopped", "action": "aws:waitForAwsResourceProperty", "timeoutSeconds": 900,
         "inputs": {**_ecs("DescribeServices", services=["{{ ServiceName }}"]),
                    "PropertySelector": "$.services[0].runningCount", "DesiredValues": ["0"]},
         **untouched},
        {"name": "StartRestoreJob", "action": "aws:executeAwsApi", **untouched,
         "inputs": {"Service": "backup", "Api": "StartRestoreJob",
                    "RecoveryPointArn": "{{ ChooseRecoveryPoint.RecoveryPointArn }}",
                    "IamRoleArn": "{{ BackupRoleArn }}", "IdempotencyToken": "{{ automation:EXECUTION_ID }}",
                    "ResourceType": "EFS",
                    "Metadata": {"file-system-id": "{{ FileSystemId }}", "newFileSystem": "false",
                                 "Encrypted": "true", "PerformanceMode": "generalPurpose",
                                 "CreationToken": "{{ automation:EXECUTION_ID }}",
                                 "ItemsToRestore": json.dumps([RECOVERY_POINT_ITEM])}},
         "outputs": [{"Name": "RestoreJobId", "Selector": "$.RestoreJobId", "Type": "String"}]},
        {"name": "WaitRestoreJob", "action": "aws:waitForAwsResourceProperty",
         "timeoutSeconds": RESTORE_JOB_TIMEOUT_SECONDS, **untouched,
         "inputs": {"Service": "backup", "Api": "DescribeRestoreJob",
                    "RestoreJobId": "{{ StartRestoreJob.RestoreJobId }}", "PropertySelector": "$.Status",
                    "DesiredValues": ["COMPLETED", "FAILED", "ABORTED"]}},
        {"name": "RestoreJobCompleted", "action": "aws:assertAwsResourceProperty", **untouched,
         "inputs": {"Service": "backup", "Api": "DescribeRestoreJob",
                    "RestoreJobId": "{{ StartRestoreJob.RestoreJobId }}", "PropertySelector": "$.Status",
                    "DesiredValues": ["COMPLETED"]}},
        {"name": "RunSwapTask", "action": "aws:executeAwsApi", **untouched,
         "inputs": _ecs("RunTask", taskDefinition="{{ RestoreTaskFamily }}", launchType="FARGATE", count=1,
                        startedBy="chroma-restore-automation",
                        networkConfiguration={"awsvpcConfiguration": {
                            "subnets": "{{ Subnets }}", "securityGroups": ["{{ SecurityGroup }}"],
                            "assignPublicIp": "DISABLED"}},
                        overrides={"containerOverrides": [{"name": RESTORE_CONTAINER, "command": swap}]}),
         "outputs": [{"Name": "TaskArn", "Selector": "$.tasks[0].taskArn", "Type": "String"}]},
        {"name": "WaitSwapTask", "action": "aws:waitForAwsResourceProperty", "timeoutSeconds": 900,
         "inputs": {**_ecs("DescribeTasks", tasks=["{{ RunSwapTask.TaskArn }}"]),
                    "PropertySelector": "$.tasks[0].lastStatus", "DesiredValues": ["STOPPED"]},
         "onFailure": "step:Failed"},
        # A swap that exited non-zero moved nothing (see gateway.restore_swap), or stopped midway: the node stays
        # stopped for an operator to look (its log, runbooks/restore-from-backup.md).
        {"name": "SwapSucceeded", "action": "aws:assertAwsResourceProperty", "onFailure": "step:Failed",
         "inputs": {**_ecs("DescribeTasks", tasks=["{{ RunSwapTask.TaskArn }}"]),
                    "PropertySelector": "$.tasks[0].containers[0].exitCode", "DesiredValues": ["0"]}},
        _desired("StartNode", 1),
        {"name": "AwaitVerdict", "action": "aws:executeScript", "maxAttempts": VERDICT_ATTEMPTS,
         "timeoutSeconds": 600, "onFailure": "step:StopNodeUnverified",
         "inputs": {"Runtime": "python3.11", "Handler": restore_verdict.HANDLER, "Script": VERDICT_SOURCE,
                    "InputPayload": {"Bucket": "{{ Bucket }}",
                                     "Key": result_key(recovery_point_prefix(node), RESTORE_ID)}},
         "outputs": [{"Name": "Records", "Selector": "$.Payload.Records", "Type": "String"}], "isEnd": True},
        _desired("StopNodeUnverified", 0, "Failed"),
        _desired("StartNodeUntouched", 1, "Failed"),
        {"name": "Failed", "action": "aws:executeScript", "isEnd": True,
         "inputs": {"Runtime": "python3.11", "Handler": "fail", "Script": (
             "def fail(events, context):\n"
             "    raise RuntimeError('the restore did not complete: see the failed step above and "
             "runbooks/restore-from-backup.md')\n")}},
    ]


class RestoreAutomation(Construct):
    """`chroma-<env>-restore` for the primary, `chroma-<env>-<node>-restore` for another node."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, node: str,
                 cluster: ecs.ICluster,
                 service: ecs.IBaseService, task_definition: ecs.FargateTaskDefinition, subnet_ids: list[str],
                 security_group_id: str, file_system_id: str, file_system_arn: str, vault_name: str,
                 vault_arn: str, backup_role_arn: str, bucket: str, cluster_logical_id: str) -> None:
        """`cluster_logical_id`: the cluster's pinned logical id, as cdk-nag renders its name in findings."""
        super().__init__(scope, construct_id)
        family_name = restore_family(config.name, node)
        role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal(SSM_PRINCIPAL),
                        description=f"chroma-{config.name}: restore a recovery point into the node"
                                    + NodeNames(node).of_node)
        role.add_to_policy(iam.PolicyStatement(actions=["ecs:UpdateService", "ecs:DescribeServices"],
                                               resources=[service.service_arn]))
        account = f"{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}"
        family = f"arn:{cdk.Aws.PARTITION}:ecs:{account}:task-definition/{family_name}"
        family_finding = f"arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task-definition/{family_name}"
        role.add_to_policy(iam.PolicyStatement(
            actions=["ecs:RunTask"], resources=[f"{family}:*"],
            conditions={"ArnEquals": {"ecs:cluster": cluster.cluster_arn}}))
        tasks_finding = f"arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:task/<{cluster_logical_id}>/*"
        role.add_to_policy(iam.PolicyStatement(
            actions=["ecs:DescribeTasks"],
            resources=[f"arn:{cdk.Aws.PARTITION}:ecs:{account}:task/{cluster.cluster_name}/*"]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[task_definition.task_role.role_arn, task_definition.obtain_execution_role().role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}))
        role.add_to_policy(iam.PolicyStatement(actions=["backup:ListRecoveryPointsByBackupVault"],
                                               resources=[vault_arn]))
        role.add_to_policy(iam.PolicyStatement(actions=["backup:ListTags", "backup:StartRestoreJob"],
                                               resources=[RECOVERY_POINTS_ARN]))
        role.add_to_policy(iam.PolicyStatement(actions=["backup:DescribeRestoreJob"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[backup_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}))
        prefix = NodePrefix(config.name, node)
        role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[prefix.answers_arn]))
        role.add_to_policy(prefix.list_statement())
        acknowledge(role, {
            f"AwsSolutions-IAM5[Resource::{family_finding}:*]": "RunTask of the restore task's family, any revision "
                                                               "(a deploy makes a new one), on this cluster only.",
            f"AwsSolutions-IAM5[Resource::{tasks_finding}]": "DescribeTasks of this cluster's tasks: the swap task's "
                                                             "id is known only once it runs.",
            RECOVERY_POINTS_FINDING: "ListTags and StartRestoreJob of recovery points, whose ids are not known before "
                                     "AWS Backup creates them; the restore role and vault are fixed.",
            prefix.answers_finding: "The node's verdict on this restore, an object named by the restore's id, under "
                                    "the node's prefix of the requests bucket.",
            "AwsSolutions-IAM5[Resource::*]": "backup:DescribeRestoreJob has no resource-level permissions.",
        })
        parameters: dict[str, tuple[str, str | list[str]]] = {
            "AutomationAssumeRole": ("Role the automation runs as", role.role_arn),
            "RecoveryPoint": ("A recovery point ARN, or latest (the newest with a quiesced copy)", "latest"),
            "ForceVersion": ("true: restore a recovery point taken with another Chroma release", "false"),
            "ChromaVersion": ("The Chroma release the node runs", config.chroma_image.tag),
            "ClusterName": ("ECS cluster", cluster.cluster_name),
            "ServiceName": ("ECS service of the node", service.service_name),
            "RestoreTaskFamily": ("The restore's one-off swap task", task_definition.family),
            "Subnets": ("Subnets of the swap task (the node's)", subnet_ids),
            "SecurityGroup": ("Security group of the swap task (the node's)", security_group_id),
            "FileSystemId": ("EFS file system", file_system_id),
            "FileSystemArn": ("EFS file system ARN", file_system_arn),
            "BackupVaultName": ("AWS Backup vault", vault_name),
            "BackupRoleArn": ("Role AWS Backup restores with", backup_role_arn),
            "Bucket": ("Where the node answers its verdict", bucket),
        }
        self.document = automation_document(self, "Document", family_name, automation_content(
            "Restore a recovery point into the node, as chroma-ops restore does: stop the node, restore the "
            "recovery point's quiesced copy beside the live directory, swap them (the live one kept aside), start "
            "the node with writes held, and wait for its verification against the counts recorded at backup time.",
            parameters, restore_steps(node), outputs=["AwaitVerdict.Records"]))
        self.role = role

