"""CDK: the scheduled check of how long ago the gateway token rotated (an alarm says when it is overdue)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constants import log_group_name
from cdk_app.constructs.scheduled_function import ScheduledFunction
from lambdas.token_age_check.function import settings as runtime


class TokenAgeCheck(ScheduledFunction):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 secret: secretsmanager.ISecret, key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(
            scope, construct_id, unit="token_age_check",
            description=f"Chroma {config.name}: days since the gateway token rotated",
            service=runtime.service_name(config.name),
            schedule=events.Schedule.rate(cdk.Duration.hours(1)),
            environment={runtime.ENV_SECRET_ID: secret.secret_arn, runtime.ENV_ENVIRONMENT: config.name},
            log_group_name=log_group_name(config.name, "token-age-check"),
            log_retention_days=config.task.log_retention_days, log_key=key, removal_policy=removal_policy)
        # Metadata only: DescribeSecret reveals rotation dates, never the value.
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["secretsmanager:DescribeSecret"],
                                                             resources=[secret.secret_arn]))
