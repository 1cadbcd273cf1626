"""Snapshots of every stack of every environment. Review a snapshot diff like code: it is the deployed change."""

from __future__ import annotations

import json

import pytest
from syrupy.assertion import SnapshotAssertion

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import STACK_IDS, SynthesizedApp, normalized


@pytest.mark.parametrize("stack_id", STACK_IDS)
@pytest.mark.parametrize("environment", list(ENVIRONMENTS))
def test_template_matches_snapshot(synthesized: SynthesizedApp, snapshot_json: SnapshotAssertion,
                                   environment: str, stack_id: str) -> None:
    assert normalized(synthesized.template_json(environment, stack_id)) == snapshot_json


def test_snapshots_do_not_depend_on_asset_contents(synthesized: SynthesizedApp) -> None:
    raw = json.dumps(synthesized.template_json("prod", "Compute"))
    assert "cdk-hnb659fds-container-assets" in raw  # the images are assets, addressed by content hash...
    text = json.dumps(normalized(synthesized.template_json("prod", "Compute")))
    assert text.count("ASSET_HASH") >= 2  # ...which the snapshot replaces, for the Chroma and gateway images
    assert "BootstrapVersion" not in text
