"""The set of client tokens the gateway accepts, and where it comes from.

Sources: a Secrets Manager secret (AWSCURRENT always, AWSPENDING during a rotation, AWSPREVIOUS for a grace period
after one), a file, or a fixed list. A refresh that fails keeps the last good set: the gateway never fails open.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gateway.settings import PENDING_MAX_AGE_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger("gateway.tokens")

# Chroma's clients send tokens of ASCII letters, digits and punctuation; anything else is malformed.
MAX_TOKEN_LENGTH = 512


def is_well_formed(token: str) -> bool:
    return 0 < len(token) <= MAX_TOKEN_LENGTH and all("!" <= ch <= "~" for ch in token)


@dataclass(frozen=True)
class TokenSet:
    """Tokens accepted now. `previous` is accepted only until `previous_valid_until`, `pending` only until
    `pending_valid_until` (epoch seconds): a pending token left by a failed rotation stops working."""

    current: tuple[str, ...] = ()
    pending: str | None = None
    previous: str | None = None
    previous_valid_until: float = 0.0
    pending_valid_until: float = float("inf")

    def active(self, now: float) -> list[str]:
        tokens = list(self.current)
        if self.pending and now < self.pending_valid_until:
            tokens.append(self.pending)
        if self.previous and now < self.previous_valid_until:
            tokens.append(self.previous)
        return tokens

    def next_change(self, now: float) -> float | None:
        """When the accepted set next changes by itself (a grace period or a pending token's age runs out)."""
        ends = [t for t, token in ((self.previous_valid_until, self.previous), (self.pending_valid_until, self.pending))
                if token and now < t < float("inf")]
        return min(ends, default=None)

    @property
    def loaded(self) -> bool:
        return bool(self.current)


class TokenSource(Protocol):
    def load(self) -> TokenSet: ...


@dataclass
class StaticTokenSource:
    tokens: tuple[str, ...]

    def load(self) -> TokenSet:
        return TokenSet(current=_checked(self.tokens, "GATEWAY_TOKENS"))


@dataclass
class FileTokenSource:
    """One token per line; blank lines and lines starting with '#' are ignored. Re-read on every refresh."""

    path: Path

    def load(self) -> TokenSet:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        tokens = tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
        return TokenSet(current=_checked(tokens, f"token file {self.path}"))


@dataclass
class SecretsManagerTokenSource:
    """Reads the secret's staged versions. The secret string is the token itself.

    A refresh costs one DescribeSecret call: a version's value never changes, so values are fetched (GetSecretValue
    by version id) only for versions not seen before, which happens once per rotation.
    """

    secret_id: str
    previous_grace_seconds: float
    client: SecretsManagerClient = field(repr=False)
    # A pending version older than this (its creation) is no longer accepted: see gateway.settings.
    pending_max_age_seconds: float = float(PENDING_MAX_AGE_SECONDS)
    _versions: dict[str, tuple[str, float]] = field(default_factory=dict, repr=False)  # id -> (value, created)

    def load(self) -> TokenSet:
        described = self.client.describe_secret(SecretId=self.secret_id)
        staged = {stage: version for version, stages in described.get("VersionIdsToStages", {}).items()
                  for stage in stages}
        current_id = staged.get("AWSCURRENT")
        if current_id is None:
            raise ValueError("the secret has no AWSCURRENT version")
        current = self._version(current_id, required=True)
        assert current is not None
        pending = self._version(staged["AWSPENDING"]) if staged.get("AWSPENDING", current_id) != current_id else None
        previous = (self._version(staged["AWSPREVIOUS"])
                    if staged.get("AWSPREVIOUS", current_id) != current_id else None)
        self._versions = {v: self._versions[v] for v in set(staged.values()) if v in self._versions}
        # The previous token stays valid for the grace period after the current one took over: from the latest of
        # the rotation time and the current version's creation, both known to Secrets Manager (restart-safe).
        switched = max(current[1], _epoch(described.get("LastRotatedDate")))
        return TokenSet(
            current=_checked((current[0],), "AWSCURRENT"),
            pending=_checked((pending[0],), "AWSPENDING")[0] if pending else None,
            previous=_checked((previous[0],), "AWSPREVIOUS")[0] if previous else None,
            previous_valid_until=switched + self.previous_grace_seconds,
            pending_valid_until=pending[1] + self.pending_max_age_seconds if pending else float("inf"),
        )

    def _version(self, version_id: str, required: bool = False) -> tuple[str, float] | None:
        if version_id not in self._versions:
            try:
                value = self.client.get_secret_value(SecretId=self.secret_id, VersionId=version_id)
            except self.client.exceptions.ResourceNotFoundException:
                if required:
                    raise
                return None  # a version staged by RotateSecret before createSecret has stored its value
            if "SecretString" not in value:
                if required:
                    raise ValueError("the secret's AWSCURRENT version holds no string")
                return None
            self._versions[version_id] = (value["SecretString"], _epoch(value.get("CreatedDate")))
        return self._versions[version_id]


def _epoch(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def _checked(tokens: Iterable[str], where: str) -> tuple[str, ...]:
    tokens = tuple(tokens)
    if not tokens:
        raise ValueError(f"{where} holds no token")
    for index, token in enumerate(tokens):
        if not is_well_formed(token):
            # Never echo a token: say where and which, not what.
            raise ValueError(f"{where}: token #{index + 1} is not 1-{MAX_TOKEN_LENGTH} printable ASCII characters")
    return tokens


@dataclass
class TokenCache:
    """The last good token set, plus what the last refresh said, for readiness and metrics."""

    source: TokenSource
    tokens: TokenSet = field(default_factory=TokenSet)
    last_error: str | None = None
    consecutive_failures: int = 0

    def refresh(self) -> bool:
        try:
            tokens = self.source.load()
        except Exception as error:
            self.consecutive_failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            log.warning("token refresh failed; keeping the last good set",
                        extra={"event": "token_refresh_failed", "error": self.last_error,
                               "consecutive_failures": self.consecutive_failures, "have_tokens": self.tokens.loaded})
            return False
        changed = tokens != self.tokens
        self.tokens = tokens
        self.last_error = None
        self.consecutive_failures = 0
        if changed:
            log.info("token set changed", extra={"event": "tokens_loaded", "current": len(tokens.current),
                                                  "pending": tokens.pending is not None,
                                                  "previous": tokens.previous is not None})
        return True
