"""An example environment with three nodes: the test fixture of scale-out by tenant (issue #14).

The shipped environments keep one node; this one is synthesized by tests only (tests/test_nodes.py), so every
multi-node mechanism (routing rules, one service, file system and writer lock per node, per-node alarms) is proven
on a template that passes cdk-nag and cfn-lint.
"""

from __future__ import annotations

from dataclasses import replace

from cdk_app.config import PRIMARY_NODE, NodeConfig, TaskConfig, VectorBudget
from cdk_app.environments import STAGING

THREE_NODES = replace(
    STAGING,
    name="scale",
    nodes=(
        # The primary keeps everything unplaced; listing a tenant here only makes the node create it at start.
        NodeConfig(PRIMARY_NODE, tenants=("acme",)),
        # Three tenants: two routing rules (two tenants per rule).
        NodeConfig("search", tenants=("globex", "initech", "umbrella"),
                   budget=VectorBudget(vectors=500_000, dim=768)),
        # A bigger task of its own, sized for its budget.
        NodeConfig("archive", tenants=("hooli",), task=TaskConfig(cpu=4096, memory_mib=24576),
                   budget=VectorBudget(vectors=5_000_000, dim=768, metadata_bytes_per_vector=200)),
    ),
)
