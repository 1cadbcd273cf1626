"""The VPC: private subnets over the configured zones, VPC endpoints and/or NAT, flow logs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.config import NetworkConfig
from cdk_app.constants import HTTPS_PORT, INTERFACE_ENDPOINTS, log_group_name
from cdk_app.constructs.log_encryption import allow_log_groups
from cdk_app.log_retention import retention

# Construct ids (stable: they name the endpoints' logical ids) and services of cdk_app.constants.INTERFACE_ENDPOINTS.
INTERFACE_ENDPOINT_SERVICES: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
}
assert len(INTERFACE_ENDPOINT_SERVICES) == len(INTERFACE_ENDPOINTS)


class ChromaNetwork(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: NetworkConfig, environment: str,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        has_nat = config.nat_gateways > 0
        subnets = [ec2.SubnetConfiguration(
            name="private",
            subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if has_nat else ec2.SubnetType.PRIVATE_ISOLATED,
        )]
        if has_nat:
            # Public subnets only exist to hold NAT gateways (and an internet-facing load balancer if configured).
            subnets.insert(0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC,
                                                      map_public_ip_on_launch=False))
        self.vpc = ec2.Vpc(
            self, "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            availability_zones=list(config.availability_zones),
            nat_gateways=config.nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self.private_subnets = ec2.SubnetSelection(subnet_group_name="private")

        # Flow logs get a key of their own: the data key lives in the Storage stack, which depends on this one.
        flow_log_key = kms.Key(self, "FlowLogsKey", description=f"Chroma {environment}: VPC flow logs",
                               enable_key_rotation=True, removal_policy=removal_policy,
                               pending_window=cdk.Duration.days(30))
        flow_log_name = log_group_name(environment, "vpc-flow-logs")
        allow_log_groups(flow_log_key, flow_log_name)
        flow_log_group = logs.LogGroup(self, "FlowLogs", log_group_name=flow_log_name, encryption_key=flow_log_key,
                                       retention=retention(config.flow_log_retention_days),
                                       removal_policy=removal_policy)
        self.vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                              traffic_type=ec2.FlowLogTrafficType.ALL)

        # S3 gateway endpoints are free and carry ECR image layers.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3,
                                      subnets=[self.private_subnets])
        self.endpoints_security_group: ec2.SecurityGroup | None = None
        if config.interface_endpoints:
            endpoints_group = self.endpoints_security_group = ec2.SecurityGroup(
                self, "Endpoints", vpc=self.vpc, allow_all_outbound=False,
                description="Interface VPC endpoints: HTTPS from inside the VPC only")
            endpoints_group.add_ingress_rule(ec2.Peer.ipv4(config.vpc_cidr), ec2.Port.tcp(HTTPS_PORT),
                                             "HTTPS from the VPC")
            zones = config.availability_zones[:config.endpoint_zones] if config.endpoint_zones else None
            endpoint_subnets = ec2.SubnetSelection(subnet_group_name="private",
                                                   availability_zones=list(zones) if zones else None)
            for name, service in INTERFACE_ENDPOINT_SERVICES.items():
                self.vpc.add_interface_endpoint(name, service=service, subnets=endpoint_subnets,
                                                private_dns_enabled=True, open=False,
                                                security_groups=[endpoints_group])
