"""The capacity function's settings: environment variable names (shared with its CDK construct) and their parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.env_settings import PRIMARY_NODE, powertools_service, read_settings, variable

ENV_FILE_SYSTEM_ID = "FILE_SYSTEM_ID"
ENV_BUDGET_GIB = "CAPACITY_BUDGET_GIB"
ENV_TASK_MEMORY_MIB = "TASK_MEMORY_MIB"
ENV_ENVIRONMENT = "CHROMA_ENVIRONMENT"
ENV_HISTORY_DAYS = "HISTORY_DAYS"
METRICS_NAMESPACE = "ChromaCapacity"
# Every metric the function can publish (a metric whose value is unknown is left out, never published as 0).
METRIC_NAMES = ("UsedBytes", "UsedPercentOfBudget", "GrowthBytesPerDay", "DaysUntilFull", "DataToMemoryPercent")


def service_name(environment: str, node: str = PRIMARY_NODE) -> str:
    return powertools_service(environment, "capacity", node)


@dataclass(frozen=True)
class CapacitySettings:
    file_system_id: str = variable(ENV_FILE_SYSTEM_ID)
    budget_gib: float = variable(ENV_BUDGET_GIB)
    task_memory_mib: int = variable(ENV_TASK_MEMORY_MIB)
    environment: str = variable(ENV_ENVIRONMENT)
    history_days: int = variable(ENV_HISTORY_DAYS)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CapacitySettings:
        return read_settings(cls, env)
