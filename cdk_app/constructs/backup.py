"""AWS Backup of the Chroma file system: an encrypted vault and a daily plan from the environment's config."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_efs as efs
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import BackupConfig
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge


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
        selection = self.plan.add_selection("FileSystem", resources=[
            backup.BackupResource.from_efs_file_system(file_system)])
        acknowledge(selection, {
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSBackupServiceRolePolicyForBackup]": "AWS Backup's selection role uses the AWS-managed "
                                 "AWSBackupServiceRolePolicyForBackup, the documented minimal policy for taking "
                                 "backups of the selected resources.",
        })
