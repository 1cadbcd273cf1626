"""The four steps of the Secrets Manager rotation contract for the gateway token. Each step is idempotent.

The secret string is the token itself. The gateway reads AWSCURRENT, AWSPENDING and (for a grace period)
AWSPREVIOUS on its own, so nothing in Chroma changes: setSecret only waits until the gateway accepts the new token.
"""

from __future__ import annotations

import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .settings import STEPS, TOKEN_LENGTH

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT, PENDING = "AWSCURRENT", "AWSPENDING"
TOKEN_ALPHABET = string.ascii_letters + string.digits  # ASCII only, as Chroma's clients require


class RotationError(Exception):
    """The rotation cannot proceed; the message says why (and never contains a token)."""


class Probe(Protocol):
    def status_with(self, token: str) -> int: ...


def generate_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


@dataclass
class Rotator:
    client: SecretsManagerClient
    probe: Probe
    wait_seconds: float = 120.0
    pending_max_age_seconds: float = 3600.0
    poll_seconds: float = 3.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    new_token: Callable[[], str] = field(default=generate_token)

    def rotate(self, step: str, secret_id: str, version: str) -> str:
        """Run one step. Returns what happened, for the log; raises RotationError when the contract is broken."""
        if step not in STEPS:
            raise RotationError(f"unknown rotation step {step!r}; expected one of {', '.join(STEPS)}")
        stages = self._check_protocol(secret_id, version)
        if CURRENT in stages:
            return "version is already AWSCURRENT: nothing to do"
        if PENDING not in stages:
            raise RotationError(f"version {version} of the secret is not AWSPENDING (stages: {sorted(stages)})")
        self._refuse_an_over_age_pending_version(secret_id, version)
        handler: Callable[[str, str], str] = {
            "createSecret": self.create_secret, "setSecret": self.set_secret,
            "testSecret": self.test_secret, "finishSecret": self.finish_secret,
        }[step]
        return handler(secret_id, version)

    def _check_protocol(self, secret_id: str, version: str) -> list[str]:
        described = self.client.describe_secret(SecretId=secret_id)
        if not described.get("RotationEnabled"):
            raise RotationError(f"rotation is not enabled for secret {described.get('Name', secret_id)}")
        versions: dict[str, list[str]] = described.get("VersionIdsToStages", {})
        if version not in versions:
            raise RotationError(f"version {version} is not a version of secret {described.get('Name', secret_id)}")
        return versions[version]

    def _refuse_an_over_age_pending_version(self, secret_id: str, version: str) -> None:
        """The gateway accepts a pending token only `pending_max_age_seconds` after its version was stored: an
        older one (a rotation that failed and was resumed much later) would never be accepted, so instead of waiting
        on it, release it and fail; the next rotation stores a fresh version."""
        try:
            stored = self.client.get_secret_value(SecretId=secret_id, VersionId=version, VersionStage=PENDING)
        except self.client.exceptions.ResourceNotFoundException:
            return  # createSecret has not stored the value yet
        age = self.now() - stored["CreatedDate"].timestamp()
        if age <= self.pending_max_age_seconds:
            return
        self.client.update_secret_version_stage(SecretId=secret_id, VersionStage=PENDING,
                                                RemoveFromVersionId=version)
        raise RotationError(f"pending version {version} was stored {age:.0f} s ago, more than the "
                            f"{self.pending_max_age_seconds:g} s the gateway accepts a pending token; released it: "
                            "rotate again to store a new version")

    def create_secret(self, secret_id: str, version: str) -> str:
        self.client.get_secret_value(SecretId=secret_id, VersionStage=CURRENT)  # the secret must have a current value
        try:
            self.client.get_secret_value(SecretId=secret_id, VersionId=version, VersionStage=PENDING)
            return "pending token already stored"
        except self.client.exceptions.ResourceNotFoundException:
            pass
        self.client.put_secret_value(SecretId=secret_id, ClientRequestToken=version, SecretString=self.new_token(),
                                     VersionStages=[PENDING])
        return "new pending token stored"

    def set_secret(self, secret_id: str, version: str) -> str:
        pending = self._value(secret_id, version, PENDING)
        deadline = self.clock() + self.wait_seconds
        last = "no answer"
        while True:
            try:
                status = self.probe.status_with(pending)
            except OSError as error:
                status, last = 0, f"gateway unreachable ({type(error).__name__})"
            else:
                last = f"gateway answered {status}"
            if status == 200:
                return "gateway accepts the pending token"
            if self.clock() >= deadline:
                raise RotationError(f"gateway did not accept the pending token within {self.wait_seconds:g} s "
                                    f"(last: {last})")
            self.sleep(self.poll_seconds)

    def test_secret(self, secret_id: str, version: str) -> str:
        pending = self._value(secret_id, version, PENDING)
        status = self.probe.status_with(pending)
        if status != 200:
            raise RotationError(f"an authenticated call with the pending token got {status}, expected 200")
        bogus = self.new_token()
        status = self.probe.status_with(bogus)
        if status != 401:
            raise RotationError(f"a call with a bogus token got {status}, expected 401: auth is not enforced")
        return "pending token works end to end and a bogus token is refused"

    def finish_secret(self, secret_id: str, version: str) -> str:
        described = self.client.describe_secret(SecretId=secret_id)
        current = next((v for v, stages in described["VersionIdsToStages"].items() if CURRENT in stages), None)
        if current == version:
            return "version is already AWSCURRENT"
        if current is None:
            raise RotationError("the secret has no AWSCURRENT version to replace; restore it before rotating")
        # Secrets Manager labels the version that loses AWSCURRENT as AWSPREVIOUS.
        self.client.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT, MoveToVersionId=version,
                                                RemoveFromVersionId=current)
        return "pending version is now AWSCURRENT"

    def _value(self, secret_id: str, version: str, stage: str) -> str:
        value = self.client.get_secret_value(SecretId=secret_id, VersionId=version, VersionStage=stage)
        return str(value["SecretString"])
