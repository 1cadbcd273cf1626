"""The real servers of the gateway tests: a `chroma run`, gateways on loopback, moto as a server."""

from gateway.tests.conftest import aws_env, chroma, moto_server, start_gateway  # noqa: F401 - found by name
