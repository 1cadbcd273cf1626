"""AWS Backup of the Chroma file system: an encrypted vault, and the role AWS Backup uses for backups and restores.

No backup plan: a plan's schedule copies the file system while Chroma writes (a torn copy, see
docs/recovery-points.md). The daily backup job (lambdas/recovery_point) has the node take a quiesced copy first,
then starts the AWS Backup job itself, with the retention from the environment's config.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_backup as backup
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge

_BACKUP_POLICIES = ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores")


class FileSystemBackup(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.vault = backup.BackupVault(
            self, "Vault",
            backup_vault_name=f"chroma-{environment}",
            encryption_key=key,
            removal_policy=removal_policy,
        )
        pin_logical_id(self.vault, "ChromaBackupVault")
        # The role AWS Backup uses for the backup job's backups and for restores (chroma-ops restore).
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
                             description=f"Chroma {environment}: AWS Backup of the file system, and restores",
                             managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(f"service-role/{name}")
                                               for name in _BACKUP_POLICIES])
        acknowledge(self.role, {
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/{name}]":
                f"{name} is AWS Backup's documented minimal policy for its service role; AWS keeps it in step "
                "with the services Backup supports."
            for name in _BACKUP_POLICIES
        })
