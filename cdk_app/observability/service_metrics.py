"""The metrics of one node of an environment, from every source (ALB, ECS, gateway EMF, EFS, the checks), in one
place; `environment_wide` metrics (the load balancer, the token) are the same for every node."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2

from cdk_app.observability import restart_guard
from gateway.settings import DEFAULT_METRICS_NAMESPACE as GATEWAY_NAMESPACE
from lambdas.capacity_check.function import settings as capacity_function
from lambdas.recovery_point.function import settings as recovery_point_function
from lambdas.token_age_check.function import settings as token_age_function
from lambdas.token_rotation.function import settings as rotation_function

ONE_MINUTE = cdk.Duration.minutes(1)
FIVE_MINUTES = cdk.Duration.minutes(5)
ONE_HOUR = cdk.Duration.hours(1)
ONE_DAY = cdk.Duration.days(1)
# Below this many requests in five minutes, an error rate is noise (one failure in three requests is not 33 %).
MIN_REQUESTS_FOR_RATE = 20


@dataclass(frozen=True)
class ServiceMetrics:
    environment: str
    node: str
    load_balancer: elbv2.IApplicationLoadBalancer
    target_group: elbv2.IApplicationTargetGroup
    service: ecs.FargateService
    file_system_id: str
    check_period: cdk.Duration

    # load balancer
    def requests(self) -> cloudwatch.IMetric:
        return self.load_balancer.metrics.request_count(period=FIVE_MINUTES, statistic="Sum")

    def alb_5xx_percent(self) -> cloudwatch.IMetric:
        return cloudwatch.MathExpression(
            expression=f"IF(req >= {MIN_REQUESTS_FOR_RATE}, 100 * (FILL(elb, 0) + FILL(target, 0)) / req, 0)",
            using_metrics={
                "req": self.requests(),
                "elb": self.load_balancer.metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT,
                                                                period=FIVE_MINUTES, statistic="Sum"),
                "target": self.load_balancer.metrics.http_code_target(elbv2.HttpCodeTarget.TARGET_5XX_COUNT,
                                                                      period=FIVE_MINUTES, statistic="Sum"),
            },
            label="5xx % of requests", period=FIVE_MINUTES)

    def alb_errors(self, code: elbv2.HttpCodeElb | elbv2.HttpCodeTarget) -> cloudwatch.IMetric:
        if isinstance(code, elbv2.HttpCodeElb):
            return self.load_balancer.metrics.http_code_elb(code, period=FIVE_MINUTES, statistic="Sum")
        return self.load_balancer.metrics.http_code_target(code, period=FIVE_MINUTES, statistic="Sum")

    def response_time(self, statistic: str) -> cloudwatch.IMetric:
        return self.load_balancer.metrics.target_response_time(period=FIVE_MINUTES, statistic=statistic)

    def target_response_time(self, statistic: str) -> cloudwatch.IMetric:
        """The node's own response time (its target group's)."""
        return self.target_group.metrics.target_response_time(period=FIVE_MINUTES, statistic=statistic)

    def healthy_targets(self) -> cloudwatch.IMetric:
        return self.target_group.metrics.healthy_host_count(period=ONE_MINUTE, statistic="Minimum")

    # ECS
    def running_tasks(self) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace="ECS/ContainerInsights", metric_name="RunningTaskCount",
                                 dimensions_map={"ClusterName": self.service.cluster.cluster_name,
                                                 "ServiceName": self.service.service_name},
                                 period=ONE_MINUTE, statistic="Minimum")

    def memory_percent(self, statistic: str = "Maximum") -> cloudwatch.IMetric:
        return self.service.metric_memory_utilization(period=ONE_MINUTE, statistic=statistic)

    def cpu_percent(self, statistic: str = "Average") -> cloudwatch.IMetric:
        return self.service.metric_cpu_utilization(period=FIVE_MINUTES, statistic=statistic)

    # gateway (EMF)
    def gateway(self, name: str, statistic: str, operation: str | None = None) -> cloudwatch.IMetric:
        """The node's gateway (gateway/telemetry.py publishes per node, per node and operation, and per
        environment)."""
        dimensions = {"Environment": self.environment, "Node": self.node}
        if operation is not None:
            dimensions["Operation"] = operation
        return cloudwatch.Metric(namespace=GATEWAY_NAMESPACE, metric_name=name, dimensions_map=dimensions,
                                 period=FIVE_MINUTES, statistic=statistic)

    def gateway_total(self, name: str, statistic: str) -> cloudwatch.IMetric:
        """Every node's gateway together."""
        return cloudwatch.Metric(namespace=GATEWAY_NAMESPACE, metric_name=name,
                                 dimensions_map={"Environment": self.environment}, period=FIVE_MINUTES,
                                 statistic=statistic, label=f"{name} (all nodes)")

    # EFS
    def efs(self, name: str, statistic: str, period: cdk.Duration = FIVE_MINUTES) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace="AWS/EFS", metric_name=name,
                                 dimensions_map={"FileSystemId": self.file_system_id}, period=period,
                                 statistic=statistic)

    # the scheduled checks and the rotation function (Powertools adds a `service` dimension to each metric)
    def capacity(self, name: str, statistic: str = "Maximum") -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace=capacity_function.METRICS_NAMESPACE, metric_name=name,
                                 dimensions_map={"Environment": self.environment,
                                                 "service": capacity_function.service_name(self.environment,
                                                                                           self.node)},
                                 period=self.check_period, statistic=statistic)

    def restarts_suppressed(self) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace=restart_guard.SUPPRESSED_NAMESPACE,
                                 metric_name=restart_guard.SUPPRESSED_METRIC,
                                 dimensions_map={"Environment": self.environment}, period=FIVE_MINUTES,
                                 statistic="Sum")

    def days_since_rotation(self) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace=token_age_function.METRICS_NAMESPACE, metric_name="DaysSinceRotation",
                                 dimensions_map={"Environment": self.environment,
                                                 "service": token_age_function.service_name(self.environment)},
                                 period=ONE_HOUR, statistic="Maximum")

    def recovery_point(self, name: str, statistic: str, period: cdk.Duration = ONE_HOUR) -> cloudwatch.IMetric:
        """The backup job's RecoveryPointFailed and RecoveryPointStarted (lambdas/recovery_point)."""
        return cloudwatch.Metric(namespace=recovery_point_function.METRICS_NAMESPACE, metric_name=name,
                                 dimensions_map={"Environment": self.environment,
                                                 "service": recovery_point_function.service_name(self.environment,
                                                                                                 self.node)},
                                 period=period, statistic=statistic)

    def rotation_step(self, name: str, step: str) -> cloudwatch.IMetric:
        return cloudwatch.Metric(namespace=rotation_function.METRICS_NAMESPACE, metric_name=name,
                                 dimensions_map={"Step": step,
                                                 "service": rotation_function.service_name(self.environment)},
                                 period=ONE_HOUR, statistic="Sum", label=f"{step} {name}")
