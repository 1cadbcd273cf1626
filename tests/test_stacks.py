"""Fine-grained assertions on what matters in the synthesized templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Match

from cdk_app.constants import CHROMA_LISTEN_ADDRESS, GATEWAY_PORT, GATEWAY_READINESS_PATH, INTERFACE_ENDPOINTS
from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import STACK_IDS, SynthesizedApp

ENVS = list(ENVIRONMENTS)
REPO = Path(__file__).resolve().parents[1]


def resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def only(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    found = list(resources(template, resource_type).values())
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return found[0]


def container(task: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in task["Properties"]["ContainerDefinitions"] if c["Name"] == name)


@pytest.mark.parametrize("env", ENVS)
def test_single_writer_deployment(synthesized: SynthesizedApp, env: str) -> None:
    service = only(synthesized.template_json(env, "Compute"), "AWS::ECS::Service")["Properties"]
    assert service["DesiredCount"] == 1
    deployment = service["DeploymentConfiguration"]
    assert deployment["MinimumHealthyPercent"] == 0
    assert deployment["MaximumPercent"] == 100
    assert deployment["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert service["AvailabilityZoneRebalancing"] == "DISABLED"
    assert "ServiceConnectConfiguration" not in service
    # No autoscaling may ever add a second writer.
    assert not resources(synthesized.template_json(env, "Compute"), "AWS::ApplicationAutoScaling::ScalableTarget")


@pytest.mark.parametrize("env", ENVS)
def test_file_system_encrypted_general_purpose_elastic(synthesized: SynthesizedApp, env: str) -> None:
    storage = synthesized.template_json(env, "Storage")
    fs = storage["Resources"]["ChromaFileSystem"]
    assert fs["Properties"]["Encrypted"] is True
    assert fs["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["ChromaDataKey", "Arn"]}
    assert fs["Properties"]["PerformanceMode"] == "generalPurpose"
    assert fs["Properties"]["ThroughputMode"] == "elastic"
    assert storage["Resources"]["ChromaDataKey"]["Properties"]["EnableKeyRotation"] is True
    expected = "Retain" if ENVIRONMENTS[env].retain_data else "Delete"
    for logical_id in ("ChromaFileSystem", "ChromaDataKey", "ChromaBackupVault", "ChromaGatewayTokenSecret"):
        assert storage["Resources"][logical_id]["DeletionPolicy"] == expected, logical_id


def test_staging_and_prod_retain_their_data_and_prod_is_termination_protected(synthesized: SynthesizedApp) -> None:
    for env in ("staging", "prod"):
        assert synthesized.template_json(env, "Storage")["Resources"]["ChromaFileSystem"]["DeletionPolicy"] == "Retain"
    assert synthesized.stack("prod", "Storage").termination_protection is True


def test_access_point_forces_owner_and_own_directory(synthesized: SynthesizedApp) -> None:
    ap = synthesized.template_json("prod", "Storage")["Resources"]["ChromaPrimaryNodeAccessPoint"]["Properties"]
    assert ap["PosixUser"] == {"Uid": "1000", "Gid": "1000"}
    assert ap["RootDirectory"]["Path"] == "/chroma/primary"
    assert ap["RootDirectory"]["CreationInfo"]["Permissions"] == "750"


@pytest.mark.parametrize("env", ENVS)
def test_efs_volume_uses_iam_and_transit_encryption(synthesized: SynthesizedApp, env: str) -> None:
    task = only(synthesized.template_json(env, "Compute"), "AWS::ECS::TaskDefinition")
    efs = task["Properties"]["Volumes"][0]["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"]["IAM"] == "ENABLED"
    assert "AccessPointId" in efs["AuthorizationConfig"]
    assert container(task, "chroma")["MountPoints"] == [
        {"ContainerPath": "/data", "ReadOnly": False, "SourceVolume": "chroma-data"}]


@pytest.mark.parametrize("env", ENVS)
def test_chroma_listens_on_loopback_and_only_the_gateway_has_a_port(synthesized: SynthesizedApp, env: str) -> None:
    task = only(synthesized.template_json(env, "Compute"), "AWS::ECS::TaskDefinition")
    chroma = container(task, "chroma")
    assert {"Name": "CHROMA_LISTEN_ADDRESS", "Value": CHROMA_LISTEN_ADDRESS} in chroma["Environment"]
    assert "PortMappings" not in chroma
    assert chroma["Command"] == ["run", "/config.yaml"]
    gateway = container(task, "gateway")
    assert gateway["PortMappings"] == [{"ContainerPort": GATEWAY_PORT, "Protocol": "tcp"}]
    assert {"Name": "GATEWAY_UPSTREAM_URL", "Value": "http://127.0.0.1:8000"} in gateway["Environment"]
    assert gateway["HealthCheck"]["Command"] == ["CMD", "python", "-m", "gateway.healthcheck"]
    # The baked-in config agrees, so the image alone is also loopback-only and logs requests.
    config = yaml.safe_load((REPO / "cdk_app" / "node" / "chroma_image" / "config.yaml").read_text())
    assert config["listen_address"] == CHROMA_LISTEN_ADDRESS and config["stdout_tracing"] is True


@pytest.mark.parametrize("env", ENVS)
def test_chroma_image_is_the_pinned_official_image(synthesized: SynthesizedApp, env: str) -> None:
    assets = (synthesized.outdir / f"assembly-{env}" / f"{synthesized.stack(env, 'Compute').artifact_id}.assets.json")
    text = assets.read_text()
    assert '"CHROMA_IMAGE": "chromadb/chroma:1.5.9"' in text
    platform = "linux/arm64" if ENVIRONMENTS[env].task.architecture.value == "ARM64" else "linux/amd64"
    assert text.count(f'"platform": "{platform}"') == 2


@pytest.mark.parametrize("env", ENVS)
def test_no_public_ips_anywhere(synthesized: SynthesizedApp, env: str) -> None:
    network = synthesized.template_json(env, "Network")
    for subnet in resources(network, "AWS::EC2::Subnet").values():
        assert subnet["Properties"].get("MapPublicIpOnLaunch") is False
    service = only(synthesized.template_json(env, "Compute"), "AWS::ECS::Service")
    assert service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    alb = only(synthesized.template_json(env, "Compute"), "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internal"


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
def test_load_balancer_listeners_health_check_and_access_logs(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env]
    compute = synthesized.template_json(env, "Compute")
    listeners = {r["Properties"]["Port"]: r["Properties"]
                 for r in resources(compute, "AWS::ElasticLoadBalancingV2::Listener").values()}
    if config.tls:
        assert set(listeners) == {80, 443}
        assert listeners[443]["Protocol"] == "HTTPS"
        assert listeners[443]["Certificates"] == [{"CertificateArn": config.tls.certificate_arn}]
        assert listeners[443]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
        assert listeners[80]["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    else:
        assert set(listeners) == {80}
        assert listeners[80]["DefaultActions"][0]["Type"] == "forward"
    target_group = only(compute, "AWS::ElasticLoadBalancingV2::TargetGroup")["Properties"]
    assert target_group["HealthCheckPath"] == GATEWAY_READINESS_PATH
    assert target_group["Port"] == GATEWAY_PORT
    attributes = {a["Key"]: a["Value"] for a in
                  only(compute, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]["LoadBalancerAttributes"]}
    assert attributes["access_logs.s3.enabled"] == "true"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert int(attributes["idle_timeout.timeout_seconds"]) > config.task.upstream_timeout_seconds
    bucket = only(compute, "AWS::S3::Bucket")["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("env", ENVS)
def test_logs_have_explicit_retention_and_container_logs_are_encrypted(synthesized: SynthesizedApp,
                                                                       env: str) -> None:
    config = ENVIRONMENTS[env]
    compute = resources(synthesized.template_json(env, "Compute"), "AWS::Logs::LogGroup")
    assert len(compute) == 2  # the containers' and the rotation function's
    for log_group in compute.values():
        assert log_group["Properties"]["RetentionInDays"] == config.task.log_retention_days
        assert "KmsKeyId" in log_group["Properties"]
    flow = only(synthesized.template_json(env, "Network"), "AWS::Logs::LogGroup")["Properties"]
    assert flow["RetentionInDays"] == config.network.flow_log_retention_days
    for stack_id in STACK_IDS:  # no log group anywhere keeps logs forever by accident
        for log_group in resources(synthesized.template_json(env, stack_id), "AWS::Logs::LogGroup").values():
            assert "RetentionInDays" in log_group["Properties"]


@pytest.mark.parametrize("env", ENVS)
def test_backup_plan_follows_config(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env].backup
    storage = synthesized.template_json(env, "Storage")
    rule = only(storage, "AWS::Backup::BackupPlan")["Properties"]["BackupPlan"]["BackupPlanRule"][0]
    assert rule["ScheduleExpression"] == f"cron({config.minute_utc} {config.hour_utc} * * ? *)"
    assert rule["Lifecycle"] == {"DeleteAfterDays": config.retention_days}
    assert rule["TargetBackupVault"] == {"Fn::GetAtt": ["ChromaBackupVault", "BackupVaultName"]}
    assert storage["Resources"]["ChromaBackupVault"]["Properties"]["EncryptionKeyArn"] == {
        "Fn::GetAtt": ["ChromaDataKey", "Arn"]}


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
    for stack_id in ("Storage", "Compute"):
        template = synthesized.template_json(env, stack_id)
        names |= {r["Properties"]["Name"] for r in resources(template, "AWS::SSM::Parameter").values()}
    assert names == {f"/chroma/{env}/{n}" for n in
                     ("endpoint-url", "token-secret-arn", "cluster-name", "service-name", "file-system-id",
                      "log-group-name", "backup-vault-name", "backup-role-arn")}
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
