"""Reuse the real-server fixtures of the gateway tests: a `chroma run` server, gateways on loopback, moto as S3."""

from gateway.tests.conftest import aws_env, chroma, moto_server, s3, start_gateway  # noqa: F401 - found by name
