"""The token age function's settings: environment variable names (shared with its CDK construct) and parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lambdas.env_settings import powertools_service, read_settings, variable

ENV_SECRET_ID = "SECRET_ID"
ENV_ENVIRONMENT = "CHROMA_ENVIRONMENT"
METRICS_NAMESPACE = "ChromaTokenRotation"


def service_name(environment: str) -> str:
    return powertools_service(environment, "token-age")


@dataclass(frozen=True)
class TokenAgeSettings:
    secret_id: str = variable(ENV_SECRET_ID)
    environment: str = variable(ENV_ENVIRONMENT)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TokenAgeSettings:
        return read_settings(cls, env)
