"""AWS Backup of the Chroma file system: an encrypted vault and a daily plan from the environment's config."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_efs as efs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import BackupConfig
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge

_BACKUP_POLICIES = ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores")


class FileSystemBackup(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: BackupConfig, environment: str,
                 file_system: efs.IFileSystem, key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.vault = backup.BackupVault(
            self, "Vault",
            backup_vault_name=f"chroma-{environment}",
            encryption_key=key,
            removal_policy=removal_policy,
        )
        pin_logical_id(self.vault, "ChromaBackupVault")
        self.plan = backup.BackupPlan(self, "Plan", backup_vault=self.vault,
                                      backup_plan_name=f"chroma-{environment}")
        self.plan.add_rule(backup.BackupPlanRule(
            rule_name="Daily",
            schedule_expression=events.Schedule.cron(hour=str(config.hour_utc), minute=str(config.minute_utc)),
            delete_after=cdk.Duration.days(config.retention_days),
            start_window=cdk.Duration.hours(1),
            completion_window=cdk.Duration.hours(8),
        ))
        # The role AWS Backup uses for scheduled and on-demand backups, and for restores (see the restore runbook).
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
                             description=f"Chroma {environment}: AWS Backup of the file system, and restores",
                             managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(f"service-role/{name}")
                                               for name in _BACKUP_POLICIES])
        self.plan.add_selection("FileSystem", role=self.role,
                                resources=[backup.BackupResource.from_efs_file_system(file_system)])
        acknowledge(self.role, {
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{name}]":
                f"{name} is AWS Backup's documented minimal policy for its service role; AWS keeps it in step "
                "with the services Backup supports."
            for name in _BACKUP_POLICIES
        })
