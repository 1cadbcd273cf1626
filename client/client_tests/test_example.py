"""examples/ingest_and_query.py runs against the real gateway and Chroma, and answers with the right documents."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.local import Server
from gateway.tests.conftest import TOKEN, GatewayFactory

pytestmark = pytest.mark.servers
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ingest_and_query.py"


def test_the_example_application_ingests_and_answers(chroma: Server, start_gateway: GatewayFactory) -> None:
    gateway = start_gateway(chroma.url)
    for _ in range(2):  # a second run upserts the same documents: same answers, nothing duplicated
        result = subprocess.run([sys.executable, str(EXAMPLE), "--endpoint", gateway.url], capture_output=True,
                                text=True, check=False, timeout=120, env={**os.environ, "CHROMA_TOKEN": TOKEN})
        assert result.returncode == 0, result.stderr[-2000:]
        lines = result.stdout.splitlines()
        assert lines[0].startswith("is every backup a quiesced copy? -> backup: ")
        assert lines[1].startswith("what checks every request's token? -> gateway: ")
