"""Scale-out by tenant (issue #14), proven on the three-node example environment (tests/three_nodes.py): one
service, file system, writer lock and target group per node, no two services on one directory, listener rules that
route each placed tenant to its node, per-node alarms and jobs, and cdk-nag and cfn-lint clean."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from cdk_app.config import PRIMARY_NODE, NodeConfig
from cdk_app.environments import DEV, ENVIRONMENTS
from cdk_app.node.names import NodeNames
from cdk_app.node.routing import routing_rules, tenant_patterns
from cdk_app.validation import MAX_NODES, MAX_ROUTED_TENANTS, ConfigError
from gateway import settings as gw
from tests.cdk_support import STACK_IDS, SynthesizedApp, cfn_lint_findings, resources
from tests.three_nodes import THREE_NODES

ENV = THREE_NODES.name
NODES = [node.name for node in THREE_NODES.nodes]


def _template(app: SynthesizedApp, stack_id: str) -> dict[str, Any]:
    found: dict[str, Any] = app.template_json(ENV, stack_id)["Resources"]
    return found


def _imports(value: Any) -> str:
    """Every import, reference and attribute named in `value`, as one string to search."""
    return json.dumps(value)


def _service_of(compute: dict[str, Any], node: str) -> Any:
    return compute[NodeNames(node).logical_id("Service")]


def _task_of(compute: dict[str, Any], node: str) -> Any:
    return compute[NodeNames(node).logical_id("Task")]


def _container(task: dict[str, Any], name: str) -> Any:
    """`task`: a task definition's properties."""
    return next(c for c in task["ContainerDefinitions"] if c["Name"] == name)


def _environment(container: dict[str, Any]) -> dict[str, str]:
    return {v["Name"]: v["Value"] for v in container.get("Environment", [])}


def test_each_node_has_its_own_pinned_file_system_and_access_points(three_nodes: SynthesizedApp) -> None:
    storage = _template(three_nodes, "Storage")
    for node in NODES:
        names = NodeNames(node)
        expected = {names.logical_id("FileSystem"): "AWS::EFS::FileSystem",
                    names.logical_id("AccessPoint"): "AWS::EFS::AccessPoint",
                    names.logical_id("RecoveryPointsAccessPoint"): "AWS::EFS::AccessPoint",
                    names.logical_id("RestoreAccessPoint"): "AWS::EFS::AccessPoint"}
        assert {i: storage.get(i, {}).get("Type") for i in expected} == expected
        node_access_point = storage[names.logical_id("AccessPoint")]["Properties"]
        assert node_access_point["RootDirectory"]["Path"] == names.data_path
        for access_point in expected:
            if access_point != names.logical_id("FileSystem"):
                assert storage[access_point]["Properties"]["FileSystemId"] == {
                    "Ref": names.logical_id("FileSystem")}
    # Written out, so that a change to the naming code fails here: these ids must never change once deployed.
    assert {k: v["Type"] for k, v in storage.items() if k.startswith("NodeSearch") and "MountTarget" not in k} == {
        "NodeSearchFileSystem": "AWS::EFS::FileSystem", "NodeSearchAccessPoint": "AWS::EFS::AccessPoint",
        "NodeSearchRecoveryPointsAccessPoint": "AWS::EFS::AccessPoint",
        "NodeSearchRestoreAccessPoint": "AWS::EFS::AccessPoint"}
    compute = _template(three_nodes, "Compute")
    assert {k: compute[k]["Type"] for k in ("NodeSearchService", "NodeSearchTask", "NodeArchiveService",
                                            "NodeArchiveTask", "ChromaServiceA3FE004D", "ChromaTask6B15C82C")} == {
        "NodeSearchService": "AWS::ECS::Service", "NodeSearchTask": "AWS::ECS::TaskDefinition",
        "NodeArchiveService": "AWS::ECS::Service", "NodeArchiveTask": "AWS::ECS::TaskDefinition",
        "ChromaServiceA3FE004D": "AWS::ECS::Service", "ChromaTask6B15C82C": "AWS::ECS::TaskDefinition"}
    # The primary keeps today's ids (also pinned for every shipped environment in tests/test_logical_ids.py).
    assert NodeNames(PRIMARY_NODE).logical_id("FileSystem") == "ChromaFileSystem"
    assert "ChromaFileSystem" in storage and "ChromaPrimaryNodeAccessPoint" in storage
    assert len(resources(three_nodes.template_json(ENV, "Storage"), "AWS::EFS::FileSystem")) == 3
    mount_targets = resources(three_nodes.template_json(ENV, "Storage"), "AWS::EFS::MountTarget")
    assert len(mount_targets) == 3 * len(THREE_NODES.network.availability_zones)


