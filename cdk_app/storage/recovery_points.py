"""Where quiesced recovery points live (issue #12): a directory beside the node's on the same file system, and the
S3 bucket through which the backup job asks the node for one and reads its answer (gateway/snapshot_protocol.py).

The directory has its own access point (a node's access point roots it in its own directory); AWS Backup keeps
the whole file system, so every recovery point it holds contains the latest quiesced copy. The bucket holds only
small JSON requests and answers, kept 90 days.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_efs as efs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.constants import EFS_POSIX_GID, EFS_POSIX_UID, RECOVERY_POINTS_ROOT
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge

ANSWER_RETENTION_DAYS = 90


def requests_bucket_name(environment: str, account: str = cdk.Aws.ACCOUNT_ID, region: str = cdk.Aws.REGION) -> str:
    """Fixed, so the node's role can name the bucket's keys without a cross-stack reference (and cdk-nag, given
    its placeholders for account and region, can be told exactly which resource pattern is accepted). Unique per
    account and region; at most 63 characters."""
    return f"chroma-{environment}-rp-{account}-{region}"


class RecoveryPointStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str,
                 file_system: efs.FileSystem) -> None:
        super().__init__(scope, construct_id)
        self.access_point = file_system.add_access_point(
            "RecoveryPoints",
            path=RECOVERY_POINTS_ROOT,
            create_acl=efs.Acl(owner_uid=str(EFS_POSIX_UID), owner_gid=str(EFS_POSIX_GID), permissions="750"),
            posix_user=efs.PosixUser(uid=str(EFS_POSIX_UID), gid=str(EFS_POSIX_GID)),
        )
        pin_logical_id(self.access_point, "ChromaRecoveryPointsAccessPoint")
        self.requests = s3.Bucket(
            self, "Requests",
            bucket_name=requests_bucket_name(environment),
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                expiration=cdk.Duration.days(ANSWER_RETENTION_DAYS),
                noncurrent_version_expiration=cdk.Duration.days(ANSWER_RETENTION_DAYS))],
            # Answers are the backup history's evidence: kept on stack deletion, expired by the lifecycle rule.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.requests, {
            "AwsSolutions-S1": "The bucket holds only the backup job's requests and the node's answers (small "
                               "JSON, no data); its access is in CloudTrail, a log bucket would add nothing.",
        })
