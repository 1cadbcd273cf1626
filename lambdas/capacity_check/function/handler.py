"""Scheduled: measure the Chroma file system and publish capacity metrics (EMF). Alarms do the notifying."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from .capacity import CapacityReport, assess
from .settings import (
    ENV_BUDGET_GIB,
    ENV_ENVIRONMENT,
    ENV_FILE_SYSTEM_ID,
    ENV_HISTORY_DAYS,
    ENV_TASK_MEMORY_MIB,
    METRICS_NAMESPACE,
)

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


def read_size(efs: Any, file_system_id: str) -> int | None:
    """The metered size EFS reports now; None if the file system is not there (yet)."""
    try:
        systems = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
    except efs.exceptions.FileSystemNotFound:
        return None
    return int(systems[0]["SizeInBytes"]["Value"]) if systems else None


def read_history(cloudwatch: Any, file_system_id: str, days: int, now: datetime) -> list[tuple[datetime, float]]:
    """Hourly averages of AWS/EFS StorageBytes (all storage classes) over the last `days`."""
    response = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "size", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "AWS/EFS", "MetricName": "StorageBytes",
                       "Dimensions": [{"Name": "FileSystemId", "Value": file_system_id},
                                      {"Name": "StorageClass", "Value": "Total"}]},
            "Period": 3600, "Stat": "Average"}}],
        StartTime=now - timedelta(days=days), EndTime=now)
    result = response["MetricDataResults"][0]
    return sorted(zip(result["Timestamps"], result["Values"], strict=True))


def publish(report: CapacityReport) -> None:
    metrics.add_metric(name="UsedBytes", unit=MetricUnit.Bytes, value=report.used_bytes)
    optional = {
        "UsedPercentOfBudget": (report.used_percent, MetricUnit.Percent),
        "GrowthBytesPerDay": (report.growth_bytes_per_day, MetricUnit.Bytes),
        "DaysUntilFull": (report.days_until_full, MetricUnit.Count),
        "DataToMemoryPercent": (report.data_to_memory_percent, MetricUnit.Percent),
    }
    for name, (value, unit) in optional.items():
        if value is not None:  # unknown is left out, never published as a misleading 0
            metrics.add_metric(name=name, unit=unit, value=round(value, 3))


def check(env: Mapping[str, str], efs: Any, cloudwatch: Any, now: datetime) -> CapacityReport | None:
    file_system_id = env[ENV_FILE_SYSTEM_ID]
    size = read_size(efs, file_system_id)
    if size is None:
        logger.error("file system not found; nothing published", extra={"file_system_id": file_system_id})
        return None
    history = read_history(cloudwatch, file_system_id, int(env.get(ENV_HISTORY_DAYS, "14")), now)
    report = assess(size, history, float(env.get(ENV_BUDGET_GIB, "0")), float(env.get(ENV_TASK_MEMORY_MIB, "0")))
    for problem in report.problems:
        logger.warning(problem, extra={"file_system_id": file_system_id})
    publish(report)
    logger.info("capacity measured", extra={"file_system_id": file_system_id, "used_bytes": report.used_bytes,
                                             "used_percent": report.used_percent,
                                             "growth_bytes_per_day": report.growth_bytes_per_day,
                                             "days_until_full": report.days_until_full,
                                             "data_to_memory_percent": report.data_to_memory_percent})
    return report


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> None:
    metrics.add_dimension(name="Environment", value=os.environ[ENV_ENVIRONMENT])
    check(os.environ, boto3.client("efs"), boto3.client("cloudwatch"), datetime.now(UTC))
