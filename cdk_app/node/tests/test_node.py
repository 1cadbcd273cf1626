"""The node in the Compute stack: single-writer service, task, image, load balancer."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from cdk_app.constants import CHROMA_LISTEN_ADDRESS, GATEWAY_PORT, GATEWAY_READINESS_PATH, OLD_WRITER_STOP_SECONDS
from cdk_app.environments import ENVIRONMENTS
from cdk_app.node.chroma import GATEWAY_DEVELOPMENT_TOOLS, INDEX_CACHE_ENV
from ops.capacity import collections_per_task
from tests.cdk_support import REPO, SynthesizedApp, container, only, resources

ENVS = list(ENVIRONMENTS)



def node_task(synthesized: SynthesizedApp, env: str) -> dict[str, Any]:
    """The node's task definition (the restore task is the compute stack's other one)."""
    return dict(synthesized.template_json(env, "Compute")["Resources"]["ChromaTask6B15C82C"])

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
def test_efs_volume_uses_iam_and_transit_encryption(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
    efs = task["Properties"]["Volumes"][0]["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED"
    assert efs["AuthorizationConfig"]["IAM"] == "ENABLED"
    assert "AccessPointId" in efs["AuthorizationConfig"]
    assert container(task, "chroma")["MountPoints"] == [
        {"ContainerPath": "/data", "ReadOnly": False, "SourceVolume": "chroma-data"},
        {"ContainerPath": "/run/node-start", "ReadOnly": False, "SourceVolume": "node-start"}]
    # The gateway reads the directory (start check, disk metrics) and can never write it.
    assert {"ContainerPath": "/data", "ReadOnly": True, "SourceVolume": "chroma-data"} in container(
        task, "gateway")["MountPoints"]


@pytest.mark.parametrize("env", ENVS)
def test_chroma_listens_on_loopback_and_only_the_gateway_has_a_port(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
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
def test_gateway_has_a_read_only_root_and_a_task_volume_for_haproxy(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
    gateway = container(task, "gateway")
    assert gateway["ReadonlyRootFilesystem"] is True
    assert gateway["MountPoints"] == [
        {"ContainerPath": "/run/gateway", "ReadOnly": False, "SourceVolume": "gateway-run"},
        {"ContainerPath": "/run/node-start", "ReadOnly": False, "SourceVolume": "node-start"},
        {"ContainerPath": "/data", "ReadOnly": True, "SourceVolume": "chroma-data"},
        {"ContainerPath": "/recovery-points", "ReadOnly": False, "SourceVolume": "recovery-points"}]
    # Task storage, not EFS: HAProxy's runtime files, and the start check's handshake with the Chroma entrypoint.
    assert {"Name": "gateway-run"} in task["Properties"]["Volumes"]
    assert {"Name": "node-start"} in task["Properties"]["Volumes"]
    assert {"Name": "GATEWAY_RUNTIME_DIR", "Value": "/run/gateway"} in gateway["Environment"]


@pytest.mark.parametrize("env", ENVS)
def test_chroma_starts_through_the_writer_lock_within_the_grace(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
    chroma = container(task, "chroma")
    wait = int(next(e["Value"] for e in chroma["Environment"] if e["Name"] == "WRITER_LOCK_WAIT_SECONDS"))
    grace = ENVIRONMENTS[env].task.health_check_grace_seconds
    # Outlasts the old task's whole stop path (deregistration 30 s, gateway 30 s, Chroma 30 s at worst), and ends
    # before health checks count.
    assert OLD_WRITER_STOP_SECONDS == 90 <= wait < grace
    target_group = only(synthesized.template_json(env, "Compute"), "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in target_group["Properties"][
        "TargetGroupAttributes"]
    stop = {c["Name"]: c["StopTimeout"] for c in task["Properties"]["ContainerDefinitions"]}
    assert stop == {"chroma": 30, "gateway": 30}
    # The gateway depends on Chroma, so ECS stops it (drains) before Chroma gets its SIGTERM.
    assert container(task, "gateway")["DependsOn"] == [{"Condition": "START", "ContainerName": "chroma"}]
    dockerfile = (REPO / "cdk_app" / "node" / "chroma_image" / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["dumb-init", "--", "/usr/local/bin/chroma-node"]' in dockerfile
    assert "COPY --chmod=755 writer-lock.sh /usr/local/bin/chroma-node" in dockerfile


@pytest.mark.parametrize("env", ENVS)
def test_the_gateway_checks_the_directory_before_chroma_starts(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
    chroma = {e["Name"]: e["Value"] for e in container(task, "chroma")["Environment"]}
    gateway = {e["Name"]: e["Value"] for e in container(task, "gateway")["Environment"]}
    assert chroma["NODE_START_DIR"] == gateway["GATEWAY_NODE_START_DIR"] == "/run/node-start"
    assert gateway["GATEWAY_NODE_DATA_DIR"] == "/data"
    # The gateway waits for the lock longer than the entrypoint does, so it never gives up on a node that starts.
    assert int(gateway["GATEWAY_START_CHECK_WAIT_SECONDS"]) > int(chroma["WRITER_LOCK_WAIT_SECONDS"])
    assert int(chroma["START_CHECK_WAIT_SECONDS"]) == ENVIRONMENTS[env].task.health_check_grace_seconds


def test_the_gateway_image_leaves_out_every_module_that_needs_chromadb() -> None:
    """The measurement tools import chromadb, which the image does not install."""
    needs_chromadb = {path.name for path in (REPO / "gateway").glob("*.py")
                      if re.search(r"^(import|from) chromadb", path.read_text(), re.MULTILINE)}
    assert needs_chromadb and needs_chromadb <= set(GATEWAY_DEVELOPMENT_TOOLS)


@pytest.mark.parametrize("env", ENVS)
def test_chroma_keeps_only_as_many_indexes_loaded_as_the_task_holds(synthesized: SynthesizedApp, env: str) -> None:
    task = node_task(synthesized, env)
    chroma = {e["Name"]: e["Value"] for e in container(task, "chroma")["Environment"]}
    config = ENVIRONMENTS[env].task
    held = collections_per_task(config.memory_mib, config.collection_size.vectors, config.collection_size.dim)
    assert int(chroma[INDEX_CACHE_ENV]) == held >= 1


@pytest.mark.parametrize("env", ENVS)
def test_the_node_reads_only_its_requests_and_writes_only_its_answers(synthesized: SynthesizedApp, env: str) -> None:
    compute = synthesized.template_json(env, "Compute")
    policies = resources(compute, "AWS::IAM::Policy")
    (task_policy,) = [p for k, p in policies.items() if k.startswith("ChromaTaskTaskRoleDefaultPolicy")]
    s3_statements = {json.dumps(st["Action"]): st for st in task_policy["Properties"]["PolicyDocument"]["Statement"]
                     if str(st["Action"]).startswith("s3:")}
    assert set(s3_statements) == {'"s3:GetObject"', '"s3:PutObject"', '"s3:ListBucket"'}
    put = json.dumps(s3_statements['"s3:PutObject"']["Resource"])
    assert "/nodes/primary/snapshots/*" in put and "snapshot-request" not in put
    get = json.dumps(s3_statements['"s3:GetObject"']["Resource"])
    assert "/nodes/primary/snapshot-request.json" in get and "/nodes/primary/snapshots/*" in get
    assert s3_statements['"s3:ListBucket"']["Condition"] == {"StringLike": {"s3:prefix": "nodes/primary/*"}}
    (efs_statement,) = [st for st in task_policy["Properties"]["PolicyDocument"]["Statement"]
                        if st["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]]
    assert len(efs_statement["Condition"]["StringEquals"]["elasticfilesystem:AccessPointArn"]) == 2
