"""Scheduled daily (and started by the backup-now automation): one quiesced recovery point, or a loud failure."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from .job import RecoveryPointError, run
from .settings import FAILED_METRIC, METRICS_NAMESPACE, PAUSE_METRIC, STARTED_METRIC, BackupJobSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = BackupJobSettings.from_env(os.environ)
    metrics.add_dimension(name="Environment", value=settings.environment)
    try:
        started = run(settings, boto3.client("s3"), boto3.client("backup"), datetime.now(UTC), time.time,
                      time.sleep)
    except RecoveryPointError as error:
        metrics.add_metric(name=FAILED_METRIC, unit=MetricUnit.Count, value=1)
        logger.error("no recovery point this time", extra={"error": str(error)})
        raise  # a failed invocation: the function's error alarm notifies
    metrics.add_metric(name=FAILED_METRIC, unit=MetricUnit.Count, value=0)
    metrics.add_metric(name=STARTED_METRIC, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=PAUSE_METRIC, unit=MetricUnit.Seconds, value=started.pause_seconds)
    logger.info("quiesced recovery point sent to AWS Backup", extra={
        "snapshot_id": started.snapshot_id, "backup_job_id": started.backup_job_id,
        "pause_seconds": started.pause_seconds, "bytes": started.bytes, "records": started.records})
    return {"snapshot_id": started.snapshot_id, "backup_job_id": started.backup_job_id}
