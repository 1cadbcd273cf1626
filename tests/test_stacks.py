"""Cross-unit assertions on the synthesized templates (each unit's own are in its folder's tests/)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import STACK_IDS, SynthesizedApp, only, resources

ENVS = list(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVS)
def test_no_public_ips_anywhere(synthesized: SynthesizedApp, env: str) -> None:
    network = synthesized.template_json(env, "Network")
    for subnet in resources(network, "AWS::EC2::Subnet").values():
        assert subnet["Properties"].get("MapPublicIpOnLaunch") is False
    service = only(synthesized.template_json(env, "Compute"), "AWS::ECS::Service")
    assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    alb = only(synthesized.template_json(env, "Compute"), "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internal"

@pytest.mark.parametrize("env", ENVS)
def test_token_secret_encrypted_with_cmk_and_readable_only_by_gateway_role(synthesized: SynthesizedApp,
                                                                          env: str) -> None:
    storage = synthesized.template_json(env, "Storage")
    assert storage["Resources"]["ChromaGatewayTokenSecret"]["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": ["ChromaDataKey", "Arn"]}
    readers = []
    for stack_id in STACK_IDS:
        for policy in resources(synthesized.template_json(env, stack_id), "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any(a in ("secretsmanager:GetSecretValue", "secretsmanager:*", "*") for a in actions):
                    readers.append((stack_id, policy["Properties"]["Roles"], statement["Resource"]))
    secret = {"Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputRefChromaGatewayTokenSecretB7A5BECE"}
    # The gateway reads it; the rotation function reads and writes it. Nobody else.
    assert readers == [("Compute", [{"Ref": "ChromaTaskTaskRole1F52E32C"}], secret),
                       ("Compute", [{"Ref": "TokenRotationFunctionServiceRole3A2E62B5"}], secret)]
    compute = synthesized.template(env, "Compute")
    compute.has_resource_properties("AWS::IAM::Policy", {
        "Roles": [{"Ref": "ChromaTaskTaskRole1F52E32C"}],
        "PolicyDocument": {"Statement": Match.array_with([{
            "Action": "kms:Decrypt", "Effect": "Allow",
            # Only to decrypt this secret, and only through Secrets Manager.
            "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                                           "kms:EncryptionContext:SecretARN": secret}},
            "Resource": {"Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputFnGetAttChromaDataKeyArnE8D05D53"},
        }])},
    })

@pytest.mark.parametrize("env", ENVS)
def test_logs_have_explicit_retention_and_container_logs_are_encrypted(synthesized: SynthesizedApp,
                                                                       env: str) -> None:
    config = ENVIRONMENTS[env]
    compute = resources(synthesized.template_json(env, "Compute"), "AWS::Logs::LogGroup")
    assert len(compute) == 3  # the containers', the rotation function's and the restore task's
    for log_group in compute.values():
        assert log_group["Properties"]["RetentionInDays"] == config.task.log_retention_days
        assert "KmsKeyId" in log_group["Properties"]
    flow = only(synthesized.template_json(env, "Network"), "AWS::Logs::LogGroup")["Properties"]
    assert flow["RetentionInDays"] == config.network.flow_log_retention_days
    for stack_id in STACK_IDS:  # no log group anywhere keeps logs forever by accident
        for log_group in resources(synthesized.template_json(env, stack_id), "AWS::Logs::LogGroup").values():
            assert "RetentionInDays" in log_group["Properties"]

@pytest.mark.parametrize("env", ENVS)
def test_alarm_topic_encrypted_with_subscriptions_from_config(synthesized: SynthesizedApp, env: str) -> None:
    observability = synthesized.template_json(env, "Observability")
    topic = only(observability, "AWS::SNS::Topic")["Properties"]
    assert topic["KmsMasterKeyId"] == {
        "Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputFnGetAttChromaDataKeyArnE8D05D53"}
    emails = sorted(s["Properties"]["Endpoint"] for s in resources(observability, "AWS::SNS::Subscription").values())
    assert emails == sorted(ENVIRONMENTS[env].alarm_emails)

@pytest.mark.parametrize("env", ENVS)
def test_published_parameters_and_outputs(synthesized: SynthesizedApp, env: str) -> None:
    names = set()
    for stack_id in ("Network", "Storage", "Compute"):
        template = synthesized.template_json(env, stack_id)
        names |= {r["Properties"]["Name"] for r in resources(template, "AWS::SSM::Parameter").values()}
    assert names == {f"/chroma/{env}/{n}" for n in
                     ("endpoint-url", "token-secret-arn", "cluster-name", "service-name", "file-system-id",
                      "log-group-name", "backup-vault-name", "backup-role-arn", "private-subnets",
                      "task-security-group", "restore-task-family", "recovery-points-bucket",
                      "previous-token-grace-seconds", "token-rotation-days")}
    outputs = synthesized.template_json(env, "Compute")["Outputs"]
    tls = ENVIRONMENTS[env].tls
    if tls:
        assert outputs["EndpointUrl"]["Value"] == f"https://{tls.domain_name}"
    else:
        assert outputs["EndpointUrl"]["Value"] == {"Fn::Join": ["", ["http://", {
            "Fn::GetAtt": ["LoadBalancerAlb240B1141", "DNSName"]}]]}

@pytest.mark.parametrize("env", ENVS)
def test_tags_on_every_stack(synthesized: SynthesizedApp, env: str) -> None:
    for stack_id in STACK_IDS:
        assert synthesized.stack(env, stack_id).tags.tag_values() == {
            "env": env, "service": "chroma", "cost-centre": ENVIRONMENTS[env].cost_centre}

@pytest.mark.parametrize("env", ENVS)
def test_cloudwatch_logs_may_use_the_keys_for_this_environments_log_groups_only(synthesized: SynthesizedApp,
                                                                                env: str) -> None:
    def logs_grant(template: dict[str, Any], key_id: str) -> list[str]:
        statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
        [statement] = [s for s in statements if s["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}]
        arns = statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
        return [arn["Fn::Join"][1][-1].split(":log-group:")[1] for arn in arns]

    assert logs_grant(synthesized.template_json(env, "Storage"), "ChromaDataKey") == [f"/chroma/{env}/*",
                                                                                       f"chroma-{env}-*"]
    network = synthesized.template_json(env, "Network")
    [flow_key] = [k for k in resources(network, "AWS::KMS::Key")]
    assert logs_grant(network, flow_key) == [f"/chroma/{env}/vpc-flow-logs"]
    names = [r["Properties"].get("LogGroupName") for stack_id in STACK_IDS
             for r in resources(synthesized.template_json(env, stack_id), "AWS::Logs::LogGroup").values()]
    assert names and all(name.startswith(f"/chroma/{env}/") for name in names), names
    assert all("KmsKeyId" in r["Properties"] for stack_id in STACK_IDS
               for r in resources(synthesized.template_json(env, stack_id), "AWS::Logs::LogGroup").values())
