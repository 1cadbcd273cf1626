"""The recovery-point protocol between the backup job (lambdas/recovery_point) and the node's gateway: two S3 keys.

The job writes `<prefix>/snapshot-request.json` ({"id", "expires_at"}); the node answers
`<prefix>/snapshots/<id>.json` ({"status": "ok" | "failed", ...}). Standard library only: the backup job's bundle
carries this file too, so both sides read one definition.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

REQUEST_KEY = "snapshot-request.json"
RESULTS_FOLDER = "snapshots"
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


@dataclass(frozen=True)
class SnapshotRequest:
    snapshot_id: str
    expires_at: float


def valid_snapshot_id(identifier: str) -> bool:
    """Ids name a directory and an S3 key: 1-64 ASCII letters, digits and '-'."""
    return bool(_ID.match(identifier))


def request_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{REQUEST_KEY}"


def result_key(prefix: str, snapshot_id: str) -> str:
    return f"{prefix.strip('/')}/{RESULTS_FOLDER}/{snapshot_id}.json"


def snapshot_id(environment: str, at: datetime) -> str:
    """`<env>-YYYYMMDD-HHMMSS` in UTC: sortable, and one per second at most."""
    return f"{environment}-{at.astimezone(UTC):%Y%m%d-%H%M%S}"


def request_body(request: SnapshotRequest) -> bytes:
    return json.dumps({"id": request.snapshot_id, "expires_at": request.expires_at}).encode()


def parse_request(body: bytes) -> SnapshotRequest:
    """The request's fields, or ValueError naming what is wrong."""
    try:
        raw = json.loads(body)
        identifier, expires_at = raw["id"], float(raw["expires_at"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"not a snapshot request ({type(error).__name__}: {error})") from None
    if not isinstance(identifier, str) or not valid_snapshot_id(identifier):
        raise ValueError(f"snapshot request id {identifier!r}: use 1-64 letters, digits and '-'")
    return SnapshotRequest(identifier, expires_at)
