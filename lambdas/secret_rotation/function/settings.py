"""Environment variables of the rotation function, shared with its CDK construct (no imports: cheap for synth)."""

ENV_ENDPOINT_HOST = "GATEWAY_ENDPOINT_HOST"
ENV_ENDPOINT_PORT = "GATEWAY_ENDPOINT_PORT"
ENV_TLS_SERVER_NAME = "GATEWAY_TLS_SERVER_NAME"
ENV_WAIT_SECONDS = "GATEWAY_WAIT_SECONDS"
