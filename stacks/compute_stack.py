from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.constants import (
    SSM_CLUSTER_NAME,
    SSM_ENDPOINT_URL,
    SSM_LOG_GROUP_NAME,
    SSM_PREVIOUS_TOKEN_GRACE_SECONDS,
    SSM_RECOVERY_POINTS_BUCKET,
    SSM_RESTORE_TASK_FAMILY,
    SSM_SERVICE_NAME,
    SSM_TOKEN_ROTATION_DAYS,
)
from cdk_app.constructs.published import PublishedValues
from cdk_app.constructs.stateful import removal_policy
from cdk_app.node.chroma import ChromaService
from cdk_app.node.cluster import CLUSTER_LOGICAL_ID, Cluster
from cdk_app.node.load_balancer import ChromaLoadBalancer
from cdk_app.node.names import NodeNames
from cdk_app.node.restore_automation import RestoreAutomation
from cdk_app.node.restore_task import RestoreTask
from cdk_app.storage.recovery_points import requests_bucket_name
from lambdas.token_rotation.infrastructure import TokenRotation
from stacks.network_stack import NetworkStack
from stacks.storage_stack import StorageStack


class ComputeStack(cdk.Stack):
    """The Chroma nodes (Chroma + gateway on Fargate, one service each) behind the load balancer."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, network: NetworkStack,
                 storage: StorageStack, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: service and load balancer",
                         **kwargs)
        vpc = network.network.vpc
        # Import the storage stack's key and secret by reference: grants then only touch this stack's role
        # policies, never the key policy, which would make Storage depend on Compute (a cycle).
        key = kms.Key.from_key_arn(self, "DataKey", storage.key.key_arn)
        token_secret = secretsmanager.Secret.from_secret_attributes(
            self, "GatewayToken", secret_complete_arn=storage.token_secret.secret_arn, encryption_key=key)
        cluster = Cluster(self, "Cluster", vpc=vpc).cluster
        # One service per node, each on its own file system (one writer per directory: see cdk_app/node/chroma.py).
        self.nodes = {node.name: ChromaService(
            self, NodeNames(node.name).construct_id("Chroma"), config=config, node=node, cluster=cluster,
            subnets=network.network.private_subnets, security_group=network.security_groups.task,
            file_system=storage.nodes[node.name].file_system, access_point=storage.nodes[node.name].access_point,
            recovery_points=storage.nodes[node.name].recovery_points, token_secret=token_secret, key=key,
            removal_policy=removal_policy(config.retain_data)) for node in config.nodes}
        self.chroma = self.nodes[PRIMARY_NODE]
        self.load_balancer = ChromaLoadBalancer(
            self, "LoadBalancer", config=config, vpc=vpc, security_group=network.security_groups.load_balancer,
            nodes=self.nodes)

        self.token_rotation = TokenRotation(
            self, "TokenRotation", config=config, vpc=vpc, subnets=network.network.private_subnets,
            security_group=network.security_groups.rotation, secret=token_secret, key=key,
            load_balancer=self.load_balancer.alb, service=self.chroma.service,
            removal_policy=removal_policy(config.retain_data))

        # Each node's restore: its one-off swap task (mounting only its file system) and its automation.
        self.restore_tasks: dict[str, RestoreTask] = {}
        subnet_ids = vpc.select_subnets(subnet_group_name=network.network.private_subnets.subnet_group_name).subnet_ids
        for placed in config.nodes:
            names = NodeNames(placed.name)
            service = self.nodes[placed.name]
            file_system = storage.nodes[placed.name]
            task = self.restore_tasks[placed.name] = RestoreTask(
                self, names.construct_id("RestoreTask"), config=config, node=placed,
                runtime_platform=service.runtime_platform, image=service.gateway_image,
                file_system=file_system.file_system, access_point=file_system.restore_access_point, key=key,
                removal_policy=removal_policy(config.retain_data))
            RestoreAutomation(
                self, names.construct_id("RestoreAutomation"), config=config, node=placed.name, cluster=cluster,
                service=service.service, task_definition=task.task_definition, subnet_ids=subnet_ids,
                security_group_id=network.security_groups.task.security_group_id,
                file_system_id=file_system.file_system.file_system_id,
                file_system_arn=file_system.file_system.file_system_arn,
                vault_name=storage.backup.vault.backup_vault_name, vault_arn=storage.backup.vault.backup_vault_arn,
                backup_role_arn=storage.backup.role.role_arn, bucket=requests_bucket_name(config.name),
                cluster_logical_id=CLUSTER_LOGICAL_ID)

        published = PublishedValues(self, "Published", environment=config.name)
        published.publish(SSM_ENDPOINT_URL, self.load_balancer.endpoint_url, "Chroma endpoint (through the gateway)")
        published.publish(SSM_CLUSTER_NAME, self.chroma.cluster.cluster_name, "ECS cluster of the Chroma service")
        for name, node in self.nodes.items():
            names = NodeNames(name)
            published.publish(names.parameter(SSM_SERVICE_NAME), node.service.service_name,
                              "ECS service running the Chroma node" + names.of_node)
            published.publish(names.parameter(SSM_LOG_GROUP_NAME), node.log_group.log_group_name,
                              "CloudWatch Logs group of the Chroma and gateway containers" + names.of_node)
        published.publish(SSM_PREVIOUS_TOKEN_GRACE_SECONDS, str(config.previous_token_grace_minutes * 60),
                          "Seconds the gateway still accepts the previous token after a rotation (clients re-read "
                          "the token more often than this)")
        published.publish(SSM_TOKEN_ROTATION_DAYS, str(config.token_rotation_days),
                          "Days between two rotations of the client token")
        # What chroma-ops restore and the restore automation need to run the swap task and read the node's verdict
        # (its subnets and security group, the node's, are published by the network stack).
        for name, task in self.restore_tasks.items():
            published.publish(NodeNames(name).parameter(SSM_RESTORE_TASK_FAMILY), task.task_definition.family,
                              "Task definition family of the restore's one-off swap task" + NodeNames(name).of_node)
        published.publish(SSM_RECOVERY_POINTS_BUCKET, requests_bucket_name(config.name),
                          "S3 bucket of recovery point requests and the node's answers (and restore verdicts)")
