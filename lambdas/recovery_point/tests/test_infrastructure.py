"""The backup job in the synthesized templates: its schedule replaces the plan's, no silent retry, least privilege,
the protocol module bundled with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cdk_app.constants import recovery_point_wait_seconds
from cdk_app.environments import ENVIRONMENTS
from lambdas.recovery_point.function import settings as runtime
from tests.cdk_support import REPO, SynthesizedApp, assert_bundle_imports, function_asset, resources

ENVS = list(ENVIRONMENTS)


def job(synthesized: SynthesizedApp, env: str) -> tuple[str, dict[str, Any]]:
    functions = resources(synthesized.template_json(env, "Observability"), "AWS::Lambda::Function")
    return next((k, f) for k, f in functions.items() if k.startswith("RecoveryPointFunction"))


@pytest.mark.parametrize("env", ENVS)
def test_runs_daily_at_the_configured_time_with_no_retry_and_room_to_wait(synthesized: SynthesizedApp,
                                                                          env: str) -> None:
    config = ENVIRONMENTS[env]
    template = synthesized.template_json(env, "Observability")
    logical_id, function = job(synthesized, env)
    [rule] = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
              if logical_id in json.dumps(r["Properties"].get("Targets", []))]
    assert rule["ScheduleExpression"] == f"cron({config.backup.minute_utc} {config.backup.hour_utc} * * ? *)"
    assert rule["Targets"][0]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    [invoke] = [c["Properties"] for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()
                if logical_id in json.dumps(c["Properties"])]
    assert invoke["MaximumRetryAttempts"] == 0
    props = function["Properties"]
    variables = props["Environment"]["Variables"]
    wait = int(variables[runtime.ENV_ANSWER_WAIT_SECONDS])
    assert wait == recovery_point_wait_seconds(config.task.upstream_timeout_seconds,
                                               config.backup.max_write_pause_seconds)
    assert wait < props["Timeout"] <= 900  # the job outlives its wait, so a late answer still fails loudly
    assert variables[runtime.ENV_RETENTION_DAYS] == str(config.backup.retention_days)
    assert variables[runtime.ENV_CONTROL_BUCKET] == {"Fn::Join": ["", [
        f"chroma-{env}-rp-", {"Ref": "AWS::AccountId"}, "-", {"Ref": "AWS::Region"}]]}


@pytest.mark.parametrize("env", ENVS)
def test_may_only_ask_the_node_read_its_answers_and_start_a_backup_of_this_file_system(
        synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template_json(env, "Observability")
    [policy] = [p["Properties"]["PolicyDocument"]["Statement"] for p in resources(template, "AWS::IAM::Policy").values()
                if "RecoveryPointFunction" in json.dumps(p["Properties"]["Roles"])]
    by_action = {json.dumps(s["Action"]): s for s in policy}
    assert set(by_action) == {'["backup:ListBackupJobs", "xray:PutTelemetryRecords", "xray:PutTraceSegments"]',
                              '"s3:PutObject"', '"s3:GetObject"', '"s3:ListBucket"', '"backup:StartBackupJob"',
                              '"backup:TagResource"', '"iam:PassRole"'}
    assert json.dumps(by_action['"s3:PutObject"']["Resource"]).endswith('/nodes/primary/snapshot-request.json"]]}')
    assert json.dumps(by_action['"s3:GetObject"']["Resource"]).endswith('/nodes/primary/snapshots/*.json"]]}')
    assert by_action['"s3:ListBucket"']["Condition"] == {"StringLike": {"s3:prefix": "nodes/primary/*"}}
    assert "ChromaBackupVault" in json.dumps(by_action['"backup:StartBackupJob"']["Resource"])
    assert by_action['"iam:PassRole"']["Resource"] == {
        "Fn::ImportValue": f"chroma-{env}-storage:ExportsOutputFnGetAttBackupRole4CD139C5ArnC8CBCA27"}
    assert by_action['"iam:PassRole"']["Condition"] == {
        "StringEquals": {"iam:PassedToService": "backup.amazonaws.com"}}


def test_bundle_carries_the_protocol_it_shares_with_the_node(synthesized: SynthesizedApp) -> None:
    asset = function_asset(synthesized, job(synthesized, "prod")[1])
    protocol = "gateway/snapshot_protocol.py"
    assert (asset / protocol).read_text() == (REPO / protocol).read_text()
    assert sorted(p.name for p in (asset / "gateway").iterdir()) == ["__init__.py", "snapshot_protocol.py"]
    assert_bundle_imports(asset, "lambdas.recovery_point.function.handler")
