from __future__ import annotations

import pytest

from gateway.operations import classify

COLLECTIONS = "/api/v2/tenants/acme/databases/prod/collections"


@pytest.mark.parametrize("method,path,operation", [
    ("POST", f"{COLLECTIONS}/c1/query", "query"),
    ("POST", f"{COLLECTIONS}/c1/add", "add"),
    ("POST", f"{COLLECTIONS}/c1/upsert", "upsert"),
    ("POST", f"{COLLECTIONS}/c1/update", "update"),
    ("POST", f"{COLLECTIONS}/c1/get", "get"),
    ("POST", f"{COLLECTIONS}/c1/delete", "delete"),
    ("GET", f"{COLLECTIONS}/c1/count", "count"),
    ("POST", COLLECTIONS, "collection_create"),
    ("GET", COLLECTIONS, "collection_list"),
    ("GET", f"{COLLECTIONS}/c1", "collection_get"),
    ("PUT", f"{COLLECTIONS}/c1", "collection_update"),
    ("DELETE", f"{COLLECTIONS}/c1", "collection_delete"),
    ("GET", "/api/v2/heartbeat", "other"),
    ("GET", "/api/v2/tenants/acme", "other"),
    ("POST", f"{COLLECTIONS}/c1/fork", "other"),
    ("GET", "/api/v1/collections", "other"),
])
def test_operations(method: str, path: str, operation: str) -> None:
    assert classify(method, path)[1] == operation


def test_route_templates_hide_names_and_unknown_segments() -> None:
    assert classify("POST", f"{COLLECTIONS}/my-secret-collection/query")[0] == \
        "/api/v2/tenants/{tenant}/databases/{database}/collections/{collection}/query"
    assert classify("GET", "/api/v2/heartbeat")[0] == "/api/v2/heartbeat"
    assert classify("GET", "/wp-admin/../etc/passwd")[0] == "/*/*/*/*"
    assert classify("GET", "/")[0] == "/"
