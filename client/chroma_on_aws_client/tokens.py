"""Where the client's token comes from: a fixed one, or Secrets Manager's AWSCURRENT, re-read on a schedule shorter
than the gateway's grace for the previous token (so a rotation never locks the client out) and once on a 401.
The token is never logged, and never part of an error message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

RETRY_FAILED_READ_SECONDS = 5.0


class TokenSource(Protocol):
    def token(self) -> str: ...

    def refresh(self) -> bool:
        """Read the token again now; True if it changed."""
        ...


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
        return self._token

    def refresh(self) -> bool:
        return False


class SecretsManagerToken:
    """AWSCURRENT of `secret_id`, re-read every `refresh_seconds`."""

    def __init__(self, secrets_manager: Any, secret_id: str, refresh_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client, self._secret_id, self._every, self._clock = secrets_manager, secret_id, refresh_seconds, clock
        self._lock = threading.Lock()
        self._value = ""
        self._read_at = float("-inf")
        self.refresh()

    def _read(self) -> str:
        return str(self._client.get_secret_value(SecretId=self._secret_id, VersionStage="AWSCURRENT")["SecretString"])

    def token(self) -> str:
        if self._clock() - self._read_at >= self._every:
            try:
                self.refresh()
            except Exception:
                self._read_at = self._clock() - self._every + RETRY_FAILED_READ_SECONDS
                if not self._value:
                    raise
        return self._value

    def refresh(self) -> bool:
        with self._lock:
            value = self._read()
            changed = value != self._value
            self._value, self._read_at = value, self._clock()
            return changed
