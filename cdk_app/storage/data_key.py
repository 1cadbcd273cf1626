"""The environment's customer-managed KMS key: EFS, the token secret, the alarm topic and container logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constants import SERVICE_NAME, log_group_name
from cdk_app.constructs.log_encryption import allow_log_groups
from cdk_app.constructs.stateful import pin_logical_id


class DataKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self, "Key",
            description=f"Chroma {environment}: EFS data, gateway token, alarm topic, container logs",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=cdk.Duration.days(30),
        )
        pin_logical_id(self.key, "ChromaDataKey")
        # CloudWatch alarms publish to the encrypted SNS topic.
        self.key.grant(iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*")
        # Log groups are named /chroma/<env>/...; before that, CloudFormation named them after their stack
        # (chroma-<env>-compute-..., chroma-<env>-observability-...). Those retained groups keep their history
        # encrypted with this key until their retention ends, so CloudWatch Logs must still be able to read them.
        allow_log_groups(self.key, log_group_name(environment, "*"), f"{SERVICE_NAME}-{environment}-*")

