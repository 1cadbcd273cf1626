"""CDK: the gateway token's rotation function, its least-privilege permissions and its schedule."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constants import HTTP_PORT, HTTPS_PORT, log_group_name
from cdk_app.constructs.python_function import PythonFunction
from cdk_app.constructs.stateful import pin_logical_id
from gateway.settings import PENDING_MAX_AGE_SECONDS
from lambdas.token_rotation.function import settings as runtime

# setSecret waits this long for the gateway (which re-reads the secret every 15 s) to accept the pending token.
GATEWAY_WAIT_SECONDS = 150


class TokenRotation(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, vpc: ec2.IVpc,
                 subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup, secret: secretsmanager.ISecret,
                 key: kms.IKey, load_balancer: elbv2.IApplicationLoadBalancer, service: ecs.FargateService,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        tls = config.tls
        self.function = PythonFunction(
            self, "Function",
            unit="token_rotation",
            handler="handler.lambda_handler",
            description=f"Chroma {config.name}: rotates the gateway token",
            service=runtime.service_name(config.name),

            network=(vpc, subnets, security_group),
            log_group_name=log_group_name(config.name, "token-rotation"),
            log_retention_days=config.task.log_retention_days, log_key=key,
            removal_policy=removal_policy,
            timeout=cdk.Duration.seconds(GATEWAY_WAIT_SECONDS + 60),
            environment={
                runtime.ENV_ENDPOINT_HOST: load_balancer.load_balancer_dns_name,
                runtime.ENV_ENDPOINT_PORT: str(HTTPS_PORT if tls else HTTP_PORT),
                runtime.ENV_TLS_SERVER_NAME: tls.domain_name if tls else "",
                runtime.ENV_WAIT_SECONDS: str(GATEWAY_WAIT_SECONDS),
                runtime.ENV_PENDING_MAX_AGE_SECONDS: str(PENDING_MAX_AGE_SECONDS),
            },
        ).function

        # Exactly what the four steps call, on this secret only; no GetRandomPassword (tokens come from `secrets`).
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                     "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
            resources=[secret.secret_arn],
        ))
        region = cdk.Stack.of(self).region
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                                         "kms:EncryptionContext:SecretARN": secret.secret_arn}},
        ))
        self.function.add_permission(
            "InvokedBySecretsManager", principal=iam.ServicePrincipal("secretsmanager.amazonaws.com"),
            source_arn=secret.secret_arn)
        permission = self.function.node.find_child("InvokedBySecretsManager")

        # Declared here (not with the secret, in the storage stack) because it needs the function: no cycle.
        self.schedule = secretsmanager.CfnRotationSchedule(
            self, "Schedule",
            secret_id=secret.secret_arn,
            rotation_lambda_arn=self.function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                automatically_after_days=config.token_rotation_days),
            # The first rotation waits for the schedule: not in the middle of the deployment that creates the service.
            rotate_immediately_on_update=False,
        )
        pin_logical_id(self.schedule, "TokenRotationScheduleCD7439BB")
        self.schedule.node.add_dependency(permission)
        self.schedule.node.add_dependency(service)

    def errors(self) -> cloudwatch.Metric:
        """Failed invocations: the 'rotation failed' alarm watches this."""
        return self.function.metric_errors(period=cdk.Duration.minutes(5))
