"""Maps a Chroma request to a route template and an operation name, for logs and metrics.

Templates never contain tenant, database or collection names or unknown segments, so they stay bounded.
"""

from __future__ import annotations

from functools import lru_cache

OTHER = "other"
RECORD_OPERATIONS = ("add", "upsert", "update", "delete", "get", "query", "count")
OPERATIONS = (*RECORD_OPERATIONS, "collection_create", "collection_get", "collection_list", "collection_update",
              "collection_delete", OTHER)

_PLACEHOLDERS = {"tenants": "{tenant}", "databases": "{database}", "collections": "{collection}"}
_KNOWN_SEGMENTS = frozenset({
    "api", "v1", "v2", "heartbeat", "version", "healthcheck", "pre-flight-checks", "reset", "auth", "identity",
    "collections_count", "fork", "search", "functions", "attached_functions", *_PLACEHOLDERS, *RECORD_OPERATIONS,
})
_COLLECTION_METHODS = {"GET": "collection_get", "DELETE": "collection_delete", "PUT": "collection_update"}


@lru_cache(maxsize=4096)
def classify(method: str, path: str) -> tuple[str, str]:
    """(route template, operation) of a request path without its query string."""
    parts = [part for part in path.split("/") if part]
    return _template(parts), _operation(method, parts)


def _template(parts: list[str]) -> str:
    out: list[str] = []
    placeholder: str | None = None
    for part in parts:
        if placeholder is not None:
            out.append(placeholder)
            placeholder = None
            continue
        out.append(part if part in _KNOWN_SEGMENTS else "*")
        placeholder = _PLACEHOLDERS.get(part)
    return "/" + "/".join(out)


def _operation(method: str, parts: list[str]) -> str:
    # api/v2/tenants/{t}/databases/{d}/collections[/{c}[/op]]
    if parts[:3] != ["api", "v2", "tenants"] or len(parts) < 7 or parts[4] != "databases" or \
            parts[6] != "collections":
        return OTHER
    tail = parts[7:]
    if not tail:
        return {"GET": "collection_list", "POST": "collection_create"}.get(method, OTHER)
    if len(tail) == 1:
        return _COLLECTION_METHODS.get(method, OTHER)
    if len(tail) == 2 and tail[1] in RECORD_OPERATIONS:
        return tail[1]
    return OTHER
