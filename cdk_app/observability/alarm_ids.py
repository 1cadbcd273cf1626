"""Every alarm's id (its name is chroma-<env>-<id>) and the runbook it links to (runbooks/<runbook>.md)."""

from __future__ import annotations

from gateway.operations import OPERATIONS

ALARM_RUNBOOKS: dict[str, str] = {
    "alb-5xx-rate": "alb-5xx-rate",
    "response-time-p95": "response-time-p95",
    "no-healthy-targets": "no-healthy-targets",
    "no-running-tasks": "no-running-tasks",
    "task-memory-high": "task-memory-high",
    "index-memory-high": "task-memory-high",
    "task-cpu-high": "task-cpu-high",
    **{f"gateway-latency-{op.replace('_', '-')}": "gateway-latency" for op in OPERATIONS},
    "gateway-5xx": "gateway-5xx",
    "auth-failures-spike": "auth-failures-spike",
    "efs-capacity-warning": "efs-capacity",
    "efs-capacity-critical": "efs-capacity",
    "efs-days-to-full": "efs-days-to-full",
    "efs-io-limit": "efs-io-limit",
    "rotation-failed": "rotation-failed",
    "rotation-overdue": "rotation-overdue",
    "capacity-check-failed": "monitoring-function-failed",
    "token-age-check-failed": "monitoring-function-failed",
    "chroma-unavailable": "chroma-unavailable",
    "restart-suppressed": "restart-suppressed",
    "collection-quarantined": "collection-quarantined",
    "write-ahead-log-growing": "write-ahead-log-growing",
    "recovery-point-failed": "recovery-point-failed",
    "recovery-point-missing": "recovery-point-failed",
    "write-pause-long": "recovery-point-failed",
}


# Alarms of the environment as a whole (the load balancer, the token, the restart guard); every other metric alarm
# is one per node (chroma-<env>-<id> for the primary, chroma-<env>-<node>-<id> for the others).
ENVIRONMENT_ALARM_IDS = ("alb-5xx-rate", "response-time-p95", "rotation-failed", "rotation-overdue",
                         "token-age-check-failed", "restart-suppressed")
COMPOSITE_ALARM_ID = "chroma-unavailable"


def latency_alarm_id(operation: str) -> str:
    return f"gateway-latency-{operation.replace('_', '-')}"
