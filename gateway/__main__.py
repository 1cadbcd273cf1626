"""`python -m gateway`: run the gateway with settings from the environment (see gateway/settings.py)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from gateway.server import Gateway, serve
from gateway.settings import Settings, SettingsError
from gateway.telemetry import AccessLog, configure_logging
from gateway.tokens import FileTokenSource, SecretsManagerTokenSource, StaticTokenSource, TokenCache, TokenSource

log = logging.getLogger("gateway")


def token_source(settings: Settings) -> TokenSource:
    if settings.token_secret_id:
        import boto3  # only needed, and only imported, for the Secrets Manager source

        return SecretsManagerTokenSource(secret_id=settings.token_secret_id,
                                         previous_grace_seconds=settings.previous_token_grace_seconds,
                                         client=boto3.client("secretsmanager"))
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
    gateway = Gateway(settings, TokenCache(token_source(settings)),
                      AccessLog(settings.metrics_namespace, settings.environment))
    log.info("gateway starting", extra={"event": "start", "port": settings.port, "upstream": settings.upstream_url,
                                        "environment": settings.environment})
    try:
        import uvloop

        uvloop.run(serve(gateway))
    except ImportError:  # pragma: no cover - uvloop is in the image; plain asyncio works too
        asyncio.run(serve(gateway))
    log.info("gateway stopped", extra={"event": "stop"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
