from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.constructs.stateful import removal_policy
from cdk_app.node.names import NodeNames
from cdk_app.observability.alarms import AlarmTopic
from cdk_app.observability.dashboard import ChromaDashboard
from cdk_app.observability.remediation import Remediation
from cdk_app.observability.service_alarms import NodeSignals, ServiceAlarms
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

        token_age = TokenAgeCheck(self, "TokenAgeCheck", config=config, secret=secret, key=key,
                                  removal_policy=removal)
        signals: dict[str, NodeSignals] = {}
        recovery_point_jobs: dict[str, RecoveryPointJob] = {}
        for node in config.nodes:
            names = NodeNames(node.name)
            file_system = storage.nodes[node.name].file_system
            capacity = CapacityCheck(self, names.construct_id("CapacityCheck"), config=config, node=node,
                                     file_system=file_system, key=key, removal_policy=removal)
            recovery_point_jobs[node.name] = RecoveryPointJob(
                self, names.construct_id("RecoveryPoint"), config=config, node=node,
                file_system_arn=file_system.file_system_arn, vault_name=storage.backup.vault.backup_vault_name,
                vault_arn=storage.backup.vault.backup_vault_arn, backup_role_arn=storage.backup.role.role_arn,
                key=key, removal_policy=removal)
            metrics = ServiceMetrics(
                environment=config.name, node=node.name, load_balancer=compute.load_balancer.alb,
                target_group=compute.load_balancer.target_groups[node.name],
                service=compute.nodes[node.name].service, file_system_id=file_system.file_system_id,
                check_period=cdk.Duration.minutes(config.capacity.check_every_minutes))
            signals[node.name] = NodeSignals(metrics, config.node_task(node).memory_mib, capacity.errors(),
                                             recovery_point_jobs[node.name].errors())
        self.alarms = ServiceAlarms(
            self, "ServiceAlarms", config=config, nodes=signals, topic=self.alarm_topic,
            rotation_errors=compute.token_rotation.errors(), token_age_errors=token_age.errors())
        # Alarm-started automations act on the primary node (config.alarms.automations names its alarms).
        self.remediation = Remediation(
            self, "Remediation", config=config, service=compute.chroma.service, cluster=compute.chroma.cluster,
            recovery_point_job=recovery_point_jobs[PRIMARY_NODE].function, alarms=self.alarms.alarms)
        primary = signals[PRIMARY_NODE].metrics
        rotation = {f"{step} {outcome}": primary.rotation_step(f"Step{outcome}", step)
                    for step in ROTATION_STEPS for outcome in ("Succeeded", "Failed")}
        ChromaDashboard(self, "Dashboard", config=config, nodes={n: s.metrics for n, s in signals.items()},
                        alarms=self.alarms.all(), rotation_metrics=rotation)
