"""Alarms, runbooks, dashboard, checks and automation in the synthesized Observability stacks."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cdk_app.config import Automation
from cdk_app.environments import ENVIRONMENTS
from cdk_app.observability.alarm_ids import ALARM_RUNBOOKS, latency_alarm_id
from tests.cdk_support import REPO, SynthesizedApp, only, resources

ENVS = list(ENVIRONMENTS)
RUNBOOKS = REPO / "runbooks"
TOPIC = {"Ref": "AlarmsTopic3A2DFEBA"}


def alarms(synthesized: SynthesizedApp, env: str) -> dict[str, dict[str, Any]]:
    """Alarm id -> properties, for every metric and composite alarm of the environment."""
    template = synthesized.template_json(env, "Observability")
    found = {}
    for kind in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
        for alarm in resources(template, kind).values():
            name = alarm["Properties"].get("AlarmName")
            found[name.removeprefix(f"chroma-{env}-")] = alarm["Properties"]
    return found


def expected_alarm_ids(env: str) -> set[str]:
    config = ENVIRONMENTS[env]
    latency = {latency_alarm_id(op) for op, _ in config.alarms.operation_p99_ms}
    return {i for i in ALARM_RUNBOOKS if not i.startswith("gateway-latency-")} | latency


@pytest.mark.parametrize("env", ENVS)
def test_every_listed_alarm_exists_with_an_action_and_a_runbook_that_exists(synthesized: SynthesizedApp,
                                                                            env: str) -> None:
    found = alarms(synthesized, env)
    assert set(found) == expected_alarm_ids(env)
    base = ENVIRONMENTS[env].runbook_base_url
    for alarm_id, props in found.items():
        assert props["AlarmActions"] == [TOPIC] and props["OKActions"] == [TOPIC], alarm_id
        match = re.search(rf"Runbook: {re.escape(base)}/([\w-]+\.md)$", props["AlarmDescription"])
        assert match, (alarm_id, props["AlarmDescription"])
        assert (RUNBOOKS / match.group(1)).is_file(), match.group(1)
        assert len(props["AlarmDescription"]) <= 1024


def test_every_runbook_has_the_sections_an_operator_needs() -> None:
    names = set(ALARM_RUNBOOKS.values()) | {"restore-from-backup", "upgrade-chroma"}
    for name in names:
        text = (RUNBOOKS / f"{name}.md").read_text()
        assert "**Verify**" in text and "**Escalate**" in text, name
        if name not in ("restore-from-backup", "upgrade-chroma"):
            for section in ("**What it means**", "**Confirm**", "**Fix**"):
                assert section in text, (name, section)
    linked = set(re.findall(r"\]\(([\w-]+)\.md", "".join(p.read_text() for p in RUNBOOKS.glob("*.md"))))
    assert linked <= {p.stem for p in RUNBOOKS.glob("*.md")}, linked  # no broken links between runbooks


@pytest.mark.parametrize("env", ENVS)
def test_thresholds_come_from_the_environment_config(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env]
    found = alarms(synthesized, env)
    assert found["response-time-p95"]["Threshold"] == config.alarms.response_time_p95_ms / 1000
    assert found["response-time-p95"]["ExtendedStatistic"] == "p95"
    assert found["task-memory-high"]["Threshold"] == config.alarms.memory_percent
    assert found["task-cpu-high"]["Threshold"] == config.alarms.cpu_percent
    assert found["auth-failures-spike"]["Threshold"] == config.alarms.auth_failures_per_5_minutes
    assert found["efs-capacity-warning"]["Threshold"] == config.capacity.warning_percent
    assert found["efs-capacity-critical"]["Threshold"] == config.capacity.critical_percent
    assert found["efs-days-to-full"]["Threshold"] == config.capacity.days_to_full_threshold
    assert found["rotation-overdue"]["Threshold"] == (config.token_rotation_days +
                                                      config.alarms.rotation_overdue_margin_days)
    for operation, p99_ms in config.alarms.operation_p99_ms:
        latency = found[latency_alarm_id(operation)]
        assert latency["Threshold"] == p99_ms and latency["ExtendedStatistic"] == "p99"
        assert {"Name": "Operation", "Value": operation} in latency["Dimensions"]
    assert found["no-healthy-targets"]["TreatMissingData"] == "breaching"
    assert found["no-running-tasks"]["TreatMissingData"] == "breaching"
    assert found["efs-days-to-full"]["TreatMissingData"] == "notBreaching"  # no history is no alarm


def test_dev_thresholds_differ_from_prod(synthesized: SynthesizedApp) -> None:
    assert alarms(synthesized, "dev")["response-time-p95"]["Threshold"] == 0.5
    assert alarms(synthesized, "prod")["response-time-p95"]["Threshold"] == 0.25


@pytest.mark.parametrize("env", ENVS)
def test_composite_unavailable_alarm_combines_the_outage_alarms(synthesized: SynthesizedApp, env: str) -> None:
    template = synthesized.template_json(env, "Observability")
    rule = alarms(synthesized, env)["chroma-unavailable"]["AlarmRule"]
    logical_ids = {r["Properties"]["AlarmName"]: k for k, r in resources(template, "AWS::CloudWatch::Alarm").items()}
    children = [{"Fn::GetAtt": [logical_ids[f"chroma-{env}-{child}"], "Arn"]}
                for child in ("no-healthy-targets", "no-running-tasks", "alb-5xx-rate")]
    parts = rule["Fn::Join"][1]
    assert [p for p in parts if isinstance(p, dict)] == children
    assert all(" OR " in p or p in ('(ALARM("', '"))') for p in parts if isinstance(p, str))


def test_alarm_metrics_match_what_the_functions_and_gateway_emit(synthesized: SynthesizedApp) -> None:
    """Dimensions must match exactly, or an alarm watches a metric nobody publishes."""
    found = alarms(synthesized, "prod")
    capacity = found["efs-capacity-critical"]
    assert capacity["Namespace"] == "ChromaCapacity" and capacity["MetricName"] == "UsedPercentOfBudget"
    assert sorted(d["Name"] for d in capacity["Dimensions"]) == ["Environment", "service"]
    assert {"Name": "service", "Value": "chroma-prod-capacity"} in capacity["Dimensions"]
    age = found["rotation-overdue"]
    assert {"Name": "service", "Value": "chroma-prod-token-age"} in age["Dimensions"]
    gateway_5xx = found["gateway-5xx"]
    # Per node: gateway/telemetry.py publishes access metrics per (Environment, Node) and node metrics likewise.
    per_node = [{"Name": "Environment", "Value": "prod"}, {"Name": "Node", "Value": "primary"}]
    assert gateway_5xx["Namespace"] == "ChromaGateway" and gateway_5xx["Dimensions"] == per_node
    assert found["index-memory-high"]["Dimensions"] == per_node
    functions = resources(synthesized.template_json("prod", "Observability"), "AWS::Lambda::Function")
    services = {f["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in functions.values()}
    assert services == {"chroma-prod-capacity", "chroma-prod-token-age", "chroma-prod-recovery-point"}
    missing = found["recovery-point-missing"]
    assert (missing["Namespace"], missing["MetricName"]) == ("ChromaBackup", "RecoveryPointStarted")
    assert {"Name": "service", "Value": "chroma-prod-recovery-point"} in missing["Dimensions"]
    assert missing["Period"] == 86400 and missing["TreatMissingData"] == "breaching"
    pause = found["write-pause-long"]
    assert (pause["Namespace"], pause["MetricName"]) == ("ChromaGateway", "SnapshotPauseSeconds")
    assert pause["Threshold"] == ENVIRONMENTS["prod"].backup.pause_alarm_seconds


@pytest.mark.parametrize("env", ENVS)
def test_capacity_check_is_scheduled_with_the_config_and_least_privilege(synthesized: SynthesizedApp,
                                                                         env: str) -> None:
    config = ENVIRONMENTS[env]
    template = synthesized.template_json(env, "Observability")
    rates = sorted(r["Properties"]["ScheduleExpression"] for r in resources(template, "AWS::Events::Rule").values()
                   if "ScheduleExpression" in r["Properties"])
    minutes = config.capacity.check_every_minutes
    capacity_rate = f"rate({minutes // 60} hour{'s' if minutes > 60 else ''})" if minutes % 60 == 0 \
        else f"rate({minutes} minutes)"
    backup = config.backup
    assert rates == sorted([capacity_rate, "rate(1 hour)", f"cron({backup.minute_utc} {backup.hour_utc} * * ? *)"])
    statements = [s for p in resources(template, "AWS::IAM::Policy").values()
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    efs = next(s for s in statements if s["Action"] == "elasticfilesystem:DescribeFileSystems")
    assert "ChromaFileSystemArn" in json.dumps(efs["Resource"])
    describe = next(s for s in statements if s["Action"] == "secretsmanager:DescribeSecret")
    assert "ChromaGatewayTokenSecret" in json.dumps(describe["Resource"])
    assert not any("secretsmanager:GetSecretValue" in json.dumps(s["Action"]) for s in statements)


@pytest.mark.parametrize("env", ENVS)
def test_automations_run_documents_with_least_privilege_roles(synthesized: SynthesizedApp, env: str) -> None:
    config = ENVIRONMENTS[env]
    template = synthesized.template_json(env, "Observability")
    documents = {d["Properties"]["Name"]: d["Properties"] for d in resources(template, "AWS::SSM::Document").values()}
    assert set(documents) == {f"chroma-{env}-restart-service", f"chroma-{env}-backup-now"}
    restart = documents[f"chroma-{env}-restart-service"]["Content"]
    steps = {step["name"]: step for step in restart["mainSteps"]}
    assert [step["name"] for step in restart["mainSteps"]] == [
        "CheckCooldown", "RestartAllowed", "ForceNewDeployment", "WaitForDeployment", "Suppressed"]
    # The brake runs first; only its "restart" answer reaches the restart; otherwise the document ends.
    assert steps["CheckCooldown"]["inputs"]["Script"] == (REPO / "cdk_app/observability/restart_guard.py").read_text()
    assert steps["CheckCooldown"]["inputs"]["InputPayload"]["Environment"] == env
    assert steps["RestartAllowed"]["inputs"] == {"Choices": [{
        "NextStep": "ForceNewDeployment", "Variable": "{{ CheckCooldown.Restart }}", "BooleanEquals": True}],
        "Default": "Suppressed"}
    assert steps["ForceNewDeployment"]["inputs"]["Api"] == "UpdateService"
    assert steps["ForceNewDeployment"]["inputs"]["forceNewDeployment"] is True
    assert restart["parameters"]["CooldownMinutes"]["default"] == str(config.alarms.restart_cooldown_minutes)
    backup = documents[f"chroma-{env}-backup-now"]["Content"]
    # The same quiesced path as the daily backup: the backup job, started (it outlasts the action's 5 minutes).
    assert backup["mainSteps"][0]["action"] == "aws:invokeLambdaFunction"
    assert backup["mainSteps"][0]["inputs"]["InvocationType"] == "Event"
    # Runnable by hand with no parameters: every one defaults to this environment's resources.
    restart_defaults = json.dumps({k: v["default"] for k, v in restart["parameters"].items()})
    assert "ChromaCluster" in restart_defaults and "ChromaService" in restart_defaults
    assert "RemediationRestartRole" in restart_defaults
    backup_defaults = json.dumps({k: v["default"] for k, v in backup["parameters"].items()})
    for piece in ("RecoveryPointFunction", "RemediationBackupRole"):
        assert piece in backup_defaults, piece

    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
             if "EventPattern" in r["Properties"]]
    assert len(rules) == len(config.alarms.automations)
    found = alarms(synthesized, env)
    alarm_logical_ids = {props["AlarmName"]: k for k, r in template["Resources"].items()
                         if r["Type"] == "AWS::CloudWatch::Alarm" for props in [r["Properties"]]}
    for (alarm_id, automation), rule in zip(config.alarms.automations, rules, strict=True):
        assert rule["EventPattern"]["detail-type"] == ["CloudWatch Alarm State Change"]
        assert rule["EventPattern"]["detail"] == {"state": {"value": ["ALARM"]}}
        assert rule["EventPattern"]["resources"] == [
            {"Fn::GetAtt": [alarm_logical_ids[f"chroma-{env}-{alarm_id}"], "Arn"]}]
        target = rule["Targets"][0]
        assert f"automation-definition/chroma-{env}-{automation.value}:$DEFAULT" in json.dumps(target["Arn"])
        assert target["Input"] == "{}"
        assert alarm_id in found
    policies = {next(iter(r["Properties"]["Roles"][0].values())): r["Properties"]["PolicyDocument"]["Statement"]
                for r in resources(template, "AWS::IAM::Policy").values()}
    restart_policy, metric_policy = next(v for k, v in policies.items() if k.startswith("RemediationRestartRole"))
    assert restart_policy["Action"] == ["ecs:DescribeServices", "ecs:UpdateService"]
    assert "ChromaServiceA3FE004D" in json.dumps(restart_policy["Resource"])  # this service only
    assert metric_policy["Action"] == "cloudwatch:PutMetricData"
    assert metric_policy["Condition"] == {"StringEquals": {"cloudwatch:namespace": "ChromaRemediation"}}
    backup_role = next(v for k, v in policies.items() if k.startswith("RemediationBackupRole"))
    assert [s["Action"] for s in backup_role] == ["lambda:InvokeFunction"]
    assert "RecoveryPointFunction" in json.dumps(backup_role[0]["Resource"])
    if config.alarms.automations:
        starters = [v for k, v in policies.items() if k.startswith("RemediationStart")]
        assert starters and all({s["Action"] for s in st} == {"ssm:StartAutomationExecution", "iam:PassRole"}
                                for st in starters)


def test_automations_config_is_validated() -> None:
    from dataclasses import replace

    from cdk_app.validation import ConfigError

    prod = ENVIRONMENTS["prod"]
    with pytest.raises(ConfigError, match=r"alarms\.automations = 'no-such-alarm': use one of the alarm ids"):
        replace(prod, alarms=replace(prod.alarms, automations=(("no-such-alarm", Automation.BACKUP_NOW),)))
    with pytest.raises(ConfigError, match=r"capacity\.warning_percent"):
        replace(prod, capacity=replace(prod.capacity, warning_percent=95))
    with pytest.raises(ConfigError, match=r"alarms\.operation_p99_ms = 'search'"):
        replace(prod, alarms=replace(prod.alarms, operation_p99_ms=(("search", 100),)))


@pytest.mark.parametrize("env", ENVS)
def test_dashboard_covers_every_metric_family(synthesized: SynthesizedApp, env: str) -> None:
    dashboard = only(synthesized.template_json(env, "Observability"), "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for family in ("RequestCount", "TargetResponseTime", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count",
                   "HealthyHostCount", "RunningTaskCount", "CPUUtilization", "MemoryUtilization",
                   "ChromaGateway", "Latency", "AuthFailures", "Status5xx", "UsedBytes", "UsedPercentOfBudget",
                   "DaysUntilFull", "DataToMemoryPercent", "MeteredIOBytes", "PercentIOLimit",
                   "DaysSinceRotation", "StepFailed", "alarm", "restore-from-backup.md", "p99", "p50"):
        assert family in body, family


def test_index_memory_alarm_threshold_is_the_capacity_models_limit(synthesized: SynthesizedApp) -> None:
    from ops.capacity import index_bytes_limit

    alarms = {a["Properties"]["AlarmName"]: a["Properties"]
              for a in resources(synthesized.template_json("prod", "Observability"), "AWS::CloudWatch::Alarm").values()}
    alarm = alarms["chroma-prod-index-memory-high"]
    assert alarm["MetricName"] == "IndexBytes" and alarm["Statistic"] == "Maximum"
    assert alarm["Threshold"] == index_bytes_limit(ENVIRONMENTS["prod"].task.memory_mib)
