"""Key policy for CloudWatch Logs: a customer-managed key usable by chosen log groups only."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms


def allow_log_groups(key: kms.Key, *name_patterns: str) -> None:
    """Let CloudWatch Logs use `key` for the log groups of this account and region whose names match a pattern.

    CloudWatch Logs names the log group in the encryption context of every call, which pins account, region and
    name. (No aws:SourceAccount condition: CloudWatch Logs documents the encryption context as the way to scope its
    key use, and the account is already part of that ARN.)
    """
    stack = cdk.Stack.of(key)
    key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": [
            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:{pattern}"
            for pattern in name_patterns]}},
    ))
