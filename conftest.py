"""Fixtures shared by every test directory: the synthesized app (once per session) and JSON snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import SynthesizedApp, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """Every environment, synthesized once with cdk-nag on (synth raises on any unacknowledged finding)."""
    outdir: Path = tmp_path_factory.mktemp("cdk.out")
    return synthesize(ENVIRONMENTS, outdir)


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)
