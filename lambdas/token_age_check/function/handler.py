"""Scheduled: publish how many days ago the gateway token last rotated. An alarm says when that is overdue."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

from .settings import METRICS_NAMESPACE, TokenAgeSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


def days_since_rotation(secrets: SecretsManagerClient, secret_id: str, now: datetime) -> float:
    """Days since the last completed rotation; a secret never rotated counts from its creation."""
    described = secrets.describe_secret(SecretId=secret_id)
    last: datetime = described.get("LastRotatedDate") or described["CreatedDate"]
    return (now - last).total_seconds() / 86_400


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    settings = TokenAgeSettings.from_env(os.environ)
    metrics.add_dimension(name="Environment", value=settings.environment)
    days = days_since_rotation(boto3.client("secretsmanager"), settings.secret_id, datetime.now(UTC))
    metrics.add_metric(name="DaysSinceRotation", unit=MetricUnit.Count, value=round(days, 3))
    logger.info("token age measured", extra={"days_since_rotation": days})
