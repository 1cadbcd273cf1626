"""Fixtures shared by every test directory: the synthesized app (once per session) and JSON snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import SynthesizedApp, synthesize

# Tests that use these fixtures are marked for them, so `make test-fast` (-m "not synth and not servers") can skip
# them without anyone remembering a marker; tests that synthesize or start servers by other means are marked by hand.
_MARKS_BY_FIXTURE = {
    "synthesized": "synth", "three_nodes": "synth",
    "chroma": "servers", "start_gateway": "servers", "moto_server": "servers", "aws_env": "servers",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in set(getattr(item, "fixturenames", ())) & _MARKS_BY_FIXTURE.keys():
            item.add_marker(_MARKS_BY_FIXTURE[fixture])


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """Every environment, synthesized once with cdk-nag on (synth raises on any unacknowledged finding)."""
    outdir: Path = tmp_path_factory.mktemp("cdk.out")
    return synthesize(ENVIRONMENTS, outdir)


@pytest.fixture(scope="session")
def three_nodes(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The three-node example environment (tests/three_nodes.py), synthesized with cdk-nag on."""
    from tests.three_nodes import THREE_NODES

    return synthesize({THREE_NODES.name: THREE_NODES}, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)
