"""Gateway settings, read from the environment. The CDK compute stack sets these same variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PORT = 8080
LIVENESS_PATH = "/gateway/live"
READINESS_PATH = "/gateway/ready"
# Chroma's default max_payload_size_bytes: larger bodies would be refused by Chroma anyway.
DEFAULT_MAX_BODY_BYTES = 41_943_040
DEFAULT_METRICS_NAMESPACE = "ChromaGateway"

ENV_PORT = "GATEWAY_PORT"
ENV_LISTEN_ADDRESS = "GATEWAY_LISTEN_ADDRESS"
ENV_UPSTREAM_URL = "GATEWAY_UPSTREAM_URL"
ENV_UPSTREAM_TIMEOUT_SECONDS = "GATEWAY_UPSTREAM_TIMEOUT_SECONDS"
ENV_MAX_BODY_BYTES = "GATEWAY_MAX_BODY_BYTES"
ENV_TOKEN_SECRET_ID = "GATEWAY_TOKEN_SECRET_ID"
ENV_TOKEN_FILE = "GATEWAY_TOKEN_FILE"
ENV_TOKENS = "GATEWAY_TOKENS"
ENV_TOKEN_REFRESH_SECONDS = "GATEWAY_TOKEN_REFRESH_SECONDS"
ENV_PREVIOUS_TOKEN_GRACE_SECONDS = "GATEWAY_PREVIOUS_TOKEN_GRACE_SECONDS"
ENV_DRAIN_SECONDS = "GATEWAY_DRAIN_SECONDS"
ENV_CLIENT_TIMEOUT_SECONDS = "GATEWAY_CLIENT_TIMEOUT_SECONDS"
ENV_KEEPALIVE_SECONDS = "GATEWAY_KEEPALIVE_SECONDS"
ENV_METRICS_NAMESPACE = "GATEWAY_METRICS_NAMESPACE"
ENV_ENVIRONMENT = "GATEWAY_ENVIRONMENT"


class SettingsError(ValueError):
    """A gateway setting is missing or out of range; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    upstream_url: str
    port: int = DEFAULT_PORT
    listen_address: str = "0.0.0.0"
    upstream_timeout_seconds: float = 60.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    token_secret_id: str | None = None
    token_file: str | None = None
    tokens: tuple[str, ...] = ()
    token_refresh_seconds: float = 15.0
    previous_token_grace_seconds: float = 3600.0
    drain_seconds: float = 25.0
    # A client must send a whole request (headers and body) within this; slow clients get 408.
    client_timeout_seconds: float = 30.0
    # Idle keep-alive connections close after this; keep it above the load balancer's idle timeout.
    keepalive_seconds: float = 120.0
    metrics_namespace: str = DEFAULT_METRICS_NAMESPACE
    environment: str = "local"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from GATEWAY_* variables; an unset variable takes the field's default above."""
        env = os.environ if env is None else env
        upstream = env.get(ENV_UPSTREAM_URL, "").strip()
        if not upstream.startswith(("http://", "https://")):
            raise SettingsError(f"{ENV_UPSTREAM_URL} must be an http(s) URL such as http://127.0.0.1:8000")

        def number(name: str, field: str, low: float, high: float) -> float:
            default = getattr(cls, field)
            return _number(env, name, type(default), default, low, high)

        settings = cls(
            upstream_url=upstream.rstrip("/"),
            port=int(number(ENV_PORT, "port", 1, 65535)),
            listen_address=env.get(ENV_LISTEN_ADDRESS, cls.listen_address),
            upstream_timeout_seconds=number(ENV_UPSTREAM_TIMEOUT_SECONDS, "upstream_timeout_seconds", 0.1, 3600),
            max_body_bytes=int(number(ENV_MAX_BODY_BYTES, "max_body_bytes", 1, 1 << 31)),
            token_secret_id=env.get(ENV_TOKEN_SECRET_ID) or None,
            token_file=env.get(ENV_TOKEN_FILE) or None,
            tokens=tuple(t for t in env.get(ENV_TOKENS, "").split(",") if t),
            token_refresh_seconds=number(ENV_TOKEN_REFRESH_SECONDS, "token_refresh_seconds", 0.05, 30),
            previous_token_grace_seconds=number(ENV_PREVIOUS_TOKEN_GRACE_SECONDS, "previous_token_grace_seconds",
                                                0, 7 * 86400),
            drain_seconds=number(ENV_DRAIN_SECONDS, "drain_seconds", 0, 120),
            client_timeout_seconds=number(ENV_CLIENT_TIMEOUT_SECONDS, "client_timeout_seconds", 0.1, 600),
            keepalive_seconds=number(ENV_KEEPALIVE_SECONDS, "keepalive_seconds", 1, 4000),
            metrics_namespace=env.get(ENV_METRICS_NAMESPACE, cls.metrics_namespace),
            environment=env.get(ENV_ENVIRONMENT, cls.environment),
        )
        sources = sum(bool(s) for s in (settings.token_secret_id, settings.token_file, settings.tokens))
        if sources != 1:
            raise SettingsError(f"set exactly one token source: {ENV_TOKEN_SECRET_ID}, {ENV_TOKEN_FILE} or "
                                f"{ENV_TOKENS} (found {sources})")
        return settings


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float, low: float,
            high: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} is out of range: use {low} to {high}")
    return value
