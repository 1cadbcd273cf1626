"""Capacity arithmetic with known answers, and the handler against moto's EFS and CloudWatch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.efs.models import efs_backends

from lambdas.capacity_check.function import handler
from lambdas.capacity_check.function.capacity import GIB, MIB, assess, growth_per_day
from lambdas.capacity_check.function.settings import (
    ENV_BUDGET_GIB,
    ENV_ENVIRONMENT,
    ENV_FILE_SYSTEM_ID,
    ENV_HISTORY_DAYS,
    ENV_TASK_MEMORY_MIB,
    METRIC_NAMES,
    CapacitySettings,
)
from lambdas.env_settings import SettingsError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def daily(start_gib: float, per_day_gib: float, days: int) -> list[tuple[datetime, float]]:
    return [(NOW - timedelta(days=days - i), (start_gib + per_day_gib * i) * GIB) for i in range(days + 1)]


def test_growth_is_the_least_squares_slope() -> None:
    assert growth_per_day(daily(10, 2, 7)) == pytest.approx(2 * GIB)
    noisy = [(t, v + (GIB if i % 2 else -GIB)) for i, (t, v) in enumerate(daily(10, 1, 10))]
    assert growth_per_day(noisy) == pytest.approx(GIB, rel=0.15)


def test_normal_growth_projects_days_until_full() -> None:
    report = assess(60 * GIB, daily(46, 2, 7), budget_gib=100, task_memory_mib=8192)
    assert report.used_percent == pytest.approx(60.0)
    assert report.growth_bytes_per_day == pytest.approx(2 * GIB)
    assert report.days_until_full == pytest.approx(20.0)  # 40 GiB left at 2 GiB/day
    assert report.data_to_memory_percent == pytest.approx(100 * 60 * GIB / (8192 * MIB))
    assert report.problems == []


def test_no_history_gives_no_projection_and_says_why() -> None:
    for history in ([], daily(1, 1, 1)[:2], [(NOW - timedelta(hours=h), 1.0 * GIB) for h in range(5)]):
        report = assess(GIB, history, budget_gib=100, task_memory_mib=4096)
        assert report.growth_bytes_per_day is None and report.days_until_full is None
        assert report.used_percent == pytest.approx(1.0)
        assert "not enough StorageBytes history" in report.problems[0]


def test_shrinking_or_flat_data_never_projects_a_fill_date() -> None:
    assert assess(50 * GIB, daily(60, -1, 10), 100, 4096).days_until_full is None
    assert assess(50 * GIB, daily(50, 0, 10), 100, 4096).days_until_full is None


def test_zero_budget_reports_the_problem_and_no_percent() -> None:
    report = assess(5 * GIB, daily(1, 0.5, 8), budget_gib=0, task_memory_mib=4096)
    assert report.used_percent is None and report.days_until_full is None
    assert report.problems == ["capacity budget is 0 GiB; percent used and days until full need a budget > 0"]


def test_over_budget_is_full_now() -> None:
    report = assess(120 * GIB, daily(100, 3, 7), budget_gib=100, task_memory_mib=4096)
    assert report.used_percent == pytest.approx(120.0)
    assert report.days_until_full == 0.0


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        efs = boto3.client("efs")
        file_system_id = efs.create_file_system(CreationToken=str(uuid.uuid4()))["FileSystemId"]
        yield {"efs": efs, "cloudwatch": boto3.client("cloudwatch"), "fs": file_system_id}


def set_size(file_system_id: str, size: int) -> None:
    efs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].file_systems_by_id[file_system_id]._size_value = size


def put_history(cloudwatch: CloudWatchClient, file_system_id: str, points: list[tuple[datetime, float]]) -> None:
    for timestamp, value in points:
        cloudwatch.put_metric_data(Namespace="AWS/EFS", MetricData=[{
            "MetricName": "StorageBytes", "Timestamp": timestamp, "Value": value, "Unit": "Bytes",
            "Dimensions": [{"Name": "FileSystemId", "Value": file_system_id},
                           {"Name": "StorageClass", "Value": "Total"}]}])


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one EMF line flushed, with each metric's single value unwrapped (Powertools emits lists)."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(lines) == 1, lines
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in lines[0].items()}


def env(file_system_id: str, budget: str = "100") -> dict[str, str]:
    return {ENV_FILE_SYSTEM_ID: file_system_id, ENV_BUDGET_GIB: budget, ENV_TASK_MEMORY_MIB: "8192",
            ENV_ENVIRONMENT: "test", ENV_HISTORY_DAYS: "14"}


def settings(file_system_id: str, budget: str = "100") -> CapacitySettings:
    return CapacitySettings.from_env(env(file_system_id, budget))


def run(aws: dict[str, Any], budget: str = "100") -> None:
    handler.metrics.add_dimension(name="Environment", value="test")
    report = handler.check(settings(aws["fs"], budget), aws["efs"], aws["cloudwatch"], NOW)
    assert report is not None
    handler.metrics.flush_metrics()


def test_handler_publishes_capacity_metrics_from_efs_and_cloudwatch(aws: dict[str, Any],
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    set_size(aws["fs"], 85 * GIB)
    put_history(aws["cloudwatch"], aws["fs"], daily(71, 2, 7))
    run(aws)
    line = emitted(capsys)
    assert line["Environment"] == "test"
    assert line["UsedBytes"] == 85 * GIB
    assert line["UsedPercentOfBudget"] == pytest.approx(85.0)
    assert line["GrowthBytesPerDay"] == pytest.approx(2 * GIB, rel=1e-3)
    assert line["DaysUntilFull"] == pytest.approx(7.5, rel=1e-3)
    names = {m["Name"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == set(METRIC_NAMES)  # the cost model counts these


def test_new_file_system_without_history_publishes_no_projection(aws: dict[str, Any],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    set_size(aws["fs"], 6144)  # a new EFS meters a few KiB
    run(aws)
    line = emitted(capsys)
    assert "DaysUntilFull" not in line and "GrowthBytesPerDay" not in line
    assert line["UsedBytes"] == 6144


def test_settings_refuse_a_missing_or_zero_budget_by_name() -> None:
    """A missing budget used to become 0 silently (no percent, no days-until-full): now the function refuses to run."""
    missing = {k: v for k, v in env("fs-12345678").items() if k != ENV_BUDGET_GIB}
    with pytest.raises(SettingsError, match=f"{ENV_BUDGET_GIB} is not set"):
        CapacitySettings.from_env(missing)
    with pytest.raises(SettingsError, match=f"{ENV_BUDGET_GIB} = '0': must be greater than 0"):
        CapacitySettings.from_env(env("fs-12345678", budget="0"))
    with pytest.raises(SettingsError, match=f"{ENV_TASK_MEMORY_MIB} = '8 GiB': expected an integer"):
        CapacitySettings.from_env({**env("fs-12345678"), ENV_TASK_MEMORY_MIB: "8 GiB"})
    assert settings("fs-12345678") == CapacitySettings(file_system_id="fs-12345678", budget_gib=100.0,
                                                       task_memory_mib=8192, environment="test", history_days=14)


def test_missing_file_system_publishes_nothing(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert handler.check(settings("fs-00000000"), aws["efs"], aws["cloudwatch"], NOW) is None
    assert '"_aws"' not in capsys.readouterr().out


def test_a_burst_after_flat_weeks_projects_from_the_last_day() -> None:
    """60 GiB written in six hours after two flat weeks: the 14-day line alone said ~100 days until full."""
    flat = [(NOW - timedelta(hours=h), 10 * GIB) for h in range(14 * 24, 6, -1)]
    burst = [(NOW - timedelta(hours=h), (10 + 10 * (6 - h)) * GIB) for h in range(6, -1, -1)]
    history = flat + burst
    long_only = (200 * GIB - 70 * GIB) / (growth_per_day(history) or 1.0)
    assert long_only > 30
    report = assess(70 * GIB, history, budget_gib=200, task_memory_mib=8192)
    # The last day's line (18 flat hours, then the burst) gives ~3 days: under the 14-day alarm threshold.
    assert report.days_until_full is not None and report.days_until_full < 7
    assert report.growth_bytes_per_day is not None and report.growth_bytes_per_day > 30 * GIB
    # Steady growth: both lines agree, and the projection is the plain one.
    steady = assess(85 * GIB, daily(71, 2, 7), budget_gib=100, task_memory_mib=8192)
    assert steady.days_until_full == pytest.approx(7.5, rel=1e-3)
