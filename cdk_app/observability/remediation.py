"""Safe remediations as SSM Automation documents, and EventBridge rules that start them when chosen alarms fire.

- restart-service: a new ECS deployment of the Chroma service. The service's own settings (1 task, minimum 0 %,
  maximum 100 %) still apply, so the old task stops before the new one starts: never two writers.
- backup-now: starts the backup job (lambdas/recovery_point) now: a quiesced recovery point, as the daily one.
Each document runs as its own least-privilege role; operators can start them by hand (see the runbooks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.config import Automation, EnvironmentConfig
from cdk_app.constructs.automation import SSM_PRINCIPAL, automation_content, automation_document
from cdk_app.nag import acknowledge
from cdk_app.observability import restart_guard

# The cooldown step's code: restart_guard.py itself, so the tested function is the deployed one.
GUARD_SOURCE = Path(restart_guard.__file__).read_text()



class Remediation(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, service: ecs.IBaseService,
                 cluster: ecs.ICluster, recovery_point_job: lambda_.IFunction,
                 alarms: dict[str, cloudwatch.Alarm]) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        prefix = f"chroma-{config.name}"

        restart_role = iam.Role(self, "RestartRole", assumed_by=iam.ServicePrincipal(SSM_PRINCIPAL),
                                description=f"{prefix}: restart the Chroma service (new deployment)")
        restart_role.add_to_policy(iam.PolicyStatement(
            actions=["ecs:UpdateService", "ecs:DescribeServices"], resources=[service.service_arn]))
        # The cooldown step publishes RestartSuppressed; PutMetricData has no resources, only this namespace.
        restart_role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": restart_guard.SUPPRESSED_NAMESPACE}}))
        acknowledge(restart_role, {
            "AwsSolutions-IAM5[Resource::*]": "cloudwatch:PutMetricData has no resource-level permissions; the "
                                              "statement is limited to the ChromaRemediation namespace.",
        })
        backup_role = iam.Role(self, "BackupRole", assumed_by=iam.ServicePrincipal(SSM_PRINCIPAL),
                               description=f"{prefix}: start the backup job (a quiesced recovery point) now")
        backup_role.add_to_policy(iam.PolicyStatement(actions=["lambda:InvokeFunction"],
                                                      resources=[recovery_point_job.function_arn]))

        # Every parameter defaults to this environment's values: by hand it is just
        # `aws ssm start-automation-execution --document-name chroma-<env>-restart-service`.
        self.documents: dict[Automation, tuple[ssm.CfnDocument, iam.Role]] = {
            Automation.RESTART_SERVICE: (self._document("RestartService", f"{prefix}-restart-service", _restart({
                "AutomationAssumeRole": restart_role.role_arn, "ClusterName": cluster.cluster_name,
                "ServiceName": service.service_name,
                "CooldownMinutes": str(config.alarms.restart_cooldown_minutes)}, config.name)), restart_role),
            Automation.BACKUP_NOW: (self._document("BackupNow", f"{prefix}-backup-now", _backup({
                "AutomationAssumeRole": backup_role.role_arn,
                "FunctionName": recovery_point_job.function_name})), backup_role),
        }

        for alarm_id, automation in config.alarms.automations:
            document, role = self.documents[automation]
            definition = stack.format_arn(service="ssm", resource="automation-definition",
                                          resource_name=f"{document.name}:$DEFAULT")
            events_role = iam.Role(self, f"Start{automation.name.title().replace('_', '')}On{_camel(alarm_id)}",
                                   assumed_by=iam.ServicePrincipal("events.amazonaws.com"))
            events_role.add_to_policy(iam.PolicyStatement(actions=["ssm:StartAutomationExecution"],
                                                          resources=[definition]))
            events_role.add_to_policy(iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SSM_PRINCIPAL}}))
            rule = events.CfnRule(
                self, f"On{_camel(alarm_id)}",
                description=f"{prefix}: {alarm_id} in ALARM starts {document.name}",
                event_pattern={"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
                               "resources": [alarms[alarm_id].alarm_arn],
                               "detail": {"state": {"value": ["ALARM"]}}},
                targets=[events.CfnRule.TargetProperty(
                    id="Automation", arn=definition, role_arn=events_role.role_arn,
                    input="{}")],  # no parameters: the document's defaults are this environment's
            )
            rule.node.add_dependency(document)  # the target names the document; it must exist first

    def _document(self, construct_id: str, name: str, content: dict[str, Any]) -> ssm.CfnDocument:
        return automation_document(self, construct_id, name, content)


def _camel(alarm_id: str) -> str:
    return "".join(part.capitalize() for part in alarm_id.split("-"))


_DESCRIPTIONS = {
    "AutomationAssumeRole": "Role the automation runs as",
    "ClusterName": "ECS cluster", "ServiceName": "ECS service",
    "FunctionName": "The backup job (a quiesced recovery point, then AWS Backup)",
    "CooldownMinutes": "No restart within this many minutes of the service's last deployment",
}


def _automation(description: str, defaults: dict[str, str], steps: list[dict[str, Any]],
                **extra: Any) -> dict[str, Any]:
    return automation_content(description, {name: (_DESCRIPTIONS[name], value) for name, value in defaults.items()},
                              steps, **extra)


def _restart(defaults: dict[str, str], environment: str) -> dict[str, Any]:
    return _automation(
        "Restart the Chroma service with a new deployment (old task stops first: one writer), unless it was "
        "deployed within the cooldown: then publish RestartSuppressed and do nothing.", defaults, [
            {"name": "CheckCooldown", "action": "aws:executeScript",
             "inputs": {"Runtime": "python3.11", "Handler": restart_guard.HANDLER,
                        "Script": GUARD_SOURCE,
                        "InputPayload": {"ClusterName": "{{ ClusterName }}", "ServiceName": "{{ ServiceName }}",
                                         "CooldownMinutes": "{{ CooldownMinutes }}", "Environment": environment}},
             "outputs": [{"Name": "Restart", "Selector": "$.Payload.restart", "Type": "Boolean"},
                         {"Name": "Reason", "Selector": "$.Payload.reason", "Type": "String"}]},
            {"name": "RestartAllowed", "action": "aws:branch",
             "inputs": {"Choices": [{"NextStep": "ForceNewDeployment", "Variable": "{{ CheckCooldown.Restart }}",
                                     "BooleanEquals": True}],
                        "Default": "Suppressed"}},
            {"name": "ForceNewDeployment", "action": "aws:executeAwsApi",
             "inputs": {"Service": "ecs", "Api": "UpdateService", "cluster": "{{ ClusterName }}",
                        "service": "{{ ServiceName }}", "forceNewDeployment": True}},
            {"name": "WaitForDeployment", "action": "aws:waitForAwsResourceProperty", "timeoutSeconds": 1200,
             "inputs": {"Service": "ecs", "Api": "DescribeServices", "cluster": "{{ ClusterName }}",
                        "services": ["{{ ServiceName }}"],
                        "PropertySelector": "$.services[0].deployments[0].rolloutState",
                        "DesiredValues": ["COMPLETED"]}, "isEnd": True},
            {"name": "Suppressed", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": True},
        ], outputs=["CheckCooldown.Reason"])


def _backup(defaults: dict[str, str]) -> dict[str, Any]:
    return _automation(
        "Start the backup job now: the node takes a quiesced recovery point (writes held for the copy), then "
        "AWS Backup keeps the file system. The job runs up to 15 minutes, longer than this action may wait, so it "
        "is started, not awaited: its outcome is in its log group, and a failure raises recovery-point-failed.",
        defaults, [
            {"name": "StartBackupJob", "action": "aws:invokeLambdaFunction",
             "inputs": {"FunctionName": "{{ FunctionName }}", "InvocationType": "Event",
                        "Payload": '{"source": "backup-now"}'},
             "outputs": [{"Name": "StatusCode", "Selector": "$.StatusCode", "Type": "Integer"}]},
        ], outputs=["StartBackupJob.StatusCode"])
