"""One Chroma node on Fargate: the official Chroma image on loopback plus the gateway sidecar, on EFS.

Single-writer invariant: desired count 1, minimum healthy 0 %, maximum 100 %, so ECS stops the old task before it
starts a new one and two Chroma processes never share the node's directory.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, CpuArchitecture, EnvironmentConfig, NodeConfig, TaskConfig
from cdk_app.constants import (
    CHROMA_CONFIG_PATH,
    CHROMA_DATA_PATH,
    CHROMA_LISTEN_ADDRESS,
    CHROMA_MAX_PAYLOAD_BYTES,
    CHROMA_PORT,
    CHROMA_STOP_TIMEOUT_SECONDS,
    GATEWAY_PORT,
    GATEWAY_STOP_TIMEOUT_SECONDS,
    NODE_START_PATH,
    log_group_name,
    recovery_point_prefix,
    writer_lock_wait_seconds,
)
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.log_retention import retention
from cdk_app.nag import acknowledge, acknowledge_image_pull
from cdk_app.node.names import NodeNames
from cdk_app.storage.recovery_points import NodePrefix, requests_bucket_name
from gateway import settings as gw
from ops.capacity import collections_per_task


def index_cache_capacity(task: TaskConfig) -> int:
    """How many collections of the configured size the task holds in memory (validation ensures at least one)."""
    size = task.collection_size
    return collections_per_task(task.memory_mib, size.vectors, size.dim)


def alb_idle_timeout_seconds(config: EnvironmentConfig) -> int:
    """Longer than every node's upstream timeout, so a gateway answers (504) before the ALB gives up."""
    return max(config.node_task(node).upstream_timeout_seconds for node in config.nodes) + 10


def placement_environment(config: EnvironmentConfig, node: NodeConfig) -> dict[str, str]:
    """The gateway's tenant placement (gateway/haproxy_config._placement): the tenants placed on this node and on
    the others. Nothing for a lone primary node, whose template stays as it was before nodes existed."""
    elsewhere = sorted(tenant for tenant, owner in config.tenant_placement.items() if owner != node.name)
    variables = {}
    if node.tenants:
        variables[gw.ENV_NODE_TENANTS] = ",".join(node.tenants)
    if elsewhere:
        variables[gw.ENV_TENANTS_ELSEWHERE] = ",".join(elsewhere)
    if node.name != PRIMARY_NODE:
        variables[gw.ENV_NODE] = node.name
        variables[gw.ENV_DEFAULT_NODE] = "false"
    return variables


REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMA_IMAGE_DIR = Path(__file__).resolve().parent / "chroma_image"
GATEWAY_DIR = REPO_ROOT / "gateway"
DATA_VOLUME = "chroma-data"
# Task storage for the gateway's rendered HAProxy configuration, token map and admin socket (read-only root fs).
GATEWAY_RUN_VOLUME = "gateway-run"
GATEWAY_RUN_PATH = "/run/gateway"
NODE_START_VOLUME = "node-start"
RECOVERY_POINTS_VOLUME = "recovery-points"
RECOVERY_POINTS_PATH = "/recovery-points"
# Chroma's index cache capacity (how many collections' indexes it keeps loaded), as Chroma reads it from its
# environment (`__` nests config keys): segment_manager.hnsw_index_pool_cache_config.memory.capacity.
INDEX_CACHE_ENV = "CHROMA_SEGMENT_MANAGER__HNSW_INDEX_POOL_CACHE_CONFIG__MEMORY__CAPACITY"
# Measurement tools beside the gateway's code, which need chromadb: not shipped in the image.
GATEWAY_DEVELOPMENT_TOOLS = ("bench.py", "floods.py", "crash_trials.py", "node_speed.py")
CHROMA_CONTAINER = "chroma"
GATEWAY_CONTAINER = "gateway"

