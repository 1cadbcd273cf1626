"""Stateful and fixed-name resources keep their logical ids, and every logical id leads to its folder by name.

A changed logical id makes CloudFormation create a new resource and delete the old one: for the file system that is
data loss; for the ECS service it is two Chroma writers on one directory during the swap. These ids are pinned in
code (`pin_logical_id`) or follow from construct ids that must not move; this test fails on any change to them.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import aws_cdk as cdk
import pytest
from constructs import IConstruct
from syrupy.assertion import SnapshotAssertion

from cdk_app.config import PRIMARY_NODE
from cdk_app.environments import ENVIRONMENTS
from cdk_app.node.names import pascal
from tests.cdk_support import REPO, STACK_IDS, SynthesizedApp

# stack -> logical id -> resource type, in every environment.
STATEFUL: dict[str, dict[str, str]] = {
    "Network": {"NetworkFlowLogsKey9F917D90": "AWS::KMS::Key"},  # retained flow logs stay readable with it
    "Storage": {
        "ChromaDataKey": "AWS::KMS::Key",
        "ChromaFileSystem": "AWS::EFS::FileSystem",
        "ChromaPrimaryNodeAccessPoint": "AWS::EFS::AccessPoint",
        "ChromaRecoveryPointsAccessPoint": "AWS::EFS::AccessPoint",
        "ChromaRestoreAccessPoint": "AWS::EFS::AccessPoint",
        "ChromaBackupVault": "AWS::Backup::BackupVault",
        "ChromaGatewayTokenSecret": "AWS::SecretsManager::Secret",
    },
    "Compute": {
        "ChromaCluster1A5F5483": "AWS::ECS::Cluster",
        "ChromaServiceA3FE004D": "AWS::ECS::Service",
        "ChromaTask6B15C82C": "AWS::ECS::TaskDefinition",
        "LoadBalancerAlb240B1141": "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "TokenRotationScheduleCD7439BB": "AWS::SecretsManager::RotationSchedule",
    },
}
# One mount target per zone, named after its subnet by the EFS construct.
MOUNT_TARGETS = ("FileSystemEfsMountTargetprivateSubnet1AE7C092D", "FileSystemEfsMountTargetprivateSubnet247FF4A5D",
                 "FileSystemEfsMountTargetprivateSubnet3435E9E80")
# Resources whose physical name is fixed: a new logical id would collide with the old resource's name.
NAMED_TYPES: dict[str, str] = {
    "AWS::SSM::Parameter": "Name", "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName", "AWS::SSM::Document": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName", "AWS::Logs::LogGroup": "LogGroupName",
}


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_stateful_resources_keep_their_logical_ids(synthesized: SynthesizedApp, env: str) -> None:
    for stack_id, expected in STATEFUL.items():
        template = synthesized.template_json(env, stack_id)["Resources"]
        assert {logical_id: template.get(logical_id, {}).get("Type") for logical_id in expected} == expected
    zones = len(ENVIRONMENTS[env].network.availability_zones)
    storage = synthesized.template_json(env, "Storage")["Resources"]
    mount_targets = sorted(k for k, r in storage.items() if r["Type"] == "AWS::EFS::MountTarget")
    assert mount_targets == sorted(MOUNT_TARGETS[:zones])


def test_named_resources_keep_their_logical_ids(synthesized: SynthesizedApp,
                                               snapshot_json: SnapshotAssertion) -> None:
    """Fixed-name resources (parameters, alarms, documents, dashboard) by logical id: a snapshot of names only."""
    named = {}
    for stack_id in STACK_IDS:
        for logical_id, resource in synthesized.template_json("prod", stack_id)["Resources"].items():
            if resource["Type"] in NAMED_TYPES:
                named[f"{stack_id}/{logical_id}"] = resource["Properties"][NAMED_TYPES[resource["Type"]]]
    assert named == snapshot_json


def _snake(construct_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", construct_id).lower()


def _has_resources(construct: IConstruct) -> bool:
    return any(isinstance(c, cdk.CfnResource) for c in construct.node.find_all())


@pytest.mark.parametrize("stack_id", STACK_IDS)
@pytest.mark.parametrize("nodes", ["one", "three"])
def test_every_logical_id_leads_to_its_folder_by_name(synthesized: SynthesizedApp, three_nodes: SynthesizedApp,
                                                      stack_id: str, nodes: str) -> None:
    """A logical id starts with its top-level construct id; that id, in snake_case, names the module (or unit
    folder) that defines the construct: `SecurityGroupsTask...` -> cdk_app/network/security_groups.py,
    `TokenRotationFunction...` -> lambdas/token_rotation/. A node other than the primary suffixes its construct
    ids with its name (`FileSystemSearch...` -> cdk_app/storage/file_system.py)."""
    from tests.three_nodes import THREE_NODES

    stack = synthesized.stack("prod", stack_id) if nodes == "one" else three_nodes.stack(THREE_NODES.name,
                                                                                            stack_id)
    suffixes = [pascal(n.name) for n in THREE_NODES.nodes if n.name != PRIMARY_NODE]
    checked = 0
    for child in stack.node.children:
        if not _has_resources(child) or child.node.id.startswith("Custom::"):  # CDK's own singleton providers
            continue
        source = Path(inspect.getfile(type(child))).resolve()
        assert source.is_relative_to(REPO), f"{child.node.id}: defined outside the repository ({source})"
        names = {source.stem, *(part for part in source.relative_to(REPO).parts[:-1])}
        construct_id = next((child.node.id.removesuffix(s) for s in suffixes if child.node.id.endswith(s)),
                            child.node.id)
        assert _snake(construct_id) in names, (
            f"{stack_id}/{child.node.id} is defined in {source.relative_to(REPO)}: rename the module or folder "
            f"to {_snake(child.node.id)}, never the construct id (that would replace its resources)")
        checked += 1
    assert checked >= 2
