"""The rotation function's settings and contract constants, shared with its CDK construct and the dashboards.

Imports nothing heavy: the CDK app imports this module at synth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.env_settings import powertools_service, read_settings, variable

ENV_ENDPOINT_HOST = "GATEWAY_ENDPOINT_HOST"
ENV_ENDPOINT_PORT = "GATEWAY_ENDPOINT_PORT"
ENV_TLS_SERVER_NAME = "GATEWAY_TLS_SERVER_NAME"
ENV_WAIT_SECONDS = "GATEWAY_WAIT_SECONDS"
ENV_PENDING_MAX_AGE_SECONDS = "GATEWAY_PENDING_MAX_AGE_SECONDS"
METRICS_NAMESPACE = "ChromaTokenRotation"
# The Secrets Manager rotation contract, in the order Secrets Manager calls the steps.
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# Metrics published per step (the Step dimension).
STEP_METRICS = ("StepSucceeded", "StepFailed", "StepDuration")
# Tokens: ASCII letters and digits only (Chroma's clients accept printable ASCII; these need no quoting in shells).
TOKEN_LENGTH = 48


def service_name(environment: str) -> str:
    return powertools_service(environment, "token-rotation")


@dataclass(frozen=True)
class RotationSettings:
    endpoint_host: str = variable(ENV_ENDPOINT_HOST)
    endpoint_port: int = variable(ENV_ENDPOINT_PORT)
    # Empty for an environment without TLS: the probe then speaks plain HTTP.
    tls_server_name: str | None = variable(ENV_TLS_SERVER_NAME, optional=True)
    wait_seconds: float = variable(ENV_WAIT_SECONDS)
    # The gateway stops accepting a pending token this long after its version was created (gateway.settings).
    pending_max_age_seconds: float = variable(ENV_PENDING_MAX_AGE_SECONDS)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RotationSettings:
        return read_settings(cls, env)
