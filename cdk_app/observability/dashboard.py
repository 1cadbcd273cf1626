"""One CloudWatch dashboard per environment: traffic, errors and rotation, then each node's latency, health,
resources, capacity and recovery points."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.observability.alarm_ids import ALARM_RUNBOOKS
from cdk_app.observability.service_metrics import ServiceMetrics
from gateway.operations import OPERATIONS
from lambdas.recovery_point.function.settings import FAILED_METRIC, STARTED_METRIC

GIB = 1 << 30
WIDTH = 12


def graph(title: str, left: list[cloudwatch.IMetric], right: list[cloudwatch.IMetric] | None = None,
          annotations: list[cloudwatch.HorizontalAnnotation] | None = None, width: int = WIDTH) -> cloudwatch.IWidget:
    return cloudwatch.GraphWidget(title=title, left=left, right=right or [], width=width, height=6,
                                  left_annotations=annotations or [])


class ChromaDashboard(Construct):
    """The environment's rows (traffic and errors at the load balancer, the token), then one block per node."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 nodes: dict[str, ServiceMetrics], alarms: list[cloudwatch.IAlarm],
                 rotation_metrics: dict[str, cloudwatch.IMetric]) -> None:
        super().__init__(scope, construct_id)
        m = nodes[PRIMARY_NODE]
        runbooks = sorted(set(ALARM_RUNBOOKS.values()) | {"restore-from-backup", "upgrade-chroma"})
        links = " · ".join(f"[{name}]({config.runbook_base_url}/{name}.md)" for name in runbooks)
        rows: list[list[cloudwatch.IWidget]] = [
            [cloudwatch.TextWidget(markdown=f"# Chroma {config.name}\nRunbooks: {links}", width=24, height=3)],
            [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=24, height=4)],
            [graph("Traffic: requests (ALB) and through the gateways", [m.requests()],
                   [m.gateway_total("Requests", "Sum")]),
             graph("Latency: ALB target response time (s)", [m.response_time(s) for s in ("p50", "p95", "p99")])],
            [graph("Errors by class", [
                m.alb_errors(elbv2.HttpCodeElb.ELB_5XX_COUNT),
                m.alb_errors(elbv2.HttpCodeTarget.TARGET_5XX_COUNT),
                m.alb_errors(elbv2.HttpCodeTarget.TARGET_4XX_COUNT), m.gateway_total("Status5xx", "Sum"),
                m.gateway_total("Status4xx", "Sum"), m.gateway_total("AuthFailures", "Sum")]),
             graph("Token rotation", [m.days_since_rotation()], list(rotation_metrics.values()))],
        ]
        for node, metrics in nodes.items():
            rows.extend(_node_rows(config, node, metrics))
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"chroma-{config.name}",
                                              widgets=rows)


def _node_rows(config: EnvironmentConfig, node: str, m: ServiceMetrics) -> list[list[cloudwatch.IWidget]]:
    """One node: its traffic and latency, health, resources, file system, directory and recovery points."""
    budget = cloudwatch.HorizontalAnnotation(value=config.capacity.budget_gib * GIB,
                                             label=f"budget {config.capacity.budget_gib} GiB")
    return [
        [cloudwatch.TextWidget(markdown=f"## Node {node}", width=24, height=1)],
        [graph("Traffic per operation (gateway)", [m.gateway("Requests", "Sum", op) for op in OPERATIONS]),
         graph("Latency: query through the gateway (ms)",
               [m.gateway("Latency", s, "query") for s in ("p50", "p95", "p99")])],
        [graph("Latency: p99 per operation (ms)", [m.gateway("Latency", "p99", op) for op in OPERATIONS]),
         graph("Health: healthy targets and running tasks", [m.healthy_targets(), m.running_tasks()],
               [m.target_response_time("p95")])],
        [graph("Task CPU and memory (%)", [m.cpu_percent(), m.memory_percent("Average"),
                                           m.memory_percent("Maximum")],
               annotations=[cloudwatch.HorizontalAnnotation(value=config.alarms.memory_percent,
                                                            label="memory alarm")]),
         graph("EFS size against budget", [m.capacity("UsedBytes")], [m.capacity("DaysUntilFull", "Minimum")],
               annotations=[budget])],
        [graph("EFS capacity: % of budget, data vs task memory (%)",
               [m.capacity("UsedPercentOfBudget"), m.capacity("DataToMemoryPercent")],
               [m.capacity("GrowthBytesPerDay")]),
         graph("EFS throughput (bytes) and I/O limit (%)",
               [m.efs("DataReadIOBytes", "Sum"), m.efs("DataWriteIOBytes", "Sum"),
                m.efs("MeteredIOBytes", "Sum")], [m.efs("PercentIOLimit", "Maximum")])],
        [graph("Node directory: SQLite file and indexes (bytes)",
               [m.gateway("SqliteBytes", "Maximum"), m.gateway("IndexBytes", "Maximum")]),
         graph("Node: write-ahead log rows, quarantined collections", [m.gateway("LogRows", "Minimum")],
               [m.gateway("QuarantinedCollections", "Maximum")],
               annotations=[cloudwatch.HorizontalAnnotation(value=config.alarms.log_rows_max,
                                                            label="log alarm")])],
        [graph("Recovery points: write pause (s) and writes held now",
               [m.gateway("SnapshotPauseSeconds", "Maximum")], [m.gateway("WritesHeld", "Maximum")],
               annotations=[cloudwatch.HorizontalAnnotation(value=config.backup.pause_alarm_seconds,
                                                            label="pause alarm")]),
         graph("Recovery points: copy size and bytes copied; started, failed",
               [m.gateway("SnapshotBytes", "Maximum"), m.gateway("SnapshotCopiedBytes", "Maximum")],
               [m.recovery_point(STARTED_METRIC, "Sum"), m.recovery_point(FAILED_METRIC, "Sum")])],
    ]
