from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constants import SSM_BACKUP_ROLE_ARN, SSM_BACKUP_VAULT_NAME, SSM_FILE_SYSTEM_ID, SSM_TOKEN_SECRET_ARN
from cdk_app.constructs.published import PublishedValues
from cdk_app.constructs.stateful import removal_policy
from cdk_app.storage.backup import FileSystemBackup
from cdk_app.storage.data_key import DataKey
from cdk_app.storage.file_system import ChromaFileSystem
from cdk_app.storage.gateway_token import GatewayTokenSecret
from cdk_app.storage.recovery_points import RecoveryPointStore
from stacks.network_stack import NetworkStack


class StorageStack(cdk.Stack):
    """Stateful resources: the data key, the file system and its backups, the gateway token."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, network: NetworkStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: data, key, backups, token",
                         termination_protection=config.termination_protection, **kwargs)
        removal = removal_policy(config.retain_data)
        self.key = DataKey(self, "DataKey", environment=config.name, removal_policy=removal).key
        storage = ChromaFileSystem(
            self, "FileSystem", config=config.storage, vpc=network.network.vpc,
            subnets=network.network.private_subnets, security_group=network.security_groups.file_system,
            key=self.key, removal_policy=removal)
        self.file_system = storage.file_system
        self.access_point = storage.access_point
        self.recovery_points = RecoveryPointStore(self, "RecoveryPoints", environment=config.name,
                                                  file_system=self.file_system)
        self.backup = FileSystemBackup(self, "Backup", environment=config.name, key=self.key,
                                       removal_policy=removal)
        self.token_secret = GatewayTokenSecret(self, "GatewayToken", environment=config.name, key=self.key,
                                               removal_policy=removal).secret
        published = PublishedValues(self, "Published", environment=config.name)
        published.publish(SSM_FILE_SYSTEM_ID, self.file_system.file_system_id, "EFS file system holding Chroma's data")
        published.publish(SSM_TOKEN_SECRET_ARN, self.token_secret.secret_arn,
                          "Secrets Manager secret holding the client token")
        published.publish(SSM_BACKUP_VAULT_NAME, self.backup.vault.backup_vault_name,
                          "AWS Backup vault holding the file system's recovery points")
        published.publish(SSM_BACKUP_ROLE_ARN, self.backup.role.role_arn,
                          "Role AWS Backup uses for backups and restores of the file system")
