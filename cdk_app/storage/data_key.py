"""The environment's customer-managed KMS key: EFS, the token secret, the alarm topic and container logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constructs.stateful import pin_logical_id


class DataKey(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
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
        # CloudWatch Logs encrypts this environment's log groups, and only those.
        logs_principal = iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[logs_principal],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"}},
        ))