_ARCHITECTURE = {
    CpuArchitecture.ARM64: (ecs.CpuArchitecture.ARM64, ecr_assets.Platform.LINUX_ARM64),
    CpuArchitecture.X86_64: (ecs.CpuArchitecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
}


class ChromaService(Construct):
    """One node: its own service, task, log group and file system; the cluster is the environment's."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, node: NodeConfig,
                 cluster: ecs.Cluster, subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup,
                 file_system: efs.IFileSystem, access_point: efs.IAccessPoint, recovery_points: efs.IAccessPoint,
                 token_secret: secretsmanager.ISecret, key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        names = NodeNames(node.name)
        task = config.node_task(node)
        cpu_architecture, platform = _ARCHITECTURE[task.architecture]
        self.node_name = node.name
        self.cluster = cluster
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=log_group_name(config.name,
                                                                                   names.qualified("node")),
                                       retention=retention(task.log_retention_days),
                                       encryption_key=key, removal_policy=removal_policy)

        self.runtime_platform = ecs.RuntimePlatform(cpu_architecture=cpu_architecture,
                                                    operating_system_family=ecs.OperatingSystemFamily.LINUX)
        self.task_definition = ecs.FargateTaskDefinition(
            self, "Task",
            cpu=task.cpu,
            memory_limit_mib=task.memory_mib,
            runtime_platform=self.runtime_platform,
            volumes=[ecs.Volume(name=DATA_VOLUME, efs_volume_configuration=ecs.EfsVolumeConfiguration(
                file_system_id=file_system.file_system_id,
                transit_encryption="ENABLED",
                authorization_config=ecs.AuthorizationConfig(access_point_id=access_point.access_point_id,
                                                             iam="ENABLED"),
            )), ecs.Volume(name=RECOVERY_POINTS_VOLUME, efs_volume_configuration=ecs.EfsVolumeConfiguration(
                file_system_id=file_system.file_system_id,
                transit_encryption="ENABLED",
                authorization_config=ecs.AuthorizationConfig(access_point_id=recovery_points.access_point_id,
                                                             iam="ENABLED"),
            )), ecs.Volume(name=GATEWAY_RUN_VOLUME), ecs.Volume(name=NODE_START_VOLUME)],
        )
        task_role = self.task_definition.task_role
        # Mount and write through this node's access point and the recovery points' only (no root access: each
        # access point forces the owner and roots the mount in its own directory).
        task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"],
            resources=[file_system.file_system_arn],
            conditions={"StringEquals": {"elasticfilesystem:AccessPointArn": [
                access_point.access_point_arn, recovery_points.access_point_arn]}},
        ))
        # Recovery points: read the backup job's request, read and write the answers (gateway/snapshot_requests.py).
        prefix = NodePrefix(config.name, node.name)
        requests_bucket = requests_bucket_name(config.name)
        # Tenant moves: read the control document, answer each one (gateway/tenant_moves.py).
        task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[prefix.request_arn, prefix.answers_arn, prefix.move_control_arn]))
        task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[prefix.answers_arn, prefix.move_answers_arn]))
        task_role.add_to_principal_policy(prefix.list_statement())
        acknowledge(task_role, {
            prefix.answers_finding: "The node answers each recovery point request (and verifies each restore) in an "
                                    "object named by its id, under its own prefix of the requests bucket; nothing "
                                    "else in the bucket.",
            prefix.move_answers_finding: "The node answers each tenant-move control document in an object named by "
                                         "its id, under its own prefix of the requests bucket.",
        })
        # The gateway reads the token (all stages) at run time, so a rotation needs no restart.
        token_secret.grant_read(task_role)
        # The secret is encrypted with the data key. The key lives in the storage stack, so CDK's via-service grant
        # (a key-policy statement naming this role) would be a cross-stack cycle: say it in the role's policy.
        region = cdk.Stack.of(self).region
        task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["kms:Decrypt"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                                         "kms:EncryptionContext:SecretARN": token_secret.secret_arn}},
        ))

        lock_wait = writer_lock_wait_seconds(task.health_check_grace_seconds)
        self.chroma = self.task_definition.add_container(
            CHROMA_CONTAINER,
            image=ecs.ContainerImage.from_asset(
                str(CHROMA_IMAGE_DIR), platform=platform,
                build_args={"CHROMA_IMAGE": config.chroma_image.reference}),
            command=["run", CHROMA_CONFIG_PATH],
            environment={
                # Override the baked-in config so the template itself shows Chroma bound to loopback.
                "CHROMA_LISTEN_ADDRESS": CHROMA_LISTEN_ADDRESS,
                "CHROMA_PORT": str(CHROMA_PORT),
                "CHROMA_PERSIST_PATH": CHROMA_DATA_PATH,
                # The image's entrypoint waits this long for the directory's writer lock, then gives up.
                "WRITER_LOCK_WAIT_SECONDS": str(lock_wait),
                # ... then for the gateway's start check of the directory: longer than the grace, the load
                # balancer's health checks would stop the task anyway.
                "NODE_START_DIR": NODE_START_PATH,
                "START_CHECK_WAIT_SECONDS": str(task.health_check_grace_seconds),
                # Bounded memory: Chroma keeps at most this many collections' indexes loaded, as many as the task
                # holds at task.collection_size (the capacity model); others load from EFS when used.
                INDEX_CACHE_ENV: str(index_cache_capacity(task)),
            },
            essential=True,
            logging=ecs.LogDrivers.aws_logs(stream_prefix=CHROMA_CONTAINER, log_group=self.log_group),
            ulimits=[ecs.Ulimit(name=ecs.UlimitName.NOFILE, soft_limit=65536, hard_limit=65536)],
            stop_timeout=cdk.Duration.seconds(CHROMA_STOP_TIMEOUT_SECONDS),
        )
        self.chroma.add_mount_points(
            ecs.MountPoint(container_path=CHROMA_DATA_PATH, source_volume=DATA_VOLUME, read_only=False),
            ecs.MountPoint(container_path=NODE_START_PATH, source_volume=NODE_START_VOLUME, read_only=False))

        self.gateway_image = ecs.ContainerImage.from_asset(
            str(GATEWAY_DIR), platform=platform,
            exclude=["tests", *GATEWAY_DEVELOPMENT_TOOLS, "**/__pycache__", "*.pyc"])
        self.gateway = self.task_definition.add_container(
            GATEWAY_CONTAINER,
            image=self.gateway_image,
            environment={
                gw.ENV_PORT: str(GATEWAY_PORT),
                gw.ENV_UPSTREAM_URL: f"http://{CHROMA_LISTEN_ADDRESS}:{CHROMA_PORT}",
                gw.ENV_UPSTREAM_TIMEOUT_SECONDS: str(task.upstream_timeout_seconds),
                gw.ENV_MAX_BODY_BYTES: str(CHROMA_MAX_PAYLOAD_BYTES),
                gw.ENV_TOKEN_SECRET_ID: token_secret.secret_arn,
                gw.ENV_DRAIN_SECONDS: str(GATEWAY_STOP_TIMEOUT_SECONDS - 5),
                gw.ENV_PREVIOUS_TOKEN_GRACE_SECONDS: str(config.previous_token_grace_minutes * 60),
                # Longer than the load balancer's idle timeout, so the ALB, not the gateway, closes idle connections.
                gw.ENV_KEEPALIVE_SECONDS: str(alb_idle_timeout_seconds(config) + 30),
                gw.ENV_RUNTIME_DIR: GATEWAY_RUN_PATH,
                gw.ENV_PENDING_MAX_AGE_SECONDS: str(gw.PENDING_MAX_AGE_SECONDS),
                gw.ENV_ENVIRONMENT: config.name,
                # The start check: the node's directory (read-only here) and the volume shared with the entrypoint;
                # wait a little longer for the lock than the entrypoint itself does.
                gw.ENV_NODE_DATA_DIR: CHROMA_DATA_PATH,
                gw.ENV_NODE_START_DIR: NODE_START_PATH,
                gw.ENV_START_CHECK_WAIT_SECONDS: str(lock_wait + 30),
                # Recovery points: copied beside the directory while writes are held, on the backup job's request.
                gw.ENV_SNAPSHOT_DIR: RECOVERY_POINTS_PATH,
                gw.ENV_SNAPSHOT_BUCKET: requests_bucket,
                gw.ENV_SNAPSHOT_PREFIX: recovery_point_prefix(node.name),
                gw.ENV_CHROMA_VERSION: config.chroma_image.tag,
                gw.ENV_SNAPSHOT_MAX_PAUSE_SECONDS: str(config.backup.max_write_pause_seconds),
                # A copy that would take the file system past its budget is refused (the backup fails loudly).
                gw.ENV_SNAPSHOT_BUDGET_GIB: str(config.capacity.budget_gib),
                **placement_environment(config, node),
            },
            essential=True,
            port_mappings=[ecs.PortMapping(container_port=GATEWAY_PORT, protocol=ecs.Protocol.TCP)],
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-m", "gateway.healthcheck"],
                interval=cdk.Duration.seconds(10), timeout=cdk.Duration.seconds(5), retries=3,
                start_period=cdk.Duration.seconds(task.health_check_grace_seconds)),
            logging=ecs.LogDrivers.aws_logs(stream_prefix=GATEWAY_CONTAINER, log_group=self.log_group),
            readonly_root_filesystem=True,
            stop_timeout=cdk.Duration.seconds(GATEWAY_STOP_TIMEOUT_SECONDS),
        )
        self.gateway.add_mount_points(
            ecs.MountPoint(container_path=GATEWAY_RUN_PATH, source_volume=GATEWAY_RUN_VOLUME, read_only=False),
            ecs.MountPoint(container_path=NODE_START_PATH, source_volume=NODE_START_VOLUME, read_only=False),
            # Read-only: the gateway checks the directory before Chroma starts and measures it while it runs.
            ecs.MountPoint(container_path=CHROMA_DATA_PATH, source_volume=DATA_VOLUME, read_only=True),
            ecs.MountPoint(container_path=RECOVERY_POINTS_PATH, source_volume=RECOVERY_POINTS_VOLUME,
                           read_only=False))
        self.gateway.add_container_dependencies(ecs.ContainerDependency(
            container=self.chroma, condition=ecs.ContainerDependencyCondition.START))

        self.service = ecs.FargateService(
            self, "Service",
            cluster=cluster,
            task_definition=self.task_definition,
            desired_count=1,
            min_healthy_percent=0,
            max_healthy_percent=100,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            # Rebalancing would start a task in another zone; with one writer there is nothing to balance.
            availability_zone_rebalancing=ecs.AvailabilityZoneRebalancing.DISABLED,
            assign_public_ip=False,
            vpc_subnets=subnets,
            security_groups=[security_group],
            health_check_grace_period=cdk.Duration.seconds(task.health_check_grace_seconds),
            propagate_tags=ecs.PropagatedTagSource.SERVICE,
            enable_execute_command=False,
        )
        # The ids CDK generated at the first deploy, pinned: a moved or renamed construct must never make
        # CloudFormation create a second service (two Chroma writers) before deleting the first.
        pin_logical_id(self.service, names.logical_id("Service"))
        pin_logical_id(self.task_definition, names.logical_id("Task"))

        acknowledge(self.task_definition, {
            "AwsSolutions-ECS2": "The environment variables hold only non-secret settings (ports, paths, the "
                                 "secret's ARN); the token itself is fetched at run time from Secrets Manager.",
        })
        acknowledge_image_pull(self.task_definition.obtain_execution_role())
