"""The Network stack: the only paths between tiers, egress and endpoints per config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from cdk_app.constants import GATEWAY_PORT, INTERFACE_ENDPOINTS
from cdk_app.environments import ENVIRONMENTS
from cdk_app.validation import ConfigError
from tests.cdk_support import SynthesizedApp, only, resources, synthesize

ENVS = list(ENVIRONMENTS)


def _ingress_rules(network: dict[str, Any]) -> list[tuple[str, Any, int]]:
    """(target group logical id, source, port) for every ingress rule, inline or standalone."""
    rules = []
    for logical_id, group in resources(network, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            rules.append((logical_id, rule.get("CidrIp") or rule.get("SourceSecurityGroupId"), rule["FromPort"]))
    for rule in resources(network, "AWS::EC2::SecurityGroupIngress").values():
        props = rule["Properties"]
        rules.append((props["GroupId"]["Fn::GetAtt"][0], props.get("CidrIp") or props.get("SourceSecurityGroupId"),
                      props["FromPort"]))
    return rules


@pytest.mark.parametrize("env", ENVS)
def test_only_ingress_paths_are_clients_to_alb_to_task_to_efs(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env]
    rules = _ingress_rules(synthesized.template_json(env, "Network"))
    alb, task, efs = "SecurityGroupsLoadBalancerC69D330C", "SecurityGroupsTask7017089E", \
        "SecurityGroupsFileSystem6B108F66"
    listener_ports = {443, 80} if config.tls else {80}
    expected = {(alb, config.network.vpc_cidr, port) for port in listener_ports}
    expected.add((task, str({"Fn::GetAtt": [alb, "GroupId"]}), GATEWAY_PORT))
    expected.add((efs, str({"Fn::GetAtt": [task, "GroupId"]}), 2049))
    rotation, listener = "SecurityGroupsRotation24AF8A4E", 443 if config.tls else 80
    expected.add((alb, str({"Fn::GetAtt": [rotation, "GroupId"]}), listener))
    if config.network.interface_endpoints:
        expected.add(("NetworkEndpointsF8B8492F", config.network.vpc_cidr, 443))
    assert {(g, str(s) if isinstance(s, dict) else s, p) for g, s, p in rules} == expected
    # Chroma's own port is never reachable from outside the task.
    assert all(port != 8000 for _, _, port in rules)


@pytest.mark.parametrize("env", ENVS)
def test_network_egress_and_endpoints_follow_config(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env].network
    network = synthesized.template_json(env, "Network")
    assert len(resources(network, "AWS::EC2::NatGateway")) == config.nat_gateways
    prefix = f"com.amazonaws.{ENVIRONMENTS[env].region}."
    endpoints: dict[str, list[str]] = {"Interface": [], "Gateway": []}
    for endpoint in resources(network, "AWS::EC2::VPCEndpoint").values():
        name = endpoint["Properties"]["ServiceName"]
        endpoints[endpoint["Properties"]["VpcEndpointType"]].append(
            name.removeprefix(prefix) if isinstance(name, str) else str(name))
    expected = set(INTERFACE_ENDPOINTS) if config.interface_endpoints else set()
    assert set(endpoints["Interface"]) == expected
    assert len(endpoints["Gateway"]) == 1 and "s3" in endpoints["Gateway"][0]  # the free S3 gateway endpoint
    assert only(network, "AWS::EC2::FlowLog")["Properties"]["TrafficType"] == "ALL"
    assert resources(network, "Custom::VpcRestrictDefaultSG")
    azs = {r["Properties"]["AvailabilityZone"] for r in resources(network, "AWS::EC2::Subnet").values()}
    assert azs == set(config.availability_zones)


@pytest.mark.synth
def test_interface_endpoints_can_live_in_fewer_zones(tmp_path: Path) -> None:
    """network.endpoint_zones: each interface endpoint in the first N zones' private subnets only."""
    prod = ENVIRONMENTS["prod"]
    one_zone = replace(prod, network=replace(prod.network, endpoint_zones=1))
    network = synthesize({"prod": one_zone}, tmp_path).template_json("prod", "Network")
    subnet_zone = {k: r["Properties"]["AvailabilityZone"] for k, r in resources(network, "AWS::EC2::Subnet").items()}
    interface = [e["Properties"] for e in resources(network, "AWS::EC2::VPCEndpoint").values()
                 if e["Properties"]["VpcEndpointType"] == "Interface"]
    assert len(interface) == len(INTERFACE_ENDPOINTS)
    for endpoint in interface:
        assert {subnet_zone[s["Ref"]] for s in endpoint["SubnetIds"]} == {prod.network.availability_zones[0]}
    with pytest.raises(ConfigError, match=r"network.endpoint_zones = 4: use 1 to 3 zones"):
        replace(prod, network=replace(prod.network, endpoint_zones=4))
