"""How a node learns to take a recovery point, and how it answers: two objects in S3.

The backup job writes `<prefix>/snapshot-request.json` ({"id": ..., "expires_at": epoch seconds}; the keys and
shapes are gateway.snapshot_protocol); the gateway polls it (a conditional GET: unchanged costs a 304) and, for a
request it has not answered and that has not expired, takes the recovery point (gateway.snapshot) and writes
`<prefix>/snapshots/<id>.json` with the outcome. S3 is reachable from every network layout of this project (the S3
gateway endpoint is always there, and costs nothing), across the load balancer's one task, and the request
survives a gateway restart: a restarted gateway finds it again, and an expired one never pauses writes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gateway.s3_documents import read_if_changed
from gateway.snapshot_protocol import SnapshotRequest, parse_request, request_key, result_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("gateway.snapshot")

class S3SnapshotRequests:
    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._etag: str | None = None
        self._answered: set[str] = set()

    def poll(self, now: float | None = None) -> SnapshotRequest | None:
        """A request to act on now, or None (none, unchanged, answered, expired or malformed)."""
        body, self._etag = read_if_changed(self._client, self._bucket, request_key(self._prefix), self._etag)
        if body is None:
            return None
        try:
            request = parse_request(body)
        except ValueError as error:
            log.error("ignoring a malformed snapshot request", extra={"event": "snapshot_request_invalid",
                                                                       "error": str(error)})
            return None
        if request.snapshot_id in self._answered or self._already_answered(request.snapshot_id):
            self._answered.add(request.snapshot_id)
            return None
        if request.expires_at < (time.time() if now is None else now):
            log.warning("ignoring an expired snapshot request", extra={"event": "snapshot_request_expired",
                                                                        "snapshot_id": request.snapshot_id})
            self._answered.add(request.snapshot_id)
            return None
        return request

    def _already_answered(self, snapshot_id: str) -> bool:
        """A restarted gateway must not take the same recovery point twice."""
        try:
            self._client.head_object(Bucket=self._bucket, Key=result_key(self._prefix, snapshot_id))
            return True
        except ClientError as error:
            if error.response.get("Error", {}).get("Code", "") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def answer(self, snapshot_id: str, outcome: dict[str, Any]) -> None:
        self._client.put_object(Bucket=self._bucket, Key=result_key(self._prefix, snapshot_id),
                                Body=json.dumps(outcome, sort_keys=True).encode(),
                                ContentType="application/json")
        self._answered.add(snapshot_id)
