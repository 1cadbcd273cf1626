"""The security groups of the three tiers and the only paths between them: clients -> ALB -> gateway -> EFS.

They live together in the network stack so the storage and compute stacks can reference them without a cycle.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from cdk_app.config import LoadBalancerConfig
from cdk_app.constants import GATEWAY_PORT, HTTP_PORT, HTTPS_PORT


class ServiceSecurityGroups(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, vpc: ec2.IVpc, vpc_cidr: str,
                 load_balancer: LoadBalancerConfig, tls: bool, endpoints: ec2.ISecurityGroup | None) -> None:
        super().__init__(scope, construct_id)
        self.load_balancer = ec2.SecurityGroup(
            self, "LoadBalancer", vpc=vpc, allow_all_outbound=False,
            description="Chroma load balancer: accepts the allowed clients, forwards to the gateway only")
        self.task = ec2.SecurityGroup(
            self, "Task", vpc=vpc, allow_all_outbound=False,
            description="Chroma task: accepts the load balancer on the gateway port only")
        self.file_system = ec2.SecurityGroup(
            self, "FileSystem", vpc=vpc, allow_all_outbound=False,
            description="Chroma EFS mount targets: NFS from the Chroma task only")
        self.rotation = ec2.SecurityGroup(
            self, "Rotation", vpc=vpc, allow_all_outbound=False,
            description="Token rotation function: to the load balancer and to Secrets Manager only")

        listener_ports = [HTTPS_PORT, HTTP_PORT] if tls else [HTTP_PORT]
        for peer in self._client_peers(vpc_cidr, load_balancer):
            for port in listener_ports:
                self.load_balancer.add_ingress_rule(peer, ec2.Port.tcp(port), "Allowed Chroma clients")

        self.load_balancer.add_egress_rule(self.task, ec2.Port.tcp(GATEWAY_PORT), "To the gateway")
        self.task.add_ingress_rule(self.load_balancer, ec2.Port.tcp(GATEWAY_PORT), "From the load balancer")
        self.task.add_egress_rule(self.file_system, ec2.Port.NFS, "To the Chroma file system")
        # HTTPS to AWS APIs (ECR, S3, Logs, Secrets Manager, KMS) through VPC endpoints or NAT.
        self.task.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT), "AWS APIs over HTTPS")
        self.file_system.add_ingress_rule(self.task, ec2.Port.NFS, "NFS from the Chroma task")

        # The rotation function calls Chroma through the load balancer, like a client, and Secrets Manager.
        listener = ec2.Port.tcp(HTTPS_PORT if tls else HTTP_PORT)
        self.rotation.add_egress_rule(self.load_balancer, listener, "To the load balancer")
        self.load_balancer.add_ingress_rule(self.rotation, listener, "From the token rotation function")
        self.rotation.add_egress_rule(endpoints or ec2.Peer.any_ipv4(), ec2.Port.tcp(HTTPS_PORT),
                                      "Secrets Manager (VPC endpoint, or through NAT)")

    def _client_peers(self, vpc_cidr: str, config: LoadBalancerConfig) -> list[ec2.IPeer]:
        peers: list[ec2.IPeer] = [ec2.Peer.ipv4(cidr) for cidr in config.allowed_client_cidrs]
        peers += [ec2.SecurityGroup.from_security_group_id(self, f"Client{i}", group_id, mutable=False)
                  for i, group_id in enumerate(config.allowed_client_security_group_ids)]
        # Validation guarantees an internet-facing load balancer has explicit clients; internal defaults to the VPC.
        return peers or [ec2.Peer.ipv4(vpc_cidr)]
