"""Environment variables of the token age function, shared with its CDK construct."""

ENV_SECRET_ID = "SECRET_ID"
ENV_ENVIRONMENT = "CHROMA_ENVIRONMENT"
METRICS_NAMESPACE = "ChromaTokenRotation"


def service_name(environment: str) -> str:
    """Powertools' service name, also a dimension of every metric the function publishes."""
    return f"chroma-{environment}-token-age"
