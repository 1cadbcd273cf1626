"""The rotation steps against moto's Secrets Manager, each run twice (Secrets Manager may retry any step)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from lambdas.token_rotation.function.rotation import RotationError, Rotator, generate_token
from lambdas.token_rotation.function.settings import STEPS
from lambdas.token_rotation.tests.moto_support import begin_rotation

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

OLD = "old-token-value"


class ScriptedProbe:
    """Stands in for the gateway behind the load balancer: accepts the tokens in `accepted`."""

    def __init__(self) -> None:
        self.accepted: set[str] = {OLD}
        self.calls: list[str] = []
        self.accept_after: dict[str, int] = {}

    def status_with(self, token: str) -> int:
        self.calls.append(token)
        remaining = self.accept_after.get(token)
        if remaining is not None:
            self.accept_after[token] = remaining - 1
            if remaining <= 0:
                self.accepted.add(token)
        return 200 if token in self.accepted else 401


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


def make_secret(client: SecretsManagerClient) -> str:
    return str(client.create_secret(Name=f"chroma/test/{uuid.uuid4().hex}", SecretString=OLD)["ARN"])


def rotator(client: SecretsManagerClient, probe: ScriptedProbe, **kwargs: Any) -> Rotator:
    return Rotator(client=client, probe=probe, poll_seconds=0, sleep=lambda _: None, **kwargs)


def stages(client: SecretsManagerClient, secret_id: str) -> dict[str, list[str]]:
    return dict(client.describe_secret(SecretId=secret_id)["VersionIdsToStages"])


def test_generated_tokens_are_long_ascii_and_unique() -> None:
    tokens = {generate_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) == 48 and t.isascii() and t.isalnum() for t in tokens)


def test_full_rotation_with_every_step_run_twice(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    probe = ScriptedProbe()
    rotation = rotator(client, probe)

    assert rotation.rotate("createSecret", secret_id, version) == "new pending token stored"
    assert rotation.rotate("createSecret", secret_id, version) == "pending token already stored"
    pending = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPENDING")["SecretString"]
    assert pending != OLD and len(pending) == 48

    probe.accepted.add(pending)  # the gateway has picked it up
    assert rotation.rotate("setSecret", secret_id, version) == "gateway accepts the pending token"
    assert rotation.rotate("setSecret", secret_id, version) == "gateway accepts the pending token"
    assert rotation.rotate("testSecret", secret_id, version).startswith("pending token works")
    assert rotation.rotate("testSecret", secret_id, version).startswith("pending token works")

    assert rotation.rotate("finishSecret", secret_id, version) == "pending version is now AWSCURRENT"
    assert rotation.rotate("finishSecret", secret_id, version) == "version is already AWSCURRENT: nothing to do"
    assert client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"] == pending
    assert client.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")["SecretString"] == OLD
    assert "AWSCURRENT" in stages(client, secret_id)[version]
    # Every step after finishing is a no-op, as the contract requires.
    for step in STEPS:
        assert rotation.rotate(step, secret_id, version) == "version is already AWSCURRENT: nothing to do"


def test_set_secret_waits_until_the_gateway_refreshes(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    probe = ScriptedProbe()
    rotation = rotator(client, probe)
    rotation.rotate("createSecret", secret_id, version)
    pending = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPENDING")["SecretString"]
    probe.accept_after[pending] = 3  # refused three times, then the gateway's refresh brings it in
    assert rotation.rotate("setSecret", secret_id, version) == "gateway accepts the pending token"
    assert probe.calls == [pending] * 4


def test_set_secret_gives_up_after_its_deadline(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    ticks = iter(range(1000))
    rotation = rotator(client, ScriptedProbe(), wait_seconds=5, clock=lambda: float(next(ticks)))
    rotation.rotate("createSecret", secret_id, version)
    with pytest.raises(RotationError,
                       match=r"did not accept the pending token within 5 s \(last: gateway answered 401"):
        rotation.rotate("setSecret", secret_id, version)
    # Nothing moved: AWSCURRENT still holds the old token, so clients are unaffected.
    assert client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"] == OLD


def test_test_secret_fails_when_auth_is_not_enforced(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    probe = ScriptedProbe()
    rotation = rotator(client, probe)
    rotation.rotate("createSecret", secret_id, version)
    probe.status_with = lambda token: 200  # type: ignore[method-assign]  # a gateway that lets anyone in
    with pytest.raises(RotationError, match="bogus token got 200, expected 401: auth is not enforced"):
        rotation.rotate("testSecret", secret_id, version)


def test_test_secret_fails_when_the_pending_token_is_refused(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    rotation = rotator(client, ScriptedProbe())
    rotation.rotate("createSecret", secret_id, version)
    with pytest.raises(RotationError, match="pending token got 401, expected 200"):
        rotation.rotate("testSecret", secret_id, version)


def test_a_token_that_is_not_a_version_of_the_secret(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    begin_rotation(client, secret_id)
    stranger = str(uuid.uuid4())
    with pytest.raises(RotationError, match=f"version {stranger} is not a version of secret"):
        rotator(client, ScriptedProbe()).rotate("createSecret", secret_id, stranger)


def test_a_version_in_the_wrong_stage(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    rotation = rotator(client, ScriptedProbe())
    rotation.rotate("createSecret", secret_id, version)
    # Someone moved AWSPENDING elsewhere: this version is now in no stage the steps may act on.
    client.update_secret_version_stage(SecretId=secret_id, VersionStage="AWSPENDING", RemoveFromVersionId=version)
    with pytest.raises(RotationError, match=f"version {version} of the secret is not AWSPENDING"):
        rotation.rotate("setSecret", secret_id, version)


def test_rotation_disabled(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["VersionId"]
    with pytest.raises(RotationError, match="rotation is not enabled for secret chroma/test/"):
        rotator(client, ScriptedProbe()).rotate("createSecret", secret_id, version)


def test_unknown_step(client: SecretsManagerClient) -> None:
    with pytest.raises(RotationError, match="unknown rotation step 'dropSecret'"):
        rotator(client, ScriptedProbe()).rotate("dropSecret", "x", "y")


def test_errors_never_contain_token_values(client: SecretsManagerClient) -> None:
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    rotation = rotator(client, ScriptedProbe(), wait_seconds=0)
    rotation.rotate("createSecret", secret_id, version)
    pending = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPENDING")["SecretString"]
    for step in ("setSecret", "testSecret"):
        with pytest.raises(RotationError) as caught:
            rotation.rotate(step, secret_id, version)
        assert pending not in str(caught.value) and OLD not in str(caught.value)


def test_an_over_age_pending_version_is_released_not_waited_on(client: SecretsManagerClient) -> None:
    """The gateway stops accepting a pending token an hour after it was stored; a rotation resumed later must not
    wait the full setSecret deadline on a token that will never work."""
    secret_id = make_secret(client)
    version = begin_rotation(client, secret_id)
    probe = ScriptedProbe()
    rotator(client, probe).rotate("createSecret", secret_id, version)
    later = rotator(client, probe, now=lambda: time.time() + 3601, pending_max_age_seconds=3600)
    with pytest.raises(RotationError, match=r"stored \d+ s ago, more than the 3600 s .* released it"):
        later.rotate("setSecret", secret_id, version)
    assert probe.calls == []  # never waited on the gateway
    assert "AWSPENDING" not in stages(client, secret_id).get(version, [])
    # Within the age, the same step goes on as usual.
    fresh = begin_rotation(client, secret_id)
    rotator(client, probe).rotate("createSecret", secret_id, fresh)
    probe.accept_after = {client.get_secret_value(SecretId=secret_id, VersionStage="AWSPENDING")["SecretString"]: 0}
    assert rotator(client, probe, pending_max_age_seconds=3600).rotate("setSecret", secret_id, fresh) == \
        "gateway accepts the pending token"
