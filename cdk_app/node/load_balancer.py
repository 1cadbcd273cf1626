"""The load balancer in front of the nodes' gateways: HTTPS when configured (HTTP redirected), access logs to S3, one
target group per node and the listener rules that route each placed tenant to its node (cdk_app/node/routing.py)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.constants import (
    ALB_DEREGISTRATION_DELAY_SECONDS,
    GATEWAY_PORT,
    GATEWAY_READINESS_PATH,
    HTTP_PORT,
    HTTPS_PORT,
)
from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge
from cdk_app.node.chroma import GATEWAY_CONTAINER, ChromaService, alb_idle_timeout_seconds
from cdk_app.node.names import NodeNames, pascal
from cdk_app.node.routing import node_rules, routing_rules
from gateway.settings import NODE_HEADER


class ChromaLoadBalancer(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, vpc: ec2.IVpc,
                 security_group: ec2.ISecurityGroup, nodes: dict[str, ChromaService]) -> None:
        super().__init__(scope, construct_id)
        lb_config = config.load_balancer
        self.access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # ALB access logs support SSE-S3 only.
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            # Versioned, so an overwritten or deleted log stays recoverable for the same retention.
            versioned=True,
            lifecycle_rules=[s3.LifecycleRule(
                expiration=cdk.Duration.days(lb_config.access_log_retention_days),
                noncurrent_version_expiration=cdk.Duration.days(lb_config.access_log_retention_days))],
            # Access logs are audit evidence: kept on stack deletion, expired by the lifecycle rule.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.access_logs, {
            "AwsSolutions-S1": "This bucket receives the load balancer's access logs; logging its own access to "
                               "another bucket would only duplicate what CloudTrail data events provide.",
        })

        self.alb = elbv2.ApplicationLoadBalancer(
            self, "Alb",
            vpc=vpc,
            internet_facing=lb_config.internet_facing,
            vpc_subnets=ec2.SubnetSelection(subnet_group_name="public" if lb_config.internet_facing else "private"),
            security_group=security_group,
            drop_invalid_header_fields=True,
            idle_timeout=cdk.Duration.seconds(alb_idle_timeout_seconds(config)),
            deletion_protection=config.retain_data,
        )
        pin_logical_id(self.alb, "LoadBalancerAlb240B1141")  # its DNS name is every client's endpoint
        self.alb.log_access_logs(self.access_logs, prefix="alb")

        self.target_groups = {name: self._target_group(vpc, name, service.service)
                              for name, service in nodes.items()}
        self.target_group = self.target_groups[PRIMARY_NODE]
        self.listener = self._listener(config, self.target_group)
        self.rules = [elbv2.ApplicationListenerRule(
            self, f"Address{pascal(addressed.node)}", listener=self.listener, priority=addressed.priority,
            conditions=[elbv2.ListenerCondition.http_header(NODE_HEADER, [addressed.node])],
            target_groups=[self.target_groups[addressed.node]]) for addressed in node_rules(config)]
        self.rules += [elbv2.ApplicationListenerRule(
            self, f"Route{pascal(rule.node)}{rule.index}", listener=self.listener, priority=rule.priority,
            conditions=[elbv2.ListenerCondition.path_patterns(list(rule.patterns))],
            target_groups=[self.target_groups[rule.node]]) for rule in routing_rules(config)]
        # A placement change updates the rules before any node restarts: a tenant moving in is accepted by its new
        # node already (gateway/tenant_moves.py), and never refused on the way.
        for service in nodes.values():
            for listener_rule in self.rules:
                service.service.node.add_dependency(listener_rule)

    def _target_group(self, vpc: ec2.IVpc, node: str, service: ecs.FargateService) -> elbv2.ApplicationTargetGroup:
        return elbv2.ApplicationTargetGroup(
            self, NodeNames(node).construct_id("Gateway"),
            vpc=vpc,
            port=GATEWAY_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            targets=[service.load_balancer_target(container_name=GATEWAY_CONTAINER, container_port=GATEWAY_PORT)],
            deregistration_delay=cdk.Duration.seconds(ALB_DEREGISTRATION_DELAY_SECONDS),
            health_check=elbv2.HealthCheck(
                path=GATEWAY_READINESS_PATH, healthy_http_codes="200", interval=cdk.Duration.seconds(10),
                timeout=cdk.Duration.seconds(5), healthy_threshold_count=2, unhealthy_threshold_count=3),
        )

    def _listener(self, config: EnvironmentConfig,
                  primary: elbv2.ApplicationTargetGroup) -> elbv2.ApplicationListener:
        """The listener clients reach; its default action is the primary node."""
        if config.tls is None:
            self.endpoint_url = f"http://{self.alb.load_balancer_dns_name}"
            return self.alb.add_listener("Http", port=HTTP_PORT, protocol=elbv2.ApplicationProtocol.HTTP,
                                         open=False, default_target_groups=[primary])
        listener = self.alb.add_listener(
            "Https", port=HTTPS_PORT, protocol=elbv2.ApplicationProtocol.HTTPS, open=False,
            certificates=[elbv2.ListenerCertificate.from_arn(config.tls.certificate_arn)],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            default_target_groups=[primary])
        self.alb.add_listener(
            "HttpRedirect", port=HTTP_PORT, protocol=elbv2.ApplicationProtocol.HTTP, open=False,
            default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port=str(HTTPS_PORT), permanent=True))
        self.endpoint_url = f"https://{config.tls.domain_name}"
        if config.tls.hosted_zone_id and config.tls.hosted_zone_name:
            zone = route53.HostedZone.from_hosted_zone_attributes(
                self, "Zone", hosted_zone_id=config.tls.hosted_zone_id, zone_name=config.tls.hosted_zone_name)
            route53.ARecord(self, "Alias", zone=zone, record_name=config.tls.domain_name,
                            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(self.alb)))
        return listener
