"""When a failed request is retried, and how long to wait: capped exponential backoff with full jitter, the
server's Retry-After honoured, all within one time budget per call.

Only what is safe is retried (docs: README "Connecting a client"):
- a request that never reached Chroma: connection refused or reset before sending, the gateway's `503 WritesPaused`
  (a recovery point's pause, a tenant's move), any 503 without a body from Chroma (the load balancer with no
  healthy target, the gateway draining), and `421 MisdirectedRequest` (a tenant's route changing while it moves
  between nodes: the node refused it) — every operation, writes included;
- a request that may have reached Chroma (a timeout, 502, 504, a connection lost mid-way): only idempotent
  operations — reads (GET; POST .../get, .../query, .../count, .../search), upsert, update and delete by id;
- `add` after a possible arrival is never resent blindly: the client asks which of its ids exist and sends only
  the others (api.ResilientFastAPI); create/delete of collections and databases are not retried after a possible
  arrival, and the error says so.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time

IDEMPOTENT_SUFFIXES = ("/get", "/query", "/count", "/search", "/upsert", "/update", "/delete")
# Statuses after which the request may have been processed: retried only when the operation is idempotent.
MAYBE_PROCESSED = frozenset({502, 504})
# The gateway's and the load balancer's "not now" (503), and a node's "not here" (421, while a tenant's route
# changes): the request did not reach Chroma.
NOT_PROCESSED = frozenset({421, 503})


@dataclass(frozen=True)
class RetryPolicy:
    budget_seconds: float = 180.0  # a deploy's stop-then-start (1-3 minutes of 503) fits in it
    first_delay_seconds: float = 0.2
    max_delay_seconds: float = 5.0
    timeout_seconds: float = 60.0  # per request; the gateway's upstream timeout is 60 s

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before retry number `attempt` (1-based): Retry-After if the server gave one, else capped
        exponential backoff with full jitter."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_seconds * 4)
        return rng.uniform(0, min(self.max_delay_seconds, self.first_delay_seconds * 2 ** (attempt - 1)))


def idempotent(method: str, path: str) -> bool:
    return method.upper() == "GET" or (method.upper() == "POST" and path.rstrip("/").endswith(IDEMPOTENT_SUFFIXES))


def is_add(method: str, path: str) -> bool:
    return method.upper() == "POST" and path.rstrip("/").endswith("/add")


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - (time() if now is None else now)
    except (TypeError, ValueError):
        return None
