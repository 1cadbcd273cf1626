"""The gateway reading its tokens from Secrets Manager (moto as a server on loopback), through a rotation."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import boto3

from gateway.local import Server
from gateway.tests.conftest import GatewayFactory, aws_settings, running_moto
from gateway.tests.test_proxy import _wait_for, raw

GRACE_SECONDS = 4.0


def status_with(gateway: Server, token: str) -> int:
    return raw(gateway.port, "GET", "/api/v2/heartbeat", {"Authorization": f"Bearer {token}"})[0]


def test_rotation_stages_and_grace_period(chroma: Server, start_gateway: GatewayFactory,
                                          aws_env: dict[str, str]) -> None:
    client = boto3.client("secretsmanager")
    name = f"chroma/test/{uuid.uuid4().hex}"
    arn = client.create_secret(Name=name, SecretString="token-one")["ARN"]
    gateway = start_gateway(chroma.url, token_secret_id=arn, token_refresh_seconds="0.2",
                            previous_token_grace_seconds=str(GRACE_SECONDS), **aws_env)
    assert status_with(gateway, "token-one") == 200
    assert status_with(gateway, "token-two") == 401

    # createSecret stores AWSPENDING: the gateway accepts it alongside AWSCURRENT, without a restart.
    pending = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=pending, SecretString="token-two",
                            VersionStages=["AWSPENDING"])
    _wait_for(lambda: status_with(gateway, "token-two") == 200)
    assert status_with(gateway, "token-one") == 200

    # finishSecret moves AWSCURRENT; the old version becomes AWSPREVIOUS, accepted for the grace period only,
    # counted from the new version's creation as Secrets Manager records it (so a restarted gateway agrees).
    created = client.get_secret_value(SecretId=arn, VersionId=pending)["CreatedDate"].timestamp()
    current = client.get_secret_value(SecretId=arn)["VersionId"]
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=pending,
                                       RemoveFromVersionId=current)
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=pending)
    time.sleep(0.5)  # more than one refresh interval
    assert status_with(gateway, "token-two") == 200
    if time.time() < created + GRACE_SECONDS - 0.5:
        assert status_with(gateway, "token-one") == 200
    _wait_for(lambda: status_with(gateway, "token-one") == 401, timeout=GRACE_SECONDS + 5)
    assert time.time() >= created + GRACE_SECONDS - 0.05  # not refused before the grace period was over
    assert status_with(gateway, "token-two") == 200
    assert status_with(gateway, "bogus") == 401


def test_unreachable_secrets_manager_keeps_the_last_good_tokens(chroma: Server, start_gateway: GatewayFactory,
                                                                 tmp_path: Path) -> None:
    with running_moto(tmp_path) as moto:
        settings = aws_settings(moto.url)
        client = boto3.client("secretsmanager", endpoint_url=moto.url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        arn = client.create_secret(Name="chroma/test/outage", SecretString="still-good")["ARN"]
        gateway = start_gateway(chroma.url, token_secret_id=arn, token_refresh_seconds="0.2", **settings)
        assert status_with(gateway, "still-good") == 200
    # moto is gone: every refresh fails...
    _wait_for(lambda: '"event": "token_refresh_failed"' in gateway.log())
    # ...and the gateway keeps the last good set: it never fails open, and never locks everyone out.
    assert status_with(gateway, "still-good") == 200
    assert status_with(gateway, "anything-else") == 401
    status, _, body = raw(gateway.port, "GET", "/gateway/ready")
    assert status == 200 and json.loads(body)["token_refresh_failures"] > 0
    assert "still-good" not in gateway.log()


def test_no_reachable_secret_at_start_means_not_ready_and_nothing_accepted(chroma: Server,
                                                                            start_gateway: GatewayFactory,
                                                                            aws_env: dict[str, str]) -> None:
    gateway = start_gateway(chroma.url, wait_ready=False, token_secret_id="chroma/test/does-not-exist",
                            **aws_env)
    status, _, body = raw(gateway.port, "GET", "/gateway/ready")
    assert status == 503 and b"tokens not loaded" in body
    assert status_with(gateway, "") == 401 and status_with(gateway, "guess") == 401


def test_a_stale_pending_token_stops_being_accepted(chroma: Server, start_gateway: GatewayFactory,
                                                    aws_env: dict[str, str]) -> None:
    """A pending version left by a failed rotation is a credential nobody rotates out: bounded by its age."""
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name=f"chroma/test/{uuid.uuid4().hex}", SecretString="token-one")["ARN"]
    max_age = 3.0
    gateway = start_gateway(chroma.url, token_secret_id=arn, token_refresh_seconds="0.2",
                            pending_max_age_seconds=str(max_age), **aws_env)
    pending = str(uuid.uuid4())
    client.put_secret_value(SecretId=arn, ClientRequestToken=pending, SecretString="token-two",
                            VersionStages=["AWSPENDING"])
    created = client.get_secret_value(SecretId=arn, VersionId=pending)["CreatedDate"].timestamp()
    _wait_for(lambda: status_with(gateway, "token-two") == 200)
    _wait_for(lambda: status_with(gateway, "token-two") == 401, timeout=max_age + 5)
    assert time.time() >= created + max_age - 0.05  # not refused before its age ran out
    assert status_with(gateway, "token-one") == 200
