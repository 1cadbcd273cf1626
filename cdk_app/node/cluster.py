"""The environment's ECS cluster: every node's service runs in it."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from cdk_app.constructs.stateful import pin_logical_id

# The id CDK generated at the first deploy (when the cluster lived inside the primary node's construct), pinned.
CLUSTER_LOGICAL_ID = "ChromaCluster1A5F5483"


class Cluster(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc) -> None:
        super().__init__(scope, construct_id)
        self.cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENHANCED)
        pin_logical_id(self.cluster, CLUSTER_LOGICAL_ID)
