"""Environment variables of the capacity function, shared with its CDK construct."""

ENV_FILE_SYSTEM_ID = "FILE_SYSTEM_ID"
ENV_BUDGET_GIB = "CAPACITY_BUDGET_GIB"
ENV_TASK_MEMORY_MIB = "TASK_MEMORY_MIB"
ENV_ENVIRONMENT = "CHROMA_ENVIRONMENT"
ENV_HISTORY_DAYS = "HISTORY_DAYS"
METRICS_NAMESPACE = "ChromaCapacity"


def service_name(environment: str) -> str:
    """Powertools' service name, also a dimension of every metric the function publishes."""
    return f"chroma-{environment}-capacity"
