from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.constants import SSM_BACKUP_ROLE_ARN, SSM_BACKUP_VAULT_NAME, SSM_FILE_SYSTEM_ID, SSM_TOKEN_SECRET_ARN
from cdk_app.constructs.published import PublishedValues
from cdk_app.constructs.stateful import removal_policy
from cdk_app.node.names import NodeNames
from cdk_app.storage.backup import FileSystemBackup
from cdk_app.storage.data_key import DataKey
from cdk_app.storage.file_system import ChromaFileSystem
from cdk_app.storage.gateway_token import GatewayTokenSecret
from cdk_app.storage.recovery_points import RecoveryPointRequests
from stacks.network_stack import NetworkStack


class StorageStack(cdk.Stack):
    """Stateful resources: the data key, the file system and its backups, the gateway token."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, network: NetworkStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: data, key, backups, token",
                         termination_protection=config.termination_protection, **kwargs)
        removal = removal_policy(config.retain_data)
        self.key = DataKey(self, "DataKey", environment=config.name, removal_policy=removal).key
        # One file system per node; the primary's keeps its construct path (its mount targets' ids derive from it).
        self.nodes: dict[str, ChromaFileSystem] = {
            node.name: ChromaFileSystem(
                self, NodeNames(node.name).construct_id("FileSystem"), node=node.name, config=config.storage,
                vpc=network.network.vpc, subnets=network.network.private_subnets,
                security_group=network.security_groups.file_system, key=self.key, removal_policy=removal)
            for node in config.nodes}
        self.file_system = self.nodes[PRIMARY_NODE].file_system
        self.requests = RecoveryPointRequests(self, "RecoveryPoints", environment=config.name).requests
        self.backup = FileSystemBackup(self, "Backup", environment=config.name, key=self.key,
                                       removal_policy=removal)
        self.token_secret = GatewayTokenSecret(self, "GatewayToken", environment=config.name, key=self.key,
                                               removal_policy=removal).secret
        published = PublishedValues(self, "Published", environment=config.name)
        for name, node in self.nodes.items():
            published.publish(NodeNames(name).parameter(SSM_FILE_SYSTEM_ID), node.file_system.file_system_id,
                              "EFS file system holding Chroma's data" + NodeNames(name).of_node)
        published.publish(SSM_TOKEN_SECRET_ARN, self.token_secret.secret_arn,
                          "Secrets Manager secret holding the client token")
        published.publish(SSM_BACKUP_VAULT_NAME, self.backup.vault.backup_vault_name,
                          "AWS Backup vault holding the file system's recovery points")
        published.publish(SSM_BACKUP_ROLE_ARN, self.backup.role.role_arn,
                          "Role AWS Backup uses for backups and restores of the file system")
