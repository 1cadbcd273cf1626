"""Environment variables of the rotation function, shared with its CDK construct (no imports: cheap for synth)."""

ENV_ENDPOINT_HOST = "GATEWAY_ENDPOINT_HOST"
ENV_ENDPOINT_PORT = "GATEWAY_ENDPOINT_PORT"
ENV_TLS_SERVER_NAME = "GATEWAY_TLS_SERVER_NAME"
ENV_WAIT_SECONDS = "GATEWAY_WAIT_SECONDS"
METRICS_NAMESPACE = "ChromaTokenRotation"


def service_name(environment: str) -> str:
    """Powertools' service name, also a dimension of every metric the function publishes."""
    return f"chroma-{environment}-token-rotation"
