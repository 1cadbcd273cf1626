"""The brake on the restart automation: no second restart within the cooldown.

This file's source is embedded in the restart-service SSM Automation document (an `aws:executeScript` step, runtime
python3.11, boto3 provided by SSM), so it imports only the standard library and boto3. A memory alarm whose working
set really is above the threshold would otherwise restart the database in a loop, each restart an outage: within
the cooldown of the service's last deployment, the step publishes `RestartSuppressed` (which raises the
restart-suppressed alarm: resize, see its runbook) and the document ends without restarting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

SUPPRESSED_NAMESPACE = "ChromaRemediation"
SUPPRESSED_METRIC = "RestartSuppressed"
HANDLER = "handler"


def decide(ecs: Any, cloudwatch: Any, cluster: str, service: str, cooldown_minutes: float, environment: str,
           now: datetime) -> dict[str, Any]:
    """{"restart": bool, "reason": str}; publishes the suppression metric when the restart is held back."""
    described = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if not described:
        raise ValueError(f"ECS service {service} not found in cluster {cluster}")
    deployments = described[0].get("deployments", [])
    started = max((d["createdAt"] for d in deployments if "createdAt" in d), default=None)
    if started is None:
        return {"restart": True, "reason": "no deployment on record"}
    minutes = (now - started).total_seconds() / 60
    if minutes >= cooldown_minutes:
        return {"restart": True, "reason": f"last deployment {minutes:.0f} min ago"}
    cloudwatch.put_metric_data(Namespace=SUPPRESSED_NAMESPACE, MetricData=[{
        "MetricName": SUPPRESSED_METRIC, "Value": 1, "Unit": "Count",
        "Dimensions": [{"Name": "Environment", "Value": environment}]}])
    return {"restart": False, "reason": f"last deployment {minutes:.0f} min ago, within the "
                                        f"{cooldown_minutes:g} min cooldown: suppressed (resize, do not restart)"}


def handler(events: dict[str, Any], context: Any) -> dict[str, Any]:
    """The executeScript entry point: `events` carries the document's parameters."""
    import boto3

    return decide(boto3.client("ecs"), boto3.client("cloudwatch"), events["ClusterName"], events["ServiceName"],
                  float(events["CooldownMinutes"]), events["Environment"], datetime.now(UTC))
