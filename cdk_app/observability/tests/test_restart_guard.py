"""The restart automation's brake, against moto's ECS and CloudWatch: the function the SSM document embeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_app.observability.restart_guard import SUPPRESSED_METRIC, SUPPRESSED_NAMESPACE, decide


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="chroma")
        ecs.register_task_definition(family="chroma", containerDefinitions=[{"name": "c", "image": "i", "memory": 512}])
        ecs.create_service(cluster="chroma", serviceName="chroma", taskDefinition="chroma", desiredCount=1)
        started = ecs.describe_services(cluster="chroma", services=["chroma"])["services"][0]["deployments"][0]
        yield {"ecs": ecs, "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
               "deployed": started["createdAt"]}


def suppressed_count(cloudwatch: Any) -> int:
    metrics = cloudwatch.list_metrics(Namespace=SUPPRESSED_NAMESPACE, MetricName=SUPPRESSED_METRIC)["Metrics"]
    return len(metrics)


def test_restart_within_the_cooldown_is_suppressed_and_raises_the_metric(aws: dict[str, Any]) -> None:
    soon = aws["deployed"] + timedelta(minutes=10)
    outcome = decide(aws["ecs"], aws["cloudwatch"], "chroma", "chroma", 60, "prod", soon)
    assert outcome["restart"] is False and "within the 60 min cooldown" in outcome["reason"]
    assert suppressed_count(aws["cloudwatch"]) == 1


def test_restart_after_the_cooldown_goes_ahead_quietly(aws: dict[str, Any]) -> None:
    later = aws["deployed"] + timedelta(minutes=61)
    outcome = decide(aws["ecs"], aws["cloudwatch"], "chroma", "chroma", 60, "prod", later)
    assert outcome == {"restart": True, "reason": "last deployment 61 min ago"}
    assert suppressed_count(aws["cloudwatch"]) == 0


def test_unknown_service_fails_loudly(aws: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="ECS service missing not found in cluster chroma"):
        decide(aws["ecs"], aws["cloudwatch"], "chroma", "missing", 60, "prod", datetime.now(UTC))
