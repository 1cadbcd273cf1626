"""A node creates the tenants placed on it when it starts (issue #14): each with Chroma's default database, so a
client that connects with `tenant=<name>` finds both. Idempotent: what exists is left as it is. Tenants are created
by the node that owns them, never through the load balancer (a creation names its tenant in the body, which the
load balancer cannot route by; the other nodes refuse it, see haproxy_config._placement)."""

from __future__ import annotations

import urllib.parse

from gateway.chroma_api import ChromaApi, ChromaError

DEFAULT_DATABASE = "default_database"
EXISTS = 409


def _create(api: ChromaApi, path: str, name: str) -> bool:
    """True if created now, False if it existed."""
    try:
        api.call("POST", path, {"name": name})
    except ChromaError as error:
        if error.status == EXISTS:
            return False
        raise
    return True


def ensure(api: ChromaApi, tenants: tuple[str, ...]) -> list[str]:
    """Create every tenant (and its default database) that does not exist yet; returns what was created."""
    created = []
    for tenant in tenants:
        if _create(api, "/tenants", tenant):
            created.append(tenant)
        if _create(api, f"/tenants/{urllib.parse.quote(tenant, safe='')}/databases", DEFAULT_DATABASE):
            created.append(f"{tenant}/{DEFAULT_DATABASE}")
    return created
