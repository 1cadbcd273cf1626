"""EFS for Chroma: encrypted with the CMK, General Purpose, one access point (own directory, forced POSIX owner)
per Chroma node. Only one Chroma process may ever use a node's directory."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EfsThroughputMode, StorageConfig
from cdk_app.constants import EFS_ACCESS_POINT_ROOT, EFS_POSIX_GID, EFS_POSIX_UID
from cdk_app.constructs.stateful import pin_logical_id

_THROUGHPUT = {
    EfsThroughputMode.ELASTIC: efs.ThroughputMode.ELASTIC,
    EfsThroughputMode.BURSTING: efs.ThroughputMode.BURSTING,
    EfsThroughputMode.PROVISIONED: efs.ThroughputMode.PROVISIONED,
}


class ChromaFileSystem(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StorageConfig, vpc: ec2.IVpc,
                 subnets: ec2.SubnetSelection, security_group: ec2.ISecurityGroup, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
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
        pin_logical_id(self.file_system, "ChromaFileSystem")
        self.file_system.add_to_resource_policy(iam.PolicyStatement(
            sid="DenyUnencryptedTransport",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["*"],
            conditions={"Bool": {"aws:SecureTransport": "false"}},
        ))
        self.access_point = self.file_system.add_access_point(
            "PrimaryNode",
            path=EFS_ACCESS_POINT_ROOT,
            create_acl=efs.Acl(owner_uid=str(EFS_POSIX_UID), owner_gid=str(EFS_POSIX_GID), permissions="750"),
            posix_user=efs.PosixUser(uid=str(EFS_POSIX_UID), gid=str(EFS_POSIX_GID)),
        )
        pin_logical_id(self.access_point, "ChromaPrimaryNodeAccessPoint")
