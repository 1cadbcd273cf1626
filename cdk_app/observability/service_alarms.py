"""Every alarm of an environment: SNS action, a description that says what it means, a link to its runbook."""

from __future__ import annotations

from dataclasses import dataclass, replace

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.node.names import NodeNames
from cdk_app.observability.alarm_ids import ALARM_RUNBOOKS, ENVIRONMENT_ALARM_IDS, latency_alarm_id
from cdk_app.observability.service_metrics import ONE_DAY, ServiceMetrics
from lambdas.recovery_point.function.settings import STARTED_METRIC
from ops.capacity import GIB, index_bytes_limit

GREATER = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
GREATER_OR_EQUAL = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
LESS = cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
MISSING_OK = cloudwatch.TreatMissingData.NOT_BREACHING
MISSING_BAD = cloudwatch.TreatMissingData.BREACHING


@dataclass(frozen=True)
class Rule:
    metric: cloudwatch.IMetric
    threshold: float
    comparison: cloudwatch.ComparisonOperator
    periods: int
    meaning: str
    missing: cloudwatch.TreatMissingData = MISSING_OK


@dataclass(frozen=True)
class NodeSignals:
    """What one node's alarms watch: its metrics and its two scheduled functions' errors."""

    metrics: ServiceMetrics
    task_memory_mib: int
    capacity_errors: cloudwatch.IMetric
    recovery_point_errors: cloudwatch.IMetric


