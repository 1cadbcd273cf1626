"""A PythonFunction run on a schedule by EventBridge: the shape of every periodic check and job."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.constructs.python_function import PythonFunction


class ScheduledFunction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, unit: str, description: str, service: str,
                 schedule: events.Schedule, environment: dict[str, str],
                 log_group_name: str, log_retention_days: int, log_key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy, timeout_seconds: int = 60,
                 retry: bool = True, bundled_files: tuple[str, ...] = ()) -> None:
        """`retry`: False for a job whose failed run must not run again by itself (neither EventBridge nor Lambda
        retry it); `bundled_files`: repository files the runtime imports besides its unit (see PythonFunction)."""
        super().__init__(scope, construct_id)
        self.function = PythonFunction(
            self, "Function", unit=unit, handler="handler.lambda_handler", description=description,
            service=service, log_group_name=log_group_name, log_retention_days=log_retention_days,
            log_key=log_key, removal_policy=removal_policy, environment=environment,
            timeout=cdk.Duration.seconds(timeout_seconds), retry_attempts=None if retry else 0,
            bundled_files=bundled_files).function
        self.rule = events.Rule(self, "Schedule", schedule=schedule,
                                targets=[targets.LambdaFunction(self.function, retry_attempts=2 if retry else 0)])

    def errors(self) -> cloudwatch.Metric:
        return self.function.metric_errors(period=cdk.Duration.minutes(5))
