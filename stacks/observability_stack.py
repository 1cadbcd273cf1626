from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constructs.stateful import removal_policy
from cdk_app.observability.alarms import AlarmTopic
from cdk_app.observability.dashboard import ChromaDashboard
from cdk_app.observability.remediation import Remediation
from cdk_app.observability.service_alarms import ServiceAlarms
from cdk_app.observability.service_metrics import ServiceMetrics
from lambdas.capacity_check.infrastructure import CapacityCheck
from lambdas.recovery_point.infrastructure import RecoveryPointJob
from lambdas.token_age_check.infrastructure import TokenAgeCheck
from lambdas.token_rotation.function.settings import STEPS as ROTATION_STEPS
from stacks.compute_stack import ComputeStack
from stacks.storage_stack import StorageStack


class ObservabilityStack(cdk.Stack):
    """Alarms (to the SNS topic, with runbooks), the dashboard, the periodic checks and alarm-started remediation."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, storage: StorageStack,
                 compute: ComputeStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: alarms, dashboard, checks",
                         **kwargs)
        removal = removal_policy(config.retain_data)
        # By reference, so grants never write this stack's roles into the storage stack's key policy (a cycle).
        key = kms.Key.from_key_arn(self, "DataKey", storage.key.key_arn)
        secret = secretsmanager.Secret.from_secret_attributes(
            self, "GatewayToken", secret_complete_arn=storage.token_secret.secret_arn, encryption_key=key)
        self.alarm_topic = AlarmTopic(self, "Alarms", environment=config.name, key=storage.key,
                                      emails=config.alarm_emails).topic

        capacity = CapacityCheck(self, "CapacityCheck", config=config, file_system=storage.file_system, key=key,
                                 removal_policy=removal)
        token_age = TokenAgeCheck(self, "TokenAgeCheck", config=config, secret=secret, key=key,
                                  removal_policy=removal)
        recovery_points = RecoveryPointJob(
            self, "RecoveryPoint", config=config, file_system_arn=storage.file_system.file_system_arn,
            vault_name=storage.backup.vault.backup_vault_name, vault_arn=storage.backup.vault.backup_vault_arn,
            backup_role_arn=storage.backup.role.role_arn, key=key, removal_policy=removal)
        metrics = ServiceMetrics(
            environment=config.name, load_balancer=compute.load_balancer.alb,
            target_group=compute.load_balancer.target_group, service=compute.chroma.service,
            file_system_id=storage.file_system.file_system_id,
            check_period=cdk.Duration.minutes(config.capacity.check_every_minutes))
        self.alarms = ServiceAlarms(
            self, "ServiceAlarms", config=config, metrics=metrics, topic=self.alarm_topic,
            rotation_errors=compute.token_rotation.errors(), capacity_errors=capacity.errors(),
            token_age_errors=token_age.errors(), recovery_point_errors=recovery_points.errors())
        self.remediation = Remediation(
            self, "Remediation", config=config, service=compute.chroma.service, cluster=compute.chroma.cluster,
            recovery_point_job=recovery_points.function, alarms=self.alarms.alarms)
        rotation = {f"{step} {outcome}": metrics.rotation_step(f"Step{outcome}", step)
                    for step in ROTATION_STEPS for outcome in ("Succeeded", "Failed")}
        ChromaDashboard(self, "Dashboard", config=config, metrics=metrics, alarms=self.alarms.all(),
                        rotation_metrics=rotation)
