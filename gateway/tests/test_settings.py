from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError

BASE = {"GATEWAY_UPSTREAM_URL": "http://127.0.0.1:8000", "GATEWAY_TOKENS": "a,b"}


def test_defaults_and_parsing() -> None:
    settings = Settings.from_env({**BASE, "GATEWAY_PORT": "9000", "GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "2.5"})
    assert settings.port == 9000 and settings.upstream_timeout_seconds == 2.5 and settings.tokens == ("a", "b")
    assert settings.max_body_bytes == 41_943_040 and settings.token_refresh_seconds <= 30
    # The proxy's memory ceiling holds its worst case: every connection with both sides' buffers full.
    assert settings.max_connections * 2 * 2 * 16 * 1024 < settings.memory_limit_mib * 1024 * 1024


@pytest.mark.parametrize("env,message", [
    ({"GATEWAY_TOKENS": "a"}, "GATEWAY_UPSTREAM_URL must be an http(s) URL"),
    ({**BASE, "GATEWAY_PORT": "eighty"}, "GATEWAY_PORT='eighty' is not an integer"),
    ({**BASE, "GATEWAY_PORT": "70000"}, "GATEWAY_PORT='70000' is out of range: use 1 to 65535"),
    ({**BASE, "GATEWAY_TOKEN_REFRESH_SECONDS": "60"}, "GATEWAY_TOKEN_REFRESH_SECONDS='60' is out of range"),
    ({"GATEWAY_UPSTREAM_URL": "http://x:1"}, "set exactly one token source"),
    ({**BASE, "GATEWAY_TOKEN_FILE": "/tmp/t"}, "set exactly one token source"),
    ({**BASE, "GATEWAY_MAX_CONNECTIONS": "0"}, "GATEWAY_MAX_CONNECTIONS='0' is out of range: use 1 to 100000"),
    ({**BASE, "GATEWAY_MEMORY_LIMIT_MIB": "8"}, "GATEWAY_MEMORY_LIMIT_MIB='8' is out of range: use 32 to 65536"),
    ({**BASE, "GATEWAY_HEADER_TIMEOUT_SECONDS": "soon"}, "GATEWAY_HEADER_TIMEOUT_SECONDS='soon' is not a number"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)