def test_one_single_writer_service_per_node_and_no_two_on_one_directory(three_nodes: SynthesizedApp) -> None:
    compute = _template(three_nodes, "Compute")
    services = resources(three_nodes.template_json(ENV, "Compute"), "AWS::ECS::Service")
    assert sorted(services) == sorted(NodeNames(n).logical_id("Service") for n in NODES)
    directories = set()
    for node in NODES:
        service = _service_of(compute, node)["Properties"]
        assert service["DesiredCount"] == 1
        assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
        assert service["DeploymentConfiguration"]["MaximumPercent"] == 100
        assert service["TaskDefinition"] == {"Ref": NodeNames(node).logical_id("Task")}
        task = _task_of(compute, node)["Properties"]
        data = next(v for v in task["Volumes"] if v["Name"] == "chroma-data")["EFSVolumeConfiguration"]
        names = _imports(data)
        assert NodeNames(node).logical_id("FileSystem") in names
        assert NodeNames(node).logical_id("AccessPoint") in names
        for other in NODES:
            if other != node:
                assert NodeNames(other).logical_id("FileSystem") not in _imports(task["Volumes"])
        directories.add(_imports(data))
        # Each node's Chroma takes its own directory's writer lock before it starts.
        chroma = _environment(_container(task, "chroma"))
        assert int(chroma["WRITER_LOCK_WAIT_SECONDS"]) > 0
    assert len(directories) == len(NODES)


