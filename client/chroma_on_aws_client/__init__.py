"""A chromadb client for Chroma on AWS: `connect("prod")` returns chromadb's own ClientAPI, with the environment's
endpoint and rotating token found for you, safe retries, timeouts and batching (see api.py)."""

from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import replace
from typing import Any

from chromadb.api import ClientAPI
from chromadb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings

from chroma_on_aws_client.api import REGISTRY, ClientOptions, ResilientClient
from chroma_on_aws_client.discovery import DiscoveryError, Environment, discover
from chroma_on_aws_client.errors import BatchFailed, RequestFailed
from chroma_on_aws_client.retry import RetryPolicy
from chroma_on_aws_client.tokens import SecretsManagerToken, StaticToken, TokenSource

__all__ = ["BatchFailed", "ClientOptions", "DiscoveryError", "Environment", "RequestFailed", "RetryPolicy",
           "TokenSource", "connect", "discover"]


def connect(environment: str | None = None, *, endpoint: str | None = None, token: str | None = None,
            secret_id: str | None = None, tokens: TokenSource | None = None, session: Any = None,
            options: ClientOptions | None = None,
            tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE) -> ClientAPI:
    """A chromadb client for `environment` (found in SSM, else the stacks' outputs), or for an explicit `endpoint`
    with a `token`, the `secret_id` holding it, or any `tokens` source. `session`: a boto3.Session (default:
    boto3's)."""
    options = options or ClientOptions()
    if (environment is None) == (endpoint is None):
        raise ValueError("connect needs an environment name or an endpoint, not both")
    if environment is not None:
        import boto3

        session = session or boto3.Session()
        found = discover(environment, session.client("ssm"), session.client("cloudformation"))
        endpoint, secret_id = found.url, found.secret_id
        tokens = SecretsManagerToken(session.client("secretsmanager"), secret_id, found.token_refresh_seconds)
    elif tokens is not None:
        pass
    elif token is not None:
        tokens = StaticToken(token)
    elif secret_id is not None:
        import boto3

        session = session or boto3.Session()
        tokens = SecretsManagerToken(session.client("secretsmanager"), secret_id, 60.0)
    else:
        raise ValueError("an endpoint needs a token or the secret_id holding it")
    assert endpoint is not None
    parsed = urllib.parse.urlsplit(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"endpoint {endpoint!r}: use http(s)://host[:port]")
    # Settings carry only strings: this client's options are found by this key (each client has its own System).
    key = f"chroma-on-aws:{uuid.uuid4().hex}"
    REGISTRY[key] = replace(options, tokens=tokens)
    settings = Settings(
        chroma_api_impl="chromadb.api.fastapi.FastAPI",  # ResilientClient replaces it (see api.py)
        chroma_server_host=parsed.hostname, chroma_server_http_port=parsed.port or (443 if parsed.scheme == "https"
                                                                                    else 80),
        chroma_server_ssl_enabled=parsed.scheme == "https",
        chroma_client_auth_provider="chroma_on_aws_client.api.AwsTokenAuthProvider",
        chroma_client_auth_credentials=key, anonymized_telemetry=False)
    try:
        return ResilientClient(tenant=tenant, database=database, settings=settings)
    except ValueError as error:  # chromadb's Client turns what failed while it starts into a ValueError
        if isinstance(error.__context__, RequestFailed):
            raise error.__context__ from None  # ours: with the request id and the attempts
        raise
