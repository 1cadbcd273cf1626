"""A tenant on the move (issue #14, gateway.tenant_moves): the node holds its writes (503 WritesPaused, reads go
on) or accepts it though it is placed elsewhere, as the control document in S3 says, answers once applied, and a
restarted gateway applies the document before it serves a request. Real gateway, real Chroma, moto as S3."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from gateway.local import Server
from gateway.settings import NODE_HEADER
from gateway.tenant_moves import MoveControl, answer_key, control_body, control_key
from gateway.tests.conftest import GatewayFactory
from gateway.tests.test_placement import AUTH, status
from gateway.tests.test_proxy import _wait_for as wait_for
from gateway.tests.test_proxy import raw

pytestmark = pytest.mark.servers
PREFIX = "nodes/primary"


@pytest.fixture
def bucket(aws_env: dict[str, str]) -> str:
    name = f"moves-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def control(bucket: str, move: MoveControl, timeout: float = 15.0) -> dict[str, Any]:
    """Write the node's control document and wait for its answer."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=control_key(PREFIX), Body=control_body(move))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            answer: dict[str, Any] = json.loads(
                s3.get_object(Bucket=bucket, Key=answer_key(PREFIX, move.control_id))["Body"].read())
            return answer
        except s3.exceptions.NoSuchKey:
            time.sleep(0.1)
    raise AssertionError(f"no answer to {move.control_id}")


def gateway_for(start_gateway: GatewayFactory, chroma: Server, bucket: str, aws_env: dict[str, str],
                **settings: str) -> Server:
    return start_gateway(chroma.url, snapshot_bucket=bucket, snapshot_prefix=PREFIX, snapshot_poll_seconds="0.1",
                         **aws_env, **settings)


def test_a_held_tenant_keeps_its_reads_and_loses_only_its_writes(chroma: Server, start_gateway: GatewayFactory,
                                                                 bucket: str, aws_env: dict[str, str]) -> None:
    gateway = gateway_for(start_gateway, chroma, bucket, aws_env)
    tenant = f"held-{uuid.uuid4().hex[:6]}"
    assert status(gateway, "POST", "/api/v2/tenants", {"name": tenant})[0] == 200
    assert status(gateway, "POST", f"/api/v2/tenants/{tenant}/databases", {"name": "main"})[0] == 200
    answer = control(bucket, MoveControl("hold-1", held=(tenant,)))
    started_at = answer.pop("started_at")
    assert answer == {"status": "ok", "node": "primary", "held": [tenant], "incoming": [], "writes_in_flight": 0,
                      "placement": {"here": [], "elsewhere": [], "default": True}}
    code, headers, body = raw(gateway.port, "POST", f"/api/v2/tenants/{tenant}/databases", AUTH,
                              json.dumps({"name": "other"}).encode())
    assert (code, json.loads(body)["error"]) == (503, "WritesPaused") and headers["retry-after"] == "2"
    assert "moves to another node" in json.loads(body)["message"]
    assert status(gateway, "GET", f"/api/v2/tenants/{tenant}/databases/main")[0] == 200  # reads go on
    assert status(gateway, "POST", "/api/v2/tenants", {"name": f"free-{uuid.uuid4().hex[:6]}"})[0] == 200
    assert headers[NODE_HEADER.lower()] == "primary"

    # A restarted gateway holds the tenant from its first request.
    gateway.stop()
    restarted = gateway_for(start_gateway, chroma, bucket, aws_env)
    assert status(restarted, "POST", f"/api/v2/tenants/{tenant}/databases", {"name": "other"}) == (
        503, "WritesPaused")
    # ... and answers the document again, with its own start: a tool can see that the node restarted.
    s3 = boto3.client("s3")
    wait_for(lambda: json.loads(s3.get_object(Bucket=bucket, Key=answer_key(PREFIX, "hold-1"))["Body"].read())[
        "started_at"] > started_at)
    control(bucket, MoveControl("release-1"))
    assert status(restarted, "POST", f"/api/v2/tenants/{tenant}/databases", {"name": "other"})[0] == 200


def test_an_incoming_tenant_is_accepted_where_it_is_placed_elsewhere(
        chroma: Server, start_gateway: GatewayFactory, bucket: str, aws_env: dict[str, str]) -> None:
    tenant = f"incoming-{uuid.uuid4().hex[:6]}"
    gateway = gateway_for(start_gateway, chroma, bucket, aws_env, node="search", node_tenants="acme",
                          default_node="false", tenants_elsewhere=tenant)
    assert status(gateway, "POST", "/api/v2/tenants", {"name": tenant}) == (421, "MisdirectedRequest")
    control(bucket, MoveControl("in-1", incoming=(tenant,)))
    assert status(gateway, "POST", "/api/v2/tenants", {"name": tenant})[0] == 200
    assert status(gateway, "GET", f"/api/v2/tenants/{tenant}")[0] == 200
    assert status(gateway, "GET", "/api/v2/tenants/globex") == (421, "MisdirectedRequest")  # only that one
    _, headers, _ = raw(gateway.port, "GET", f"/api/v2/tenants/{tenant}", AUTH)
    assert headers[NODE_HEADER.lower()] == "search"
    control(bucket, MoveControl("in-2"))
    assert status(gateway, "GET", f"/api/v2/tenants/{tenant}") == (421, "MisdirectedRequest")


def test_a_malformed_control_document_changes_nothing(chroma: Server, start_gateway: GatewayFactory,
                                                      bucket: str, aws_env: dict[str, str]) -> None:
    gateway = gateway_for(start_gateway, chroma, bucket, aws_env)
    tenant = f"safe-{uuid.uuid4().hex[:6]}"
    control(bucket, MoveControl("hold-2", held=(tenant,)))
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key=control_key(PREFIX), Body=b'{"id": "bad", "held": "not-a-list"}')
    time.sleep(0.5)
    assert status(gateway, "POST", "/api/v2/tenants", {"name": tenant}) == (503, "WritesPaused")
    assert "tenant_moves_invalid" in gateway.log()


def test_a_moved_collection_answers_to_its_old_id(chroma: Server, start_gateway: GatewayFactory, bucket: str,
                                                  aws_env: dict[str, str]) -> None:
    gateway = gateway_for(start_gateway, chroma, bucket, aws_env)
    scope = "/api/v2/tenants/default_tenant/databases/default_database/collections"
    name = f"copy-{uuid.uuid4().hex[:6]}"
    code, _, body = raw(gateway.port, "POST", scope, AUTH, json.dumps({"name": name}).encode())
    assert code == 200
    copy_id, old_id = json.loads(body)["id"], str(uuid.uuid4())
    control(bucket, MoveControl("alias-1", aliases={old_id: copy_id}))
    record = {"ids": ["a"], "embeddings": [[1.0, 2.0]]}
    assert raw(gateway.port, "POST", f"{scope}/{old_id}/add", AUTH, json.dumps(record).encode())[0] == 201
    code, _, body = raw(gateway.port, "GET", f"{scope}/{old_id}/count?x=1", AUTH)
    assert (code, body) == (200, b"1")
    assert raw(gateway.port, "GET", f"{scope}/{uuid.uuid4()}/count", AUTH)[0] == 404  # no alias: as before