def test_each_task_role_mounts_only_its_own_node(three_nodes: SynthesizedApp) -> None:
    compute = _template(three_nodes, "Compute")
    policies = resources(three_nodes.template_json(ENV, "Compute"), "AWS::IAM::Policy")
    for node in NODES:
        role = _task_of(compute, node)["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
        policy = next(p for p in policies.values() if {"Ref": role} in p["Properties"]["Roles"])
        mount = next(s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                     if "elasticfilesystem:ClientMount" in s["Action"])
        text = _imports(mount)
        assert NodeNames(node).logical_id("AccessPoint") in text
        assert all(NodeNames(o).logical_id("AccessPoint") not in text for o in NODES if o != node)


def test_listener_rules_route_each_placed_tenant_to_its_node(three_nodes: SynthesizedApp) -> None:
    template = three_nodes.template_json(ENV, "Compute")
    compute = template["Resources"]
    all_rules = resources(template, "AWS::ElasticLoadBalancingV2::ListenerRule")
    rules = {k: r for k, r in all_rules.items() if r["Properties"]["Conditions"][0]["Field"] == "path-pattern"}
    expected = routing_rules(THREE_NODES)
    assert len(rules) == len(expected) == 3  # search: 3 tenants in 2 rules; archive: 1
    target_group_of = {node: next(lb["TargetGroupArn"]["Ref"]
                                  for lb in _service_of(compute, node)["Properties"]["LoadBalancers"])
                       for node in NODES}
    seen = {}
    for rule in rules.values():
        props = rule["Properties"]
        (condition,) = props["Conditions"]
        patterns = tuple(condition["PathPatternConfig"]["Values"])
        node = next(n for n, tg in target_group_of.items() if props["Actions"][0]["TargetGroupArn"] == {"Ref": tg})
        seen[patterns] = (node, props["Priority"])
    assert seen == {r.patterns: (r.node, r.priority) for r in expected}
    assert len({priority for _, priority in seen.values()}) == len(seen)
    routed = {p for patterns in seen for p in patterns}
    for tenant, node in THREE_NODES.tenant_placement.items():
        assert (set(tenant_patterns(tenant)) <= routed) == (node != PRIMARY_NODE)
    # A request naming its node (X-Chroma-Node, as move-tenant sends) reaches that node, before any tenant rule.
    addressed = {r["Properties"]["Conditions"][0]["HttpHeaderConfig"]["Values"][0]: r["Properties"]
                 for r in all_rules.values() if r["Properties"]["Conditions"][0]["Field"] == "http-header"}
    assert set(addressed) == set(NODES)
    for node, props in addressed.items():
        assert props["Conditions"][0]["HttpHeaderConfig"]["HttpHeaderName"] == gw.NODE_HEADER
        assert props["Actions"][0]["TargetGroupArn"] == {"Ref": target_group_of[node]}
        assert props["Priority"] < min(r.priority for r in expected)
    # Services update after the rules: a tenant's new route exists before its nodes restart.
    for node in NODES:
        depends = _service_of(compute, node).get("DependsOn", [])
        assert {k for k in all_rules} <= set(depends)
    # Everything else (the primary's tenants, unplaced ones, requests naming no tenant) goes to the primary.
    (listener,) = resources(template, "AWS::ElasticLoadBalancingV2::Listener").values() if THREE_NODES.tls is None \
        else [r for r in resources(template, "AWS::ElasticLoadBalancingV2::Listener").values()
              if r["Properties"]["Port"] == 443]
    assert listener["Properties"]["DefaultActions"][0]["TargetGroupArn"] == {"Ref": target_group_of[PRIMARY_NODE]}


def test_each_gateway_knows_the_placement(three_nodes: SynthesizedApp) -> None:
    compute = _template(three_nodes, "Compute")
    placement = THREE_NODES.tenant_placement
    for node in NODES:
        env = _environment(_container(_task_of(compute, node)["Properties"], "gateway"))
        here = [t for t, n in placement.items() if n == node]
        elsewhere = sorted(t for t, n in placement.items() if n != node)
        assert env.get(gw.ENV_NODE_TENANTS, "").split(",") == here
        assert env[gw.ENV_TENANTS_ELSEWHERE].split(",") == elsewhere
        assert env.get(gw.ENV_DEFAULT_NODE, "true") == ("true" if node == PRIMARY_NODE else "false")
        assert env.get(gw.ENV_NODE, PRIMARY_NODE) == node
        assert env[gw.ENV_SNAPSHOT_PREFIX] == f"nodes/{node}"
        # The settings the gateway really parses from them are valid.
        parsed = gw.Settings.from_env({**env, gw.ENV_TOKEN_SECRET_ID: "arn-of-the-secret"})
        assert (parsed.node, parsed.node_tenants, parsed.default_node) == (node, tuple(here), node == PRIMARY_NODE)


def test_shipped_environments_render_no_placement() -> None:
    """One node and no tenants: the gateway's environment is what it was before nodes existed."""
    from cdk_app.node.chroma import placement_environment

    for config in ENVIRONMENTS.values():
        assert [node.name for node in config.nodes] == [PRIMARY_NODE]
        assert placement_environment(config, config.nodes[0]) == {}


def test_every_node_has_its_alarms_jobs_and_composite(three_nodes: SynthesizedApp) -> None:
    template = three_nodes.template_json(ENV, "Observability")
    alarms = {r["Properties"]["AlarmName"]: r["Properties"]
              for r in resources(template, "AWS::CloudWatch::Alarm").values()}
    for node in NODES:
        qualified = NodeNames(node).qualified
        for alarm_id in ("no-healthy-targets", "task-memory-high", "index-memory-high", "efs-capacity-critical",
                         "recovery-point-failed", "recovery-point-missing", "gateway-latency-query"):
            assert f"chroma-{ENV}-{qualified(alarm_id)}" in alarms
        gateway_alarm = alarms[f"chroma-{ENV}-{qualified('index-memory-high')}"]
        assert {"Name": "Node", "Value": node} in gateway_alarm["Dimensions"]
    # The archive node's own (bigger) task sets its index limit.
    assert (alarms[f"chroma-{ENV}-archive-index-memory-high"]["Threshold"]
            > alarms[f"chroma-{ENV}-index-memory-high"]["Threshold"])
    # Environment alarms exist once.
    assert f"chroma-{ENV}-alb-5xx-rate" in alarms and f"chroma-{ENV}-search-alb-5xx-rate" not in alarms
    composites = {r["Properties"]["AlarmName"]: r["Properties"]["AlarmRule"]
                  for r in resources(template, "AWS::CloudWatch::CompositeAlarm").values()}
    assert set(composites) == {f"chroma-{ENV}-chroma-unavailable", *(f"chroma-{ENV}-{n}-unavailable" for n in NODES)}
    environment_rule = json.dumps(composites[f"chroma-{ENV}-chroma-unavailable"])
    for node in NODES:
        assert f"{node}unavailable" in environment_rule.replace("-", "").lower()
    functions = resources(template, "AWS::Lambda::Function")
    for node in NODES:
        jobs = [f["Properties"]["Environment"]["Variables"] for f in functions.values()
                if f["Properties"]["Environment"]["Variables"].get("NODE_PREFIX") == f"nodes/{node}"]
        assert len(jobs) == 1
        assert NodeNames(node).logical_id("FileSystem") in _imports(jobs[0]["FILE_SYSTEM_ARN"])


def test_three_node_templates_are_cfn_lint_clean(three_nodes: SynthesizedApp) -> None:
    # cdk-nag ran at synth (it raises on any unacknowledged finding); cfn-lint here.
    findings = cfn_lint_findings(three_nodes)
    assert not findings, json.dumps(findings, indent=1)


def test_nodes_per_environment_limit_keeps_every_stack_under_cloudformations(
        three_nodes: SynthesizedApp, synthesized: SynthesizedApp) -> None:
    """MAX_NODES is what fits: the resources one node adds, measured here, times the limit, under 500 per stack."""
    for stack_id in STACK_IDS:
        one = len(synthesized.template_json("staging", stack_id)["Resources"])
        three = len(three_nodes.template_json(ENV, stack_id)["Resources"])
        per_node = (three - one) / 2
        assert one + per_node * (MAX_NODES - 1) < 500, (stack_id, one, per_node)


def test_node_config_mistakes_are_refused_with_the_limit_named() -> None:
    with pytest.raises(ConfigError) as caught:
        replace(DEV, nodes=(*(NodeConfig(f"n{i}") for i in range(MAX_NODES)), NodeConfig(PRIMARY_NODE)))
    assert any(f"use 1 to {MAX_NODES} nodes" in p for p in caught.value.problems)
    many = tuple(f"tenant-{i:03d}" for i in range(MAX_ROUTED_TENANTS + 1))
    with pytest.raises(ConfigError) as caught:
        replace(DEV, nodes=(NodeConfig(PRIMARY_NODE), NodeConfig("big", tenants=many)))
    assert caught.value.problems == [
        f"nodes.tenants = {MAX_ROUTED_TENANTS + 1}: place at most {MAX_ROUTED_TENANTS} tenants on nodes other than "
        "'primary': each takes 2 path patterns, a load balancer rule holds 5 and a listener 100 rules (AWS quotas), "
        f"{MAX_NODES} of them for addressing nodes"]
    with pytest.raises(ConfigError) as caught:
        replace(DEV, nodes=(NodeConfig("search", tenants=("acme",)),))
    assert caught.value.problems[0].startswith("nodes = ('search',): keep the node 'primary'")


def test_each_node_has_its_own_restore_task_and_automation(three_nodes: SynthesizedApp) -> None:
    template = three_nodes.template_json(ENV, "Compute")
    tasks = {r["Properties"]["Family"]: r["Properties"]
             for r in resources(template, "AWS::ECS::TaskDefinition").values()
             if r["Properties"].get("Family", "").endswith("restore")}
    assert set(tasks) == {f"chroma-{ENV}-restore", f"chroma-{ENV}-search-restore", f"chroma-{ENV}-archive-restore"}
    for node in NODES:
        family = f"chroma-{ENV}-{NodeNames(node).qualified('restore')}"
        volume = _imports(tasks[family]["Volumes"])
        assert NodeNames(node).logical_id("FileSystem") in volume
        assert NodeNames(node).logical_id("RestoreAccessPoint") in volume
    documents = {r["Properties"]["Name"]: json.dumps(r["Properties"]["Content"])
                 for r in resources(template, "AWS::SSM::Document").values()}
    search = documents[f"chroma-{ENV}-search-restore"]
    assert '"chroma/search"' in search and "nodes/search/snapshots/" in search
    assert '"chroma/primary"' in documents[f"chroma-{ENV}-restore"]
