"""The restore in the synthesized templates: the one-off swap task and its root access point, and the restore
automation, each with only the permissions its steps need."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.environments import ENVIRONMENTS
from gateway.restore_swap import arguments
from ops import recovery_points, restore_verdict
from ops.restore_aws import TASK_LAYOUT
from tests.cdk_support import REPO, SynthesizedApp, container, resources

ENVS = list(ENVIRONMENTS)


def restore_task(synthesized: SynthesizedApp, env: str) -> dict[str, Any]:
    tasks = resources(synthesized.template_json(env, "Compute"), "AWS::ECS::TaskDefinition")
    return next(t for t in tasks.values() if t["Properties"].get("Family") == f"chroma-{env}-restore")


def policy_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [s for p in resources(template, "AWS::IAM::Policy").values()
            if any(r.get("Ref", "").startswith(role_prefix) for r in p["Properties"]["Roles"])
            for s in p["Properties"]["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("env", ENVS)
def test_the_swap_task_mounts_the_root_as_root_through_its_own_access_point_only(synthesized: SynthesizedApp,
                                                                                 env: str) -> None:
    storage = synthesized.template_json(env, "Storage")["Resources"]
    access_point = storage["ChromaRestoreAccessPoint"]["Properties"]
    assert access_point["RootDirectory"]["Path"] == "/" and access_point["PosixUser"] == {"Uid": "0", "Gid": "0"}
    task_definition = restore_task(synthesized, env)
    task = task_definition["Properties"]
    restore = container(task_definition, "restore")
    assert restore["EntryPoint"] == ["python", "-m", "gateway.restore_swap"] and restore["User"] == "0"
    assert restore["ReadonlyRootFilesystem"] is True
    assert restore["MountPoints"] == [{"ContainerPath": "/efs", "ReadOnly": False, "SourceVolume": "file-system-root"}]
    [volume] = task["Volumes"]
    efs = volume["EFSVolumeConfiguration"]
    assert efs["TransitEncryption"] == "ENABLED" and efs["AuthorizationConfig"]["IAM"] == "ENABLED"
    assert "ChromaRestoreAccessPoint" in json.dumps(efs["AuthorizationConfig"]["AccessPointId"])
    compute = synthesized.template_json(env, "Compute")
    task_role = task["TaskRoleArn"]["Fn::GetAtt"][0]
    [mount] = policy_of(compute, task_role)
    assert mount["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientRootAccess",
                               "elasticfilesystem:ClientWrite"]
    assert "ChromaRestoreAccessPoint" in json.dumps(mount["Condition"])
    # The node itself can never mount through it: its mount condition names its own access points only.
    node_mount = next(s for s in policy_of(compute, "ChromaTaskTaskRole")
                      if s["Action"] == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"])
    assert "ChromaRestoreAccessPoint" not in json.dumps(node_mount)


@pytest.mark.parametrize("env", ENVS)
def test_the_restore_automation_runs_the_steps_of_chroma_ops_restore(synthesized: SynthesizedApp, env: str) -> None:
    compute = synthesized.template_json(env, "Compute")
    [document] = [d["Properties"] for d in resources(compute, "AWS::SSM::Document").values()]
    assert document["Name"] == f"chroma-{env}-restore"
    content = document["Content"]
    steps = {s["name"]: s for s in content["mainSteps"]}
    assert list(steps) == ["ChooseRecoveryPoint", "StopNode", "WaitNodeStopped", "StartRestoreJob", "WaitRestoreJob",
                           "RestoreJobCompleted", "RunSwapTask", "WaitSwapTask", "SwapSucceeded", "StartNode",
                           "AwaitVerdict", "StopNodeUnverified", "StartNodeUntouched", "Failed"]
    # The choice and the verdict are the CLI's own code, embedded.
    assert steps["ChooseRecoveryPoint"]["inputs"]["Script"] == (REPO / "ops/recovery_points.py").read_text()
    assert steps["ChooseRecoveryPoint"]["inputs"]["Handler"] == recovery_points.HANDLER
    assert steps["AwaitVerdict"]["inputs"]["Script"] == (REPO / "ops/restore_verdict.py").read_text()
    assert steps["AwaitVerdict"]["inputs"]["Handler"] == restore_verdict.HANDLER
    assert steps["AwaitVerdict"]["inputs"]["InputPayload"]["Key"] == \
        "nodes/primary/snapshots/restore-{{ automation:EXECUTION_ID }}.json"
    # The node stops before anything is restored; the swap gets the same arguments the CLI gives it.
    assert steps["StopNode"]["inputs"]["desiredCount"] == 0 and steps["StartNode"]["inputs"]["desiredCount"] == 1
    job = steps["StartRestoreJob"]["inputs"]
    assert job["Metadata"]["newFileSystem"] == "false"
    assert job["Metadata"]["ItemsToRestore"] == '["/chroma/recovery-points/latest"]'
    override = steps["RunSwapTask"]["inputs"]["overrides"]["containerOverrides"][0]
    assert override == {"name": "restore", "command": arguments(
        TASK_LAYOUT, "restore-{{ automation:EXECUTION_ID }}", 1000, 1000, "{{ ChooseRecoveryPoint.SnapshotId }}",
        "{{ ChooseRecoveryPoint.RecoveryPointArn }}")}
    # Failures: before the swap the node restarts untouched; a failed swap or verdict leaves it stopped; all fail.
    for name in ("WaitNodeStopped", "StartRestoreJob", "WaitRestoreJob", "RestoreJobCompleted", "RunSwapTask"):
        assert steps[name]["onFailure"] == "step:StartNodeUntouched", name
    assert steps["SwapSucceeded"]["onFailure"] == "step:Failed"
    assert steps["AwaitVerdict"]["onFailure"] == "step:StopNodeUnverified"
    assert steps["StopNodeUnverified"]["inputs"]["desiredCount"] == 0
    assert steps["StopNodeUnverified"]["nextStep"] == steps["StartNodeUntouched"]["nextStep"] == "Failed"
    assert content["parameters"]["RecoveryPoint"]["default"] == "latest"
    assert content["parameters"]["ChromaVersion"]["default"] == ENVIRONMENTS[env].chroma_image.tag
    assert content["parameters"]["Subnets"]["type"] == "StringList"


@pytest.mark.parametrize("env", ENVS)
def test_the_restore_automation_role_may_do_only_its_steps(synthesized: SynthesizedApp, env: str) -> None:
    statements = policy_of(synthesized.template_json(env, "Compute"), "RestoreAutomationRole")
    actions = sorted(json.dumps(s["Action"]) for s in statements)
    assert actions == sorted(json.dumps(a) for a in [
        ["ecs:DescribeServices", "ecs:UpdateService"], "ecs:RunTask", "ecs:DescribeTasks", "iam:PassRole",
        "backup:ListRecoveryPointsByBackupVault", ["backup:ListTags", "backup:StartRestoreJob"],
        "backup:DescribeRestoreJob", "iam:PassRole", "s3:GetObject", "s3:ListBucket"])
    by_action = {json.dumps(s["Action"]): s for s in statements}
    assert "ChromaServiceA3FE004D" in json.dumps(by_action['["ecs:DescribeServices", "ecs:UpdateService"]'])
    run_task = by_action['"ecs:RunTask"']
    assert json.dumps(run_task["Resource"]).endswith(f':task-definition/chroma-{env}-restore:*"]]}}')
    assert "ChromaCluster1A5F5483" in json.dumps(run_task["Condition"])
    passes = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert sorted(s["Condition"]["StringEquals"]["iam:PassedToService"] for s in passes) == [
        "backup.amazonaws.com", "ecs-tasks.amazonaws.com"]
    assert by_action['"s3:ListBucket"']["Condition"] == {"StringLike": {"s3:prefix": "nodes/primary/*"}}
    assert not any(s["Resource"] == "*" for s in statements if s["Action"] != "backup:DescribeRestoreJob")
