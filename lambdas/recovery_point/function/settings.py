"""The backup job's settings: environment variable names (shared with its CDK construct) and their parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.env_settings import PRIMARY_NODE, powertools_service, read_settings, variable

ENV_CONTROL_BUCKET = "CONTROL_BUCKET"
ENV_NODE_PREFIX = "NODE_PREFIX"
ENV_FILE_SYSTEM_ARN = "FILE_SYSTEM_ARN"
ENV_BACKUP_VAULT_NAME = "BACKUP_VAULT_NAME"
ENV_BACKUP_ROLE_ARN = "BACKUP_ROLE_ARN"
ENV_RETENTION_DAYS = "RETENTION_DAYS"
ENV_ANSWER_WAIT_SECONDS = "ANSWER_WAIT_SECONDS"
ENV_ENVIRONMENT = "CHROMA_ENVIRONMENT"
METRICS_NAMESPACE = "ChromaBackup"
FAILED_METRIC = "RecoveryPointFailed"  # 1 per failed run (the job raises too: the function's errors alarm)
STARTED_METRIC = "RecoveryPointStarted"  # 1 per recovery point sent to AWS Backup
PAUSE_METRIC = "WritePauseSeconds"  # how long the node held writes for it
METRICS = (FAILED_METRIC, STARTED_METRIC, PAUSE_METRIC)
# How often the job looks for the node's answer while it waits.
POLL_SECONDS = 5.0


def service_name(environment: str, node: str = PRIMARY_NODE) -> str:
    return powertools_service(environment, "recovery-point", node)


@dataclass(frozen=True)
class BackupJobSettings:
    control_bucket: str = variable(ENV_CONTROL_BUCKET)
    node_prefix: str = variable(ENV_NODE_PREFIX)
    file_system_arn: str = variable(ENV_FILE_SYSTEM_ARN)
    backup_vault_name: str = variable(ENV_BACKUP_VAULT_NAME)
    backup_role_arn: str = variable(ENV_BACKUP_ROLE_ARN)
    retention_days: int = variable(ENV_RETENTION_DAYS)
    answer_wait_seconds: int = variable(ENV_ANSWER_WAIT_SECONDS)
    environment: str = variable(ENV_ENVIRONMENT)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BackupJobSettings:
        return read_settings(cls, env)
