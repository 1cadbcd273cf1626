"""chroma-ops capacity --tenant: tenants placed on the fewest nodes (first-fit decreasing) whose config passes synth
validation, and a tenant no node holds refused by name."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cdk_app.config import NodeConfig, TaskConfig, VectorBudget
from cdk_app.environments import PROD
from ops import capacity, placement
from ops.errors import UsageError

LOADS = [placement.parse(text) for text in ("acme=3000000:768", "globex=1000000:1536", "initech=200000:384",
                                            "hooli=4000000:768", "umbrella=50000:768:400")]


def test_tenants_are_placed_largest_first_on_the_first_node_with_room() -> None:
    nodes = placement.place(LOADS, 32768)
    assert [[t.name for t in n.tenants] for n in nodes] == [["hooli", "acme", "initech", "umbrella"], ["globex"]]
    room = capacity.usable_ram_bytes(32768) - capacity.DEFAULT_MODEL.baseline_bytes
    assert all(n.ram_bytes <= room for n in nodes)
    # globex does not fit beside the first node's tenants: that is why it has a node of its own.
    assert nodes[0].ram_bytes + nodes[1].ram_bytes > room
    assert nodes[0].name == "primary"


def test_the_placement_is_a_config_that_passes_synth_validation() -> None:
    nodes = placement.place(LOADS, 32768)
    config = replace(PROD, nodes=tuple(
        NodeConfig(n.name, tenants=tuple(t.name for t in n.tenants), task=TaskConfig(cpu=8192, memory_mib=32768),
                   budget=VectorBudget(*placement.budget(n))) for n in nodes))
    assert config.tenant_placement["globex"] == "node2"
    assert "VectorBudget(vectors=1000000, dim=1536)" in placement.config_snippet(nodes, 32768)


def test_a_tenant_no_node_holds_and_bad_input_are_refused_by_name() -> None:
    with pytest.raises(UsageError, match=r"tenant 'huge' .* needs a task of .* MiB alone; nodes of 8,192 MiB"):
        placement.place([placement.parse("huge=5000000:768")], 8192)
    with pytest.raises(UsageError, match="use NAME=VECTORS:DIM"):
        placement.parse("acme:5")
    with pytest.raises(UsageError, match="a tenant name is 3-63"):
        placement.parse("a b=5:5")
    with pytest.raises(UsageError, match="--tenant acme: each tenant once"):
        placement.place([LOADS[0], LOADS[0]], 32768)
    with pytest.raises(UsageError, match="not a Fargate memory size"):
        placement.smallest_cpu(3000)
