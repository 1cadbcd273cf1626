"""The client's parts on their own: retry decisions, backoff, batch ranges, discovery (moto), the token source."""

from __future__ import annotations

import itertools
import random
from email.utils import formatdate
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cdk_app.constants import SSM_ENDPOINT_URL, SSM_PREVIOUS_TOKEN_GRACE_SECONDS, SSM_TOKEN_SECRET_ARN
from chroma_on_aws_client import batching, discovery
from chroma_on_aws_client.api import operation_of
from chroma_on_aws_client.retry import RetryPolicy, idempotent, is_add, retry_after_seconds
from chroma_on_aws_client.tokens import SecretsManagerToken

SCOPE = "/tenants/t/databases/d/collections/c"


def test_what_is_idempotent() -> None:
    for operation in ("get", "query", "count", "search", "upsert", "update", "delete"):
        assert idempotent("POST", f"{SCOPE}/{operation}"), operation
    assert idempotent("GET", f"{SCOPE}/count") and idempotent("GET", "/heartbeat")
    assert not idempotent("POST", f"{SCOPE}/add") and is_add("POST", f"{SCOPE}/add")
    assert not idempotent("POST", "/tenants/t/databases/d/collections")  # create collection
    assert not idempotent("DELETE", SCOPE)  # delete collection


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    policy, rng = RetryPolicy(first_delay_seconds=0.2, max_delay_seconds=5.0), random.Random(7)  # noqa: S311 - jitter
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 12)]
    assert all(0 <= d <= min(5.0, 0.2 * 2 ** i) for i, d in enumerate(delays))
    assert policy.delay(3, 2.0, rng) == 2.0 and policy.delay(1, 999.0, rng) == 20.0
    assert retry_after_seconds("2") == 2.0 and retry_after_seconds(None) is None
    now = 1_795_644_000.0
    assert retry_after_seconds(formatdate(now + 5, usegmt=True), now=now) == 5.0
    assert retry_after_seconds("soon") is None


def test_batches_respect_both_the_record_and_the_byte_limit() -> None:
    ids = [f"id-{i}" for i in range(10)]
    embeddings = [[0.5] * 100 for _ in ids]
    batch = (ids, embeddings, None, None, None)
    assert batching.ranges(batch, 4, 10**9, batching.json_bytes) == [(0, 4), (4, 8), (8, 10)]
    one = batching.json_bytes(batching.slice_batch(batch, 0, 1))
    small = batching.ranges(batch, 100, 3 * one, batching.json_bytes)
    assert all(batching.json_bytes(batching.slice_batch(batch, s, e)) <= 3 * one for s, e in small)
    assert small[0][0] == 0 and all(a[1] == b[0] for a, b in itertools.pairwise(small))
    assert small[-1][1] == 10 and len(small) < 10
    assert batching.ranges(batch, 100, 1, batching.json_bytes) == [(i, i + 1) for i in range(10)]  # the server says


def test_operations_are_named_for_the_hook() -> None:
    assert operation_of("POST", f"{SCOPE}/query") == "query"
    assert operation_of("GET", "/tenants/t/databases/d/collections/docs") == "get collections"
    assert operation_of("POST", "/tenants/t/databases/d/collections") == "post collections"


def test_the_node_header_is_the_gateways_and_a_misdirected_request_is_retried() -> None:
    from chroma_on_aws_client.api import NODE_HEADER
    from chroma_on_aws_client.retry import NOT_PROCESSED
    from gateway.settings import NODE_HEADER as GATEWAY_NODE_HEADER

    assert NODE_HEADER == GATEWAY_NODE_HEADER
    assert 421 in NOT_PROCESSED  # the node refused it: it never reached Chroma


def test_the_parameter_names_are_the_cdk_apps() -> None:
    assert (discovery.ENDPOINT_URL, discovery.TOKEN_SECRET_ARN, discovery.PREVIOUS_TOKEN_GRACE_SECONDS) == (
        SSM_ENDPOINT_URL, SSM_TOKEN_SECRET_ARN, SSM_PREVIOUS_TOKEN_GRACE_SECONDS)


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield {name: boto3.client(name, region_name="us-east-1") for name in ("ssm", "cloudformation",
                                                                             "secretsmanager")}


def test_discovery_reads_ssm_and_derives_the_refresh_from_the_grace(aws: Any) -> None:
    for name, value in {"endpoint-url": "https://chroma.example.com", "token-secret-arn": "arn:secret",
                        "previous-token-grace-seconds": "3600"}.items():
        aws["ssm"].put_parameter(Name=f"/chroma/prod/{name}", Value=value, Type="String")
    found = discovery.discover("prod", aws["ssm"], aws["cloudformation"])
    assert (found.url, found.secret_id, found.token_refresh_seconds) == ("https://chroma.example.com",
                                                                         "arn:secret", 300.0)
    assert discovery.Environment("u", "s", 20.0, "x").token_refresh_seconds == 15.0  # never more often than 15 s
    assert discovery.Environment("u", "s", None, "x").token_refresh_seconds == 60.0
    with pytest.raises(discovery.DiscoveryError, match="environment 'dev': neither SSM parameters /chroma/dev/"):
        discovery.discover("dev", aws["ssm"], aws["cloudformation"])


def test_the_token_is_read_on_schedule_and_a_failed_read_keeps_the_last_one(aws: Any) -> None:
    arn = aws["secretsmanager"].create_secret(Name="t", SecretString="one")["ARN"]
    now = [0.0]
    tokens = SecretsManagerToken(aws["secretsmanager"], arn, refresh_seconds=60, clock=lambda: now[0])
    aws["secretsmanager"].put_secret_value(SecretId=arn, SecretString="two")
    now[0] = 59.0
    assert tokens.token() == "one"
    now[0] = 60.0
    assert tokens.token() == "two"
    aws["secretsmanager"].delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    now[0] = 121.0
    assert tokens.token() == "two"  # Secrets Manager failing: the last token serves until it can be read again
