"""Find an environment's endpoint and token, with the client package's discovery (SSM parameters under
/chroma/<env>/ first, the stacks' outputs second): chroma-ops finds an environment exactly as applications do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chroma_on_aws_client.discovery import DiscoveryError
from chroma_on_aws_client.discovery import discover as discover_environment
from ops.errors import OpsError, UsageError

if TYPE_CHECKING:
    import boto3


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    source: str  # where the endpoint was found, for the report (never the token)


def discover(environment: str, session: boto3.Session, known_environments: list[str]) -> Endpoint:
    if environment not in known_environments:
        raise UsageError(f"unknown environment {environment!r}; known: {', '.join(known_environments)}")
    try:
        found = discover_environment(environment, session.client("ssm"), session.client("cloudformation"))
        secret = session.client("secretsmanager").get_secret_value(SecretId=found.secret_id,
                                                                    VersionStage="AWSCURRENT")
    except DiscoveryError as error:
        raise OpsError(f"environment {environment!r} is not deployed here: {error}") from None
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot read environment {environment!r} from AWS: {error}") from None
    return Endpoint(url=found.url, token=secret["SecretString"], source=found.source)
