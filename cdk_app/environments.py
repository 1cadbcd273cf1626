"""The deployment environments: one frozen config each. Edit here to change an environment or add one.

staging and prod name an example account (111122223333) and certificate: replace them with yours before deploying.
dev takes its account from CDK_DEFAULT_ACCOUNT (your credentials) when it names none.
"""

from __future__ import annotations

from cdk_app.config import (
    AlarmConfig,
    Automation,
    BackupConfig,
    CapacityConfig,
    EnvironmentConfig,
    NetworkConfig,
    TaskConfig,
    TlsConfig,
)

_EXAMPLE_ACCOUNT = "111122223333"
# Where real data lives: restart before the OOM killer does; take a backup when the disk budget runs out.
_REMEDIATIONS = (("task-memory-high", Automation.RESTART_SERVICE), ("efs-capacity-critical", Automation.BACKUP_NOW))
_REGION = "us-east-1"


def _certificate(certificate_id: str) -> str:
    return f"arn:aws:acm:{_REGION}:{_EXAMPLE_ACCOUNT}:certificate/{certificate_id}"


DEV = EnvironmentConfig(
    name="dev",
    region=_REGION,
    # One NAT gateway instead of interface endpoints: cheaper for a small, disposable environment.
    network=NetworkConfig(vpc_cidr="10.20.0.0/16", availability_zones=("us-east-1a", "us-east-1b"),
                          nat_gateways=1, interface_endpoints=False, flow_log_retention_days=14),
    task=TaskConfig(cpu=1024, memory_mib=2048, log_retention_days=14),
    backup=BackupConfig(retention_days=7),
    capacity=CapacityConfig(budget_gib=20),
    # Looser than staging/prod: dev shares small tasks with experiments.
    alarms=AlarmConfig(response_time_p95_ms=500, auth_failures_per_5_minutes=200),
    retain_data=False,
)

STAGING = EnvironmentConfig(
    name="staging",
    account=_EXAMPLE_ACCOUNT,
    region=_REGION,
    network=NetworkConfig(vpc_cidr="10.30.0.0/16", availability_zones=("us-east-1a", "us-east-1b")),
    task=TaskConfig(cpu=1024, memory_mib=4096),
    tls=TlsConfig(certificate_arn=_certificate("11111111-2222-3333-4444-555555555555"),
                  domain_name="chroma.staging.example.com"),
    backup=BackupConfig(retention_days=14),
    capacity=CapacityConfig(budget_gib=50),
    alarms=AlarmConfig(automations=_REMEDIATIONS),
    alarm_emails=("chroma-staging@example.com",),
)

PROD = EnvironmentConfig(
    name="prod",
    account=_EXAMPLE_ACCOUNT,
    region=_REGION,
    network=NetworkConfig(vpc_cidr="10.40.0.0/16",
                          availability_zones=("us-east-1a", "us-east-1b", "us-east-1c"),
                          flow_log_retention_days=365),
    task=TaskConfig(cpu=2048, memory_mib=8192, log_retention_days=90),
    tls=TlsConfig(certificate_arn=_certificate("66666666-7777-8888-9999-000000000000"),
                  domain_name="chroma.example.com"),
    backup=BackupConfig(hour_utc=3, minute_utc=0, retention_days=35),
    capacity=CapacityConfig(budget_gib=100, check_every_minutes=30),
    alarms=AlarmConfig(automations=_REMEDIATIONS),
    termination_protection=True,
    alarm_emails=("chroma-oncall@example.com",),
)

ENVIRONMENTS: dict[str, EnvironmentConfig] = {config.name: config for config in (DEV, STAGING, PROD)}
