"""The rotation function in the synthesized templates: schedule, placement, permissions, logs, bundle."""

from __future__ import annotations

from typing import Any

import pytest

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import SynthesizedApp, assert_bundle_imports, function_asset, only, resources

ENVS = list(ENVIRONMENTS)
ROLE = {"Ref": "TokenRotationFunctionServiceRole3A2E62B5"}


def secret(env: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputRefChromaGatewayTokenSecretB7A5BECE"}


def function(synthesized: SynthesizedApp, env: str) -> dict[str, Any]:
    return only(synthesized.template_json(env, "Compute"), "AWS::Lambda::Function")


@pytest.mark.parametrize("env", ENVS)
def test_schedule_follows_config_and_waits_for_the_service(synthesized: SynthesizedApp, env: str) -> None:
    compute = synthesized.template_json(env, "Compute")
    schedule = only(compute, "AWS::SecretsManager::RotationSchedule")
    assert schedule["Properties"] == {
        "SecretId": secret(env),
        "RotationLambdaARN": {"Fn::GetAtt": ["TokenRotationFunctionA751A7F9", "Arn"]},
        "RotationRules": {"AutomaticallyAfterDays": ENVIRONMENTS[env].token_rotation_days},
        "RotateImmediatelyOnUpdate": False,
    }
    assert "ChromaServiceA3FE004D" in schedule["DependsOn"]
    permission = only(compute, "AWS::Lambda::Permission")["Properties"]
    assert permission["Principal"] == "secretsmanager.amazonaws.com" and permission["SourceArn"] == secret(env)


@pytest.mark.parametrize("env", ENVS)
def test_function_runs_in_private_subnets_behind_its_own_security_group(synthesized: SynthesizedApp,
                                                                        env: str) -> None:
    props = function(synthesized, env)["Properties"]
    vpc = props["VpcConfig"]
    assert all("ExportsOutputRefNetworkVpcprivateSubnet" in s["Fn::ImportValue"] for s in vpc["SubnetIds"])
    assert len(vpc["SubnetIds"]) == len(ENVIRONMENTS[env].network.availability_zones)
    [group] = vpc["SecurityGroupIds"]
    assert group["Fn::ImportValue"].startswith(
        f"chroma-{env}-network:ExportsOutputFnGetAttSecurityGroupsRotation24AF8A4EGroupId")
    config = ENVIRONMENTS[env]
    assert props["Environment"]["Variables"]["GATEWAY_ENDPOINT_PORT"] == ("443" if config.tls else "80")
    assert props["Environment"]["Variables"]["GATEWAY_TLS_SERVER_NAME"] == (config.tls.domain_name
                                                                             if config.tls else "")
    assert props["Runtime"] == "python3.14" and props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("env", ENVS)
def test_rotation_security_group_reaches_only_the_load_balancer_and_secrets_manager(synthesized: SynthesizedApp,
                                                                                    env: str) -> None:
    config = ENVIRONMENTS[env]
    network = synthesized.template_json(env, "Network")
    group = network["Resources"]["SecurityGroupsRotation24AF8A4E"]["Properties"]
    assert "SecurityGroupIngress" not in group
    egress = {(r["Properties"].get("DestinationSecurityGroupId", {}).get("Fn::GetAtt", [None])[0],
               r["Properties"]["FromPort"])
              for r in resources(network, "AWS::EC2::SecurityGroupEgress").values()
              if r["Properties"]["GroupId"] == {"Fn::GetAtt": ["SecurityGroupsRotation24AF8A4E", "GroupId"]}}
    inline = {(rule["CidrIp"], rule["FromPort"]) for rule in group.get("SecurityGroupEgress", [])}
    listener = 443 if config.tls else 80
    if config.network.interface_endpoints:
        assert egress == {("SecurityGroupsLoadBalancerC69D330C", listener), ("NetworkEndpointsF8B8492F", 443)}
        assert inline == set()
    else:  # through the NAT gateway to Secrets Manager's public endpoint
        assert egress == {("SecurityGroupsLoadBalancerC69D330C", listener)}
        assert inline == {("0.0.0.0/0", 443)}


@pytest.mark.parametrize("env", ENVS)
def test_function_policy_is_scoped_to_the_secret_and_its_key(synthesized: SynthesizedApp, env: str) -> None:
    compute = synthesized.template_json(env, "Compute")
    policy = next(p for p in resources(compute, "AWS::IAM::Policy").values() if p["Properties"]["Roles"] == [ROLE])
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements == [
        {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
        {"Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"],
         "Effect": "Allow", "Resource": secret(env)},
        {"Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Effect": "Allow",
         "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                                        "kms:EncryptionContext:SecretARN": secret(env)}},
         "Resource": {"Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputFnGetAttChromaDataKeyArnE8D05D53"}},
    ]
    role = compute["Resources"]["TokenRotationFunctionServiceRole3A2E62B5"]["Properties"]
    managed = [arn["Fn::Join"][1][-1] for arn in role["ManagedPolicyArns"]]
    assert managed == [":iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                       ":iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"]


@pytest.mark.parametrize("env", ENVS)
def test_function_has_its_own_log_group_with_retention(synthesized: SynthesizedApp, env: str) -> None:
    compute = synthesized.template_json(env, "Compute")
    props = function(synthesized, env)["Properties"]
    log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert compute["Resources"][log_group_id]["Properties"]["RetentionInDays"] == \
        ENVIRONMENTS[env].task.log_retention_days


def test_bundled_function_imports_with_its_bundled_powertools(synthesized: SynthesizedApp) -> None:
    """The asset holds the function and Powertools; only boto3 comes from outside, as in the Lambda runtime."""
    asset = function_asset(synthesized, function(synthesized, "prod"))
    assert (asset / "lambdas" / "token_rotation" / "function" / "handler.py").exists()
    assert (asset / "lambdas" / "env_settings.py").exists() and (asset / "aws_lambda_powertools").is_dir()
    assert not (asset / "lambdas" / "token_rotation" / "infrastructure.py").exists()  # CDK code stays out
    assert not list(asset.rglob("*.so")) and not list(asset.rglob("__pycache__"))
    assert_bundle_imports(asset, "lambdas.token_rotation.function.handler")