class ServiceAlarms(Construct):
    """The environment's alarms (load balancer, token) and every node's (its health, resources, data, backups).

    The primary node's alarms keep the ids and names they had before nodes existed (chroma-<env>-<id>); another
    node's are chroma-<env>-<node>-<id>. `chroma-unavailable` pages for the environment.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig,
                 nodes: dict[str, NodeSignals], topic: sns.ITopic, rotation_errors: cloudwatch.IMetric,
                 token_age_errors: cloudwatch.IMetric) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._action = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.composites: list[cloudwatch.CompositeAlarm] = []
        primary = nodes[PRIMARY_NODE].metrics
        for alarm_id, rule in _environment_rules(config, primary, rotation_errors, token_age_errors).items():
            self._add(alarm_id, alarm_id, rule)
        for node, signals in nodes.items():
            names = NodeNames(node)
            for alarm_id, rule in _node_rules(config, signals).items():
                if not names.is_primary:
                    rule = replace(rule, meaning=f"Node {node}: {rule.meaning}")
                self._add(names.qualified(alarm_id), alarm_id, rule)

        down = ("no-healthy-targets", "no-running-tasks")
        if len(nodes) == 1:
            causes: list[cloudwatch.IAlarm] = [self.alarms[i] for i in (*down, "alb-5xx-rate")]
            meaning = f"PAGE: Chroma is unavailable ({' or '.join((*down, 'alb-5xx-rate'))})."
        else:
            # Each node pages on its own composite; the environment's adds the load balancer's errors.
            causes = [self.alarms["alb-5xx-rate"]] + [
                self._composite(f"{node}-unavailable", "chroma-unavailable",
                                [self.alarms[NodeNames(node).qualified(i)] for i in down],
                                f"PAGE: Chroma node {node} is unavailable ({' or '.join(down)}): its tenants "
                                "fail, other nodes serve.") for node in nodes]
            meaning = "PAGE: Chroma is unavailable (alb-5xx-rate, or a node is: see its <node>-unavailable)."
        self.unavailable = self._composite("chroma-unavailable", "chroma-unavailable", causes, meaning)

    def _composite(self, alarm_id: str, runbook_id: str, causes: list[cloudwatch.IAlarm],
                   meaning: str) -> cloudwatch.CompositeAlarm:
        composite = cloudwatch.CompositeAlarm(
            self, alarm_id, composite_alarm_name=self.name(alarm_id),
            alarm_rule=cloudwatch.AlarmRule.any_of(*causes),
            alarm_description=self._describe(runbook_id, meaning))
        composite.add_alarm_action(self._action)
        composite.add_ok_action(self._action)
        self.composites.append(composite)
        return composite


    def name(self, alarm_id: str) -> str:
        return f"chroma-{self._config.name}-{alarm_id}"

    def runbook_url(self, alarm_id: str) -> str:
        return f"{self._config.runbook_base_url}/{ALARM_RUNBOOKS[alarm_id]}.md"

    def _describe(self, alarm_id: str, meaning: str) -> str:
        return f"{meaning} Runbook: {self.runbook_url(alarm_id)}"

    def _add(self, alarm_id: str, runbook_id: str, rule: Rule) -> None:
        alarm = cloudwatch.Alarm(
            self, alarm_id,
            alarm_name=self.name(alarm_id),
            metric=rule.metric,
            threshold=rule.threshold,
            comparison_operator=rule.comparison,
            evaluation_periods=rule.periods,
            datapoints_to_alarm=rule.periods,
            treat_missing_data=rule.missing,
            alarm_description=self._describe(runbook_id, rule.meaning),
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms[alarm_id] = alarm

    def all(self) -> list[cloudwatch.IAlarm]:
        return [*self.alarms.values(), *self.composites]

def _environment_rules(config: EnvironmentConfig, metrics: ServiceMetrics, rotation_errors: cloudwatch.IMetric,
                       token_age_errors: cloudwatch.IMetric) -> dict[str, Rule]:
    a = config.alarms
    rules = {
        "alb-5xx-rate": Rule(metrics.alb_5xx_percent(), a.alb_5xx_percent, GREATER, 2,
                             f"More than {a.alb_5xx_percent:g} % of requests failed with 5xx (ALB or gateway) "
                             "for 10 minutes."),
        "response-time-p95": Rule(metrics.response_time("p95"), a.response_time_p95_ms / 1000, GREATER, 3,
                                  f"p95 target response time above {a.response_time_p95_ms} ms for 15 minutes."),
        "rotation-failed": Rule(rotation_errors, 1, GREATER_OR_EQUAL, 1,
                                "A step of the gateway token rotation failed; the old token stays current."),
        "rotation-overdue": Rule(metrics.days_since_rotation(),
                                 config.token_rotation_days + a.rotation_overdue_margin_days, GREATER, 1,
                                 f"The gateway token has not rotated for more than {config.token_rotation_days} "
                                 f"+ {a.rotation_overdue_margin_days} days."),
        "token-age-check-failed": Rule(token_age_errors, 1, GREATER_OR_EQUAL, 1,
                                       "The token age check failed: the rotation-overdue alarm is blind."),
        "restart-suppressed": Rule(metrics.restarts_suppressed(), 1, GREATER_OR_EQUAL, 1,
                                   f"The restart automation was started again within "
                                   f"{a.restart_cooldown_minutes} minutes of the last deployment and did not "
                                   "restart: the working set does not fit the task. Resize."),
    }
    assert tuple(rules) == ENVIRONMENT_ALARM_IDS  # what ops/cost.py counts once per environment
    return rules


def _node_rules(config: EnvironmentConfig, signals: NodeSignals) -> dict[str, Rule]:
    metrics = signals.metrics
    a, cap, b = config.alarms, config.capacity, config.backup
    memory_mib = signals.task_memory_mib
    index_limit = index_bytes_limit(memory_mib)
    rules: dict[str, Rule] = {
        "no-healthy-targets": Rule(metrics.healthy_targets(), 1, LESS, 3,
                                   "The load balancer has had no healthy gateway for 3 minutes: Chroma is "
                                   "unreachable.", MISSING_BAD),
        "no-running-tasks": Rule(metrics.running_tasks(), 1, LESS, 3,
                                 "No Chroma task has been running for 3 minutes.", MISSING_BAD),
        "task-memory-high": Rule(metrics.memory_percent(), a.memory_percent, GREATER, 5,
                                 f"Task memory above {a.memory_percent} % for 5 minutes: the HNSW index is "
                                 "close to not fitting; an OOM kill would restart Chroma."),
        "index-memory-high": Rule(metrics.gateway("IndexBytes", "Maximum"), index_limit, GREATER, 1,
                                  f"The node's index files ({index_limit / GIB:.2f} GiB allowed) would need more "
                                  f"memory than the {memory_mib} MiB task leaves Chroma once all are "
                                  "loaded (loaded vectors stay in memory): resize before an OOM kill."),
        "task-cpu-high": Rule(metrics.cpu_percent(), a.cpu_percent, GREATER, 3,
                              f"Task CPU above {a.cpu_percent} % for 15 minutes."),
        "gateway-5xx": Rule(metrics.gateway("Status5xx", "Sum"), a.gateway_5xx_per_5_minutes, GREATER, 1,
                            f"The gateway answered more than {a.gateway_5xx_per_5_minutes} requests with 5xx "
                            "in 5 minutes (Chroma errors, Chroma down or timing out)."),
        "auth-failures-spike": Rule(metrics.gateway("AuthFailures", "Sum"), a.auth_failures_per_5_minutes,
                                    GREATER, 1,
                                    f"More than {a.auth_failures_per_5_minutes} requests with a missing or wrong "
                                    "token in 5 minutes: a client with a stale token, or credential guessing."),
        "efs-capacity-warning": Rule(metrics.capacity("UsedPercentOfBudget"), cap.warning_percent,
                                     GREATER_OR_EQUAL, 1,
                                     f"The file system holds {cap.warning_percent} % or more of its "
                                     f"{cap.budget_gib} GiB budget."),
        "efs-capacity-critical": Rule(metrics.capacity("UsedPercentOfBudget"), cap.critical_percent,
                                      GREATER_OR_EQUAL, 1,
                                      f"The file system holds {cap.critical_percent} % or more of its "
                                      f"{cap.budget_gib} GiB budget."),
        "efs-days-to-full": Rule(metrics.capacity("DaysUntilFull", "Minimum"), cap.days_to_full_threshold, LESS,
                                 2, f"At the current growth rate the {cap.budget_gib} GiB budget is full in fewer "
                                    f"than {cap.days_to_full_threshold} days."),
        "efs-io-limit": Rule(metrics.efs("PercentIOLimit", "Maximum"), a.efs_io_limit_percent, GREATER, 3,
                             f"EFS above {a.efs_io_limit_percent} % of its I/O limit for 15 minutes."),
        "capacity-check-failed": Rule(signals.capacity_errors, 1, GREATER_OR_EQUAL, 1,
                                      "The EFS capacity check failed: capacity alarms are blind until it works."),
        "collection-quarantined": Rule(metrics.gateway("QuarantinedCollections", "Maximum"), 1,
                                       GREATER_OR_EQUAL, 1,
                                       "The node's start check found a collection whose index disagrees with "
                                       "Chroma's records (a crash during a save): it answers 503 until it is "
                                       "restored. Other collections serve."),
        "write-ahead-log-growing": Rule(metrics.gateway("LogRows", "Minimum"), a.log_rows_max, GREATER, 12,
                                        f"Chroma's write-ahead log has held more than {a.log_rows_max} rows for "
                                        "an hour: it is not being purged, and the SQLite file grows."),
        "recovery-point-failed": Rule(signals.recovery_point_errors, 1, GREATER_OR_EQUAL, 1,
                                      "The backup job could not take a quiesced recovery point (the node did "
                                      "not answer, could not hold writes or copy in time, or AWS Backup "
                                      "refused the job). Nothing torn was kept; no new recovery point either."),
        "recovery-point-missing": Rule(metrics.recovery_point(STARTED_METRIC, "Sum", ONE_DAY), 1, LESS,
                                       1, "No quiesced recovery point was sent to AWS Backup in the last 24 "
                                          "hours (the backup job did not run, or failed).", MISSING_BAD),
        "write-pause-long": Rule(metrics.gateway("SnapshotPauseSeconds", "Maximum"), b.pause_alarm_seconds,
                                 GREATER, 1,
                                 f"A recovery point held writes longer than {b.pause_alarm_seconds} s (at "
                                 f"{b.max_write_pause_seconds} s the copy is abandoned and the backup fails): "
                                 "the data outgrows the pause clients ride through."),
    }
    for operation, p99_ms in a.operation_p99_ms:
        rules[latency_alarm_id(operation)] = Rule(
            metrics.gateway("Latency", "p99", operation), p99_ms, GREATER, 3,
            f"Gateway p99 latency of '{operation}' above {p99_ms} ms for 15 minutes.")
    return rules


