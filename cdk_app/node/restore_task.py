"""The restore's one-off task: `python -m gateway.restore_swap` (the gateway image) with the file system's root.

Not a service: chroma-ops restore and the restore automation run it (ecs:RunTask) while the node is stopped, with
the arguments of one swap; it stops when the swap is done. Its role may mount the file system only through the
restore access point (root of the file system, acting as root: it renames the node's directory and gives the
restored copy the node's owner), and nothing else.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig, NodeConfig
from cdk_app.constants import RESTORE_CONTAINER, RESTORE_MOUNT_PATH, log_group_name
from cdk_app.log_retention import retention
from cdk_app.nag import acknowledge_image_pull
from cdk_app.node.names import NodeNames

RESTORE_VOLUME = "file-system-root"


def restore_family(environment: str, node: str = PRIMARY_NODE) -> str:
    """Also the name of the node's restore automation document."""
    return f"chroma-{environment}-{NodeNames(node).qualified('restore')}"


class RestoreTask(Construct):
    """One per node: it mounts only that node's file system."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, node: NodeConfig,
                 runtime_platform: ecs.RuntimePlatform, image: ecs.ContainerImage, file_system: efs.IFileSystem,
                 access_point: efs.IAccessPoint, key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        names = NodeNames(node.name)
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=log_group_name(config.name,
                                                                                   names.qualified("restore")),
                                       retention=retention(config.node_task(node).log_retention_days),
                                       encryption_key=key, removal_policy=removal_policy)
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task", family=restore_family(config.name, node.name), cpu=256, memory_limit_mib=512,
            runtime_platform=runtime_platform,
            volumes=[ecs.Volume(name=RESTORE_VOLUME, efs_volume_configuration=ecs.EfsVolumeConfiguration(
                file_system_id=file_system.file_system_id, transit_encryption="ENABLED",
                authorization_config=ecs.AuthorizationConfig(access_point_id=access_point.access_point_id,
                                                             iam="ENABLED")))])
        self.task_definition.task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite",
                     "elasticfilesystem:ClientRootAccess"],
            resources=[file_system.file_system_arn],
            conditions={"StringEquals": {"elasticfilesystem:AccessPointArn": access_point.access_point_arn}}))
        container = self.task_definition.add_container(
            RESTORE_CONTAINER, image=image,
            entry_point=["python", "-m", "gateway.restore_swap"],
            command=["--help"],  # each run passes its swap's arguments (ops/restore_aws.py)
            # Root in the container too: changing a file's owner is checked by the client's kernel first.
            user="0",
            readonly_root_filesystem=True,
            essential=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=RESTORE_CONTAINER, log_group=self.log_group))
        container.add_mount_points(ecs.MountPoint(container_path=RESTORE_MOUNT_PATH, source_volume=RESTORE_VOLUME,
                                                  read_only=False))
        acknowledge_image_pull(self.task_definition.obtain_execution_role())
