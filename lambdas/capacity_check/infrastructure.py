"""CDK: the scheduled EFS capacity check, allowed to read only its file system's size and CloudWatch metrics."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_efs as efs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EnvironmentConfig, NodeConfig
from cdk_app.constants import log_group_name
from cdk_app.constructs.scheduled_function import ScheduledFunction
from cdk_app.nag import acknowledge
from cdk_app.node.names import NodeNames
from lambdas.capacity_check.function import settings as runtime


class CapacityCheck(ScheduledFunction):
    """One per node: its file system against the budget, its data against its task's memory."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, node: NodeConfig,
                 file_system: efs.IFileSystem, key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        names = NodeNames(node.name)
        task = config.node_task(node)
        super().__init__(
            scope, construct_id, unit="capacity_check",
            description=f"Chroma {config.name}: EFS capacity against budget, growth, days until full{names.of_node}",
            service=runtime.service_name(config.name, node.name),
            schedule=events.Schedule.rate(cdk.Duration.minutes(config.capacity.check_every_minutes)),
            environment={
                runtime.ENV_FILE_SYSTEM_ID: file_system.file_system_id,
                runtime.ENV_BUDGET_GIB: str(config.capacity.budget_gib),
                runtime.ENV_TASK_MEMORY_MIB: str(task.memory_mib),
                runtime.ENV_ENVIRONMENT: config.name,
                runtime.ENV_HISTORY_DAYS: "14",
            },
            log_group_name=log_group_name(config.name, names.qualified("capacity-check")),
            log_retention_days=task.log_retention_days, log_key=key, removal_policy=removal_policy)
        self.function.add_to_role_policy(iam.PolicyStatement(
            actions=["elasticfilesystem:DescribeFileSystems"], resources=[file_system.file_system_arn]))
        self.function.add_to_role_policy(iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"]))
        role = self.function.role
        assert role is not None
        acknowledge(role, {
            "AwsSolutions-IAM5[Resource::*]": "X-Ray's trace actions and cloudwatch:GetMetricData (reading the "
                                              "StorageBytes history) have no resource-level permissions.",
        })
