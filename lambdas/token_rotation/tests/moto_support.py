"""What Secrets Manager does around a rotation, emulated on moto's backend (moto only does it with a Lambda)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def enable_rotation(client: SecretsManagerClient, secret_id: str) -> None:
    """Turn rotation on. moto, having no function to call, re-labels the same value AWSCURRENT at once."""
    client.rotate_secret(SecretId=secret_id, RotationRules={"AutomaticallyAfterDays": 30}, RotateImmediately=False)


def _secret(secret_id: str, region: str) -> FakeSecret:
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][region].secrets[secret_id]
    assert isinstance(secret, FakeSecret)
    return secret


def begin_rotation(client: SecretsManagerClient, secret_id: str, region: str = "us-east-1") -> str:
    """Secrets Manager's RotateSecret: a new version id staged AWSPENDING, with no value yet; returns the id."""
    enable_rotation(client, secret_id)
    version = str(uuid.uuid4())
    secret = _secret(secret_id, region)
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[version] = {"createdate": int(time.time()), "version_id": version,
                                "version_stages": ["AWSPENDING"]}
    return version


def complete_rotation(secret_id: str, region: str = "us-east-1") -> None:
    """After a successful finishSecret, Secrets Manager records LastRotatedDate; moto does not."""
    _secret(secret_id, region).last_rotation_date = int(time.time())
