"""`python -m gateway`: run the gateway (HAProxy data path + control plane) with settings from the environment."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from gateway.settings import Settings, SettingsError
from gateway.supervisor import ProxyError, Supervisor
from gateway.telemetry import AccessLog, configure_logging
from gateway.tokens import FileTokenSource, SecretsManagerTokenSource, StaticTokenSource, TokenCache, TokenSource

log = logging.getLogger("gateway")


def token_source(settings: Settings) -> TokenSource:
    if settings.token_secret_id:
        import boto3  # only needed, and only imported, for the Secrets Manager source

        return SecretsManagerTokenSource(secret_id=settings.token_secret_id,
                                         previous_grace_seconds=settings.previous_token_grace_seconds,
                                         client=boto3.client("secretsmanager"),
                                         pending_max_age_seconds=settings.pending_max_age_seconds)
    if settings.token_file:
        return FileTokenSource(Path(settings.token_file))
    return StaticTokenSource(settings.tokens)


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        log.error("invalid settings: %s", error)
        return 2
    supervisor = Supervisor(settings, TokenCache(token_source(settings)),
                            AccessLog(settings.metrics_namespace, settings.environment, settings.node))
    log.info("gateway starting", extra={"event": "start", "port": settings.port, "upstream": settings.upstream_url,
                                        "environment": settings.environment})
    try:
        return asyncio.run(supervisor.run())
    except ProxyError as error:
        log.error("cannot run the proxy: %s", error)
        return 3


if __name__ == "__main__":
    sys.exit(main())
