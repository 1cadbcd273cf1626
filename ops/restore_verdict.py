"""The node's verdict on a restore (gateway.restore_check answers it in S3): read by chroma-ops restore and by the
restore SSM Automation document, whose `aws:executeScript` step embeds this file (standard library and boto3)."""

from __future__ import annotations

import json
import time
from typing import Any

HANDLER = "handler"
# aws:executeScript runs at most 600 s; the document's step retries (maxAttempts) to wait longer.
SCRIPT_WAIT_SECONDS = 540


def read(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The verdict, or None while the node has not answered."""
    try:
        return dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    except s3.exceptions.NoSuchKey:
        return None


def handler(events: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wait for the verdict; fail the step (and so the document) unless the node verified the restore."""
    import boto3

    s3 = boto3.client("s3")
    bucket, key = events["Bucket"], events["Key"]
    deadline = time.monotonic() + float(events.get("WaitSeconds", SCRIPT_WAIT_SECONDS))
    while (verdict := read(s3, bucket, key)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no verdict at s3://{bucket}/{key} yet: is the node starting? (the step retries)")
        time.sleep(10)
    if verdict.get("status") != "ok":
        raise RuntimeError(f"the restored data does not match its recovery point: {verdict.get('problems')}; "
                           "writes stay held, the node is being stopped, both directories are kept "
                           "(runbooks/restore-from-backup.md)")
    return {"Collections": str(verdict.get("collections")), "Records": str(verdict.get("records"))}
