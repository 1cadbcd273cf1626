from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constants import SSM_PRIVATE_SUBNETS, SSM_TASK_SECURITY_GROUP
from cdk_app.constructs.published import PublishedValues
from cdk_app.constructs.stateful import removal_policy
from cdk_app.network.network import ChromaNetwork
from cdk_app.network.security_groups import ServiceSecurityGroups


class NetworkStack(cdk.Stack):
    """VPC, endpoints, flow logs and the security groups of every tier."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: network", **kwargs)
        self.network = ChromaNetwork(self, "Network", config=config.network, environment=config.name,
                                     removal_policy=removal_policy(config.retain_data))
        self.security_groups = ServiceSecurityGroups(self, "SecurityGroups", vpc=self.network.vpc,
                                                     vpc_cidr=config.network.vpc_cidr,
                                                     load_balancer=config.load_balancer, tls=config.tls is not None,
                                                     endpoints=self.network.endpoints_security_group)
        published = PublishedValues(self, "Published", environment=config.name)
        published.publish(SSM_PRIVATE_SUBNETS, cdk.Fn.join(",", self.network.vpc.select_subnets(
            subnet_group_name=self.network.private_subnets.subnet_group_name).subnet_ids),
                          "Private subnets of the Chroma tasks (where the restore task runs too)")
        published.publish(SSM_TASK_SECURITY_GROUP, self.security_groups.task.security_group_id,
                          "Security group of the Chroma tasks (the restore task's too: it reaches the file system)")
