"""A small JSON document in S3 that the gateway polls (recovery-point requests, tenant-move controls): read with a
conditional GET, so an unchanged document costs a 304 and no body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

UNCHANGED_OR_MISSING = ("304", "NotModified", "NoSuchKey", "404")


def read_if_changed(client: S3Client, bucket: str, key: str, etag: str | None) -> tuple[bytes | None, str | None]:
    """(body, its ETag) if the object changed since `etag`; (None, `etag`) if it did not or does not exist."""
    arguments: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if etag:
        arguments["IfNoneMatch"] = etag
    try:
        answer = client.get_object(**arguments)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code", "") in UNCHANGED_OR_MISSING:
            return None, etag
        raise
    return answer["Body"].read(), answer.get("ETag")
