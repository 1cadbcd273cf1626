"""Tenant placement, the node's own guard (issue #14): a request for a tenant placed on another node is refused with
421 and never reaches Chroma here, however it is spelled (%XX) and whether it names the tenant in its path or, to
create it, in its body. The real gateway and a real `chroma run` on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.local import Server, chroma_server
from gateway.settings import Settings, SettingsError
from gateway.tests.conftest import TOKEN, GatewayFactory
from gateway.tests.test_proxy import _wait_for as wait_for
from gateway.tests.test_proxy import raw

pytestmark = pytest.mark.servers
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def status(gateway: Server, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, str]:
    code, _, payload = raw(gateway.port, method, path, AUTH, json.dumps(body).encode() if body else None)
    return code, json.loads(payload).get("error", "") if payload.startswith(b"{") else ""


def test_the_default_node_refuses_the_tenants_placed_elsewhere_and_serves_the_rest(
        chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url, tenants_elsewhere="initech,globex")
    for path in ("/api/v2/tenants/initech", "/api/v2/tenants/initech/databases/main/collections",
                 "/api/v2/tenants/ini%74ech/databases", "/api/v2/tenants/globex"):
        assert status(gateway, "GET", path) == (421, "MisdirectedRequest"), path
    assert status(gateway, "POST", "/api/v2/tenants", {"name": "initech"}) == (421, "MisdirectedRequest")
    assert status(gateway, "GET", "/api/v2/tenants/default_tenant")[0] == 200
    assert status(gateway, "POST", "/api/v2/tenants", {"name": "umbrella"})[0] == 200  # not placed: here
    assert status(gateway, "GET", "/api/v2/tenants/Initech")[0] == 404  # another tenant to Chroma and the rules
    assert status(gateway, "GET", "/api/v2/heartbeat")[0] == 200
    assert status(gateway, "GET", "/api/v2/tenants/initech") == (421, "MisdirectedRequest")  # nothing was created


def test_another_node_serves_only_its_tenants(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url, node_tenants="acme", default_node="false")
    assert status(gateway, "GET", "/api/v2/tenants/acme")[0] == 200  # the node created it at start
    assert status(gateway, "POST", "/api/v2/tenants", {"name": "acme"})[0] == 409  # reaches Chroma: it exists
    assert status(gateway, "POST", "/api/v2/tenants/acme/databases", {"name": "main"})[0] == 200
    for path in ("/api/v2/tenants/default_tenant", "/api/v2/tenants/default_tenant/databases/default_database"
                 "/collections", "/api/v2/tenants/ac%6Dex"):
        assert status(gateway, "GET", path) == (421, "MisdirectedRequest"), path
    assert status(gateway, "POST", "/api/v2/tenants", {"name": "globex"}) == (421, "MisdirectedRequest")
    assert status(gateway, "POST", "/api/v2/tenants", {}) == (421, "MisdirectedRequest")
    assert status(gateway, "GET", "/api/v2/tenants/ac%6De")[0] == 200  # %XX decoded as Chroma decodes it
    assert status(gateway, "GET", "/api/v2/heartbeat")[0] == 200 and status(gateway, "GET", "/api/v2/version")[0] == 200


def test_placement_settings_are_checked() -> None:
    base = {"GATEWAY_UPSTREAM_URL": "http://127.0.0.1:8000", "GATEWAY_TOKENS": "t"}
    with pytest.raises(SettingsError, match=r"\['a b'\] are not tenant names a load balancer rule can match"):
        Settings.from_env({**base, "GATEWAY_NODE_TENANTS": "acme,a b"})
    with pytest.raises(SettingsError, match=r"tenants \['acme'\] are in both"):
        Settings.from_env({**base, "GATEWAY_NODE_TENANTS": "acme", "GATEWAY_TENANTS_ELSEWHERE": "acme"})
    with pytest.raises(SettingsError, match="GATEWAY_DEFAULT_NODE=false needs the node's tenants"):
        Settings.from_env({**base, "GATEWAY_DEFAULT_NODE": "false"})
    with pytest.raises(SettingsError, match="GATEWAY_DEFAULT_NODE = 'no': use true or false"):
        Settings.from_env({**base, "GATEWAY_DEFAULT_NODE": "no"})
    assert Settings.from_env(base).default_node is True


def test_a_node_creates_its_tenants_at_start_once(tmp_path: Path, start_gateway: GatewayFactory) -> None:
    with chroma_server(tmp_path / "data") as chroma:
        first = start_gateway(chroma.url, node_tenants="acme,initech", default_node="false")  # ready: they exist
        for tenant in ("acme", "initech"):
            assert status(first, "GET", f"/api/v2/tenants/{tenant}/databases/default_database")[0] == 200
        wait_for(lambda: '"tenants_ready"' in first.log(), timeout=10)
        created = '"tenants_created": ["acme", "acme/default_database", "initech", "initech/default_database"]'
        assert created in first.log()
        first.stop()
        again = start_gateway(chroma.url, node_tenants="acme,initech", default_node="false")
        wait_for(lambda: '"tenants_ready"' in again.log(), timeout=10)
        assert '"tenants_created": []' in again.log()
