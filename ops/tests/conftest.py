"""Reuse the real-server fixtures of the gateway tests: a `chroma run` server and gateways on loopback."""

from gateway.tests.conftest import chroma, start_gateway  # noqa: F401 - pytest discovers fixtures by name
