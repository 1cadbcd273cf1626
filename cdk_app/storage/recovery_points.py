"""Where quiesced recovery points live (issue #12): a directory beside the node's on its file system (its access point
is in storage/file_system.py), and the S3 bucket through which the backup job asks the node for one and reads its
answer (gateway/snapshot_protocol.py).

AWS Backup keeps the whole file system, so every recovery point it holds contains the latest quiesced copy. The
bucket holds only small JSON requests and answers, kept 90 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import PRIMARY_NODE
from cdk_app.constants import recovery_point_prefix
from cdk_app.nag import acknowledge
from gateway.snapshot_protocol import request_key, result_key
from gateway.tenant_moves import answer_key, control_key

ANSWER_RETENTION_DAYS = 90


def requests_bucket_name(environment: str, account: str = cdk.Aws.ACCOUNT_ID, region: str = cdk.Aws.REGION) -> str:
    """Fixed, so the node's role can name the bucket's keys without a cross-stack reference (and cdk-nag, given
    its placeholders for account and region, can be told exactly which resource pattern is accepted). Unique per
    account and region; at most 63 characters."""
    return f"chroma-{environment}-rp-{account}-{region}"


# Every recovery point of the account and region: their ids are not known before AWS Backup creates them.
RECOVERY_POINTS_ARN = f"arn:{cdk.Aws.PARTITION}:backup:{cdk.Aws.REGION}:{cdk.Aws.ACCOUNT_ID}:recovery-point:*"
RECOVERY_POINTS_FINDING = ("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:backup:<AWS::Region>:<AWS::AccountId>:"
                           "recovery-point:*]")


@dataclass(frozen=True)
class NodePrefix:
    """The node's prefix of the requests bucket (gateway/snapshot_protocol.py): the ARNs each party is granted."""

    environment: str
    node: str = PRIMARY_NODE

    @property
    def prefix(self) -> str:
        return recovery_point_prefix(self.node)

    @property
    def bucket_arn(self) -> str:
        return f"arn:{cdk.Aws.PARTITION}:s3:::{requests_bucket_name(self.environment)}"

    @property
    def request_arn(self) -> str:
        return f"{self.bucket_arn}/{request_key(self.prefix)}"

    @property
    def answers_arn(self) -> str:
        """The node's answers: one object per recovery point or restore id."""
        return f"{self.bucket_arn}/{result_key(self.prefix, '*')}"

    @property
    def move_control_arn(self) -> str:
        """The tenant-move control the node reads (gateway/tenant_moves.py)."""
        return f"{self.bucket_arn}/{control_key(self.prefix)}"

    @property
    def move_answers_arn(self) -> str:
        return f"{self.bucket_arn}/{answer_key(self.prefix, '*')}"

    @property
    def move_answers_finding(self) -> str:
        return self._finding(answer_key(self.prefix, "*"))

    @property
    def answers_finding(self) -> str:
        return self._finding(result_key(self.prefix, "*"))

    def _finding(self, key: str) -> str:
        """The cdk-nag finding a wildcard key of the bucket raises, as cdk-nag renders it."""
        bucket = requests_bucket_name(self.environment, "<AWS::AccountId>", "<AWS::Region>")
        return f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::{bucket}/{key}]"

    def list_statement(self) -> iam.PolicyStatement:
        """Listing, only under the node's prefix, makes a missing answer a 404 rather than a 403."""
        return iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket_arn],
                                   conditions={"StringLike": {"s3:prefix": f"{self.prefix}/*"}})


class RecoveryPointRequests(Construct):
    """The environment's requests bucket, shared by its nodes (each under its own prefix)."""

    def __init__(self, scope: Construct, construct_id: str, *, environment: str) -> None:
        super().__init__(scope, construct_id)
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
