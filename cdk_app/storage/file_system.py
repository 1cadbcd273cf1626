"""A node's EFS file system: encrypted with the CMK, General Purpose, with three access points: the node's directory
(forced POSIX owner), its recovery points beside it (gateway/snapshot.py), and the root for the restore's swap.

Each node has its own file system: its capacity, backups and restores are its own, its task role can mount no other
node's data, and EFS charges nothing per file system (docs/nodes.md). Only one Chroma process may ever use a node's
directory: its service runs one task, behind the writer lock."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EfsThroughputMode, StorageConfig
from cdk_app.constants import EFS_POSIX_GID, EFS_POSIX_UID, RECOVERY_POINTS_ROOT
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.node.names import NodeNames

_THROUGHPUT = {
    EfsThroughputMode.ELASTIC: efs.ThroughputMode.ELASTIC,
    EfsThroughputMode.BURSTING: efs.ThroughputMode.BURSTING,
    EfsThroughputMode.PROVISIONED: efs.ThroughputMode.PROVISIONED,
}


class ChromaFileSystem(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, node: str, config: StorageConfig, vpc: ec2.IVpc,
                 subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        names = NodeNames(node)
        provisioned = config.provisioned_throughput_mibps
        self.file_system = efs.FileSystem(
            self, "FileSystem",
            vpc=vpc,
            vpc_subnets=subnets,
            security_group=security_group,
            encrypted=True,
            kms_key=key,
            # Max I/O adds per-operation latency; General Purpose is AWS's recommendation and Chroma's need.
            performance_mode=efs.PerformanceMode.GENERAL_PURPOSE,
            throughput_mode=_THROUGHPUT[config.throughput_mode],
            provisioned_throughput_per_second=cdk.Size.mebibytes(provisioned) if provisioned else None,
            # Backups come from the environment's own backup job (quiesced first), with its schedule and retention.
            enable_automatic_backups=False,
            allow_anonymous_access=False,
            removal_policy=removal_policy,
        )
        pin_logical_id(self.file_system, names.logical_id("FileSystem"))
        self.file_system.add_to_resource_policy(iam.PolicyStatement(
            sid="DenyUnencryptedTransport",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["*"],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        ))
        self.access_point = self._owned_directory("PrimaryNode" if names.is_primary else "Node", names.data_path)
        pin_logical_id(self.access_point, names.logical_id("AccessPoint"))
        self.recovery_points = self._owned_directory("RecoveryPoints", RECOVERY_POINTS_ROOT)
        pin_logical_id(self.recovery_points, names.logical_id("RecoveryPointsAccessPoint"))
        # The restore's swap (gateway.restore_swap, run as a one-off task by chroma-ops restore) renames the node's
        # directory and the restored copy, which AWS Backup puts at the file system's root, and gives the copy the
        # node's owner: it needs the root, as root. Only the restore task's role may mount through it.
        self.restore_access_point = self.file_system.add_access_point(
            "Restore", path="/", posix_user=efs.PosixUser(uid="0", gid="0"))
        pin_logical_id(self.restore_access_point, names.logical_id("RestoreAccessPoint"))

    def _owned_directory(self, construct_id: str, path: str) -> efs.AccessPoint:
        """An access point rooted in `path` (created 750 if missing), acting as the Chroma user."""
        return self.file_system.add_access_point(
            construct_id,
            path=path,
            create_acl=efs.Acl(owner_uid=str(EFS_POSIX_UID), owner_gid=str(EFS_POSIX_GID), permissions="750"),
            posix_user=efs.PosixUser(uid=str(EFS_POSIX_UID), gid=str(EFS_POSIX_GID)),
        )
