"""Scheduled: measure the Chroma file system and publish capacity metrics (EMF). Alarms do the notifying."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_efs import EFSClient

from .capacity import CapacityReport, assess
from .settings import METRICS_NAMESPACE, CapacitySettings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


def read_size(efs: EFSClient, file_system_id: str) -> int | None:
    """The metered size EFS reports now; None if the file system is not there (yet)."""
    try:
        systems = efs.describe_file_systems(FileSystemId=file_system_id)["FileSystems"]
    except efs.exceptions.FileSystemNotFound:
        return None
    return int(systems[0]["SizeInBytes"]["Value"]) if systems else None


def read_history(cloudwatch: CloudWatchClient, file_system_id: str, days: int,
                 now: datetime) -> list[tuple[datetime, float]]:
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


def check(settings: CapacitySettings, efs: EFSClient, cloudwatch: CloudWatchClient,
          now: datetime) -> CapacityReport | None:
    file_system_id = settings.file_system_id
    size = read_size(efs, file_system_id)
    if size is None:
        logger.error("file system not found; nothing published", extra={"file_system_id": file_system_id})
        return None
    history = read_history(cloudwatch, file_system_id, settings.history_days, now)
    report = assess(size, history, settings.budget_gib, settings.task_memory_mib)
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
    settings = CapacitySettings.from_env(os.environ)
    metrics.add_dimension(name="Environment", value=settings.environment)
    check(settings, boto3.client("efs"), boto3.client("cloudwatch"), datetime.now(UTC))
