"""chroma-ops capacity --tenant NAME=VECTORS:DIM ...: place tenants on nodes of one task size (issue #14).

Each tenant's index must fit in its node's memory beside the others' (the capacity model, ops/capacity.py): tenants
are placed largest first, each on the first node with room (first-fit decreasing), and a tenant no node holds is
refused by name. The result is the `nodes=` of an EnvironmentConfig.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cdk_app.config import PRIMARY_NODE
from gateway.settings import TENANT_NAME
from ops import capacity
from ops.errors import UsageError

_LOAD = re.compile(r"^(?P<name>[^=]+)=(?P<vectors>\d+):(?P<dim>\d+)(:(?P<metadata>\d+))?$")


@dataclass(frozen=True)
class TenantLoad:
    name: str
    vectors: int
    dim: int
    metadata_bytes: int = 0

    @property
    def ram_bytes(self) -> float:
        """What the tenant adds to a node's memory (its indexes; the process baseline is the node's)."""
        model = capacity.DEFAULT_MODEL
        return capacity.estimate(self.vectors, self.dim, metadata_bytes=self.metadata_bytes).ram_bytes \
            - model.baseline_bytes


@dataclass
class PlacedNode:
    name: str
    tenants: list[TenantLoad] = field(default_factory=list)

    @property
    def ram_bytes(self) -> float:
        return sum(t.ram_bytes for t in self.tenants)


def parse(text: str) -> TenantLoad:
    match = _LOAD.match(text)
    if not match:
        raise UsageError(f"--tenant {text!r}: use NAME=VECTORS:DIM or NAME=VECTORS:DIM:METADATA_BYTES")
    load = TenantLoad(match["name"], int(match["vectors"]), int(match["dim"]), int(match["metadata"] or 0))
    if not TENANT_NAME.match(load.name):
        raise UsageError(f"--tenant {text!r}: a tenant name is 3-63 letters, digits, '.', '_' or '-'")
    capacity.validate(load.vectors, load.dim, 16)
    return load


def place(tenants: list[TenantLoad], memory_mib: int, headroom: float = 0.25) -> list[PlacedNode]:
    """The fewest nodes of `memory_mib` this greedy packing finds; the first is the primary."""
    room = capacity.usable_ram_bytes(memory_mib, headroom) - capacity.DEFAULT_MODEL.baseline_bytes
    names = [t.name for t in tenants]
    if duplicates := sorted({n for n in names if names.count(n) > 1}):
        raise UsageError(f"--tenant {', '.join(duplicates)}: each tenant once")
    nodes: list[PlacedNode] = []
    for tenant in sorted(tenants, key=lambda t: (-t.ram_bytes, t.name)):
        if tenant.ram_bytes > room:
            needed = capacity.estimate(tenant.vectors, tenant.dim, metadata_bytes=tenant.metadata_bytes)
            raise UsageError(f"tenant {tenant.name!r} ({tenant.vectors:,} x {tenant.dim}) needs a task of "
                             f"{needed.required_task_mib:,} MiB alone; nodes of {memory_mib:,} MiB cannot hold it "
                             "(a bigger --node-memory-mib, or split the tenant into several)")
        node = next((n for n in nodes if n.ram_bytes + tenant.ram_bytes <= room), None)
        if node is None:
            node = PlacedNode(PRIMARY_NODE if not nodes else f"node{len(nodes) + 1}")
            nodes.append(node)
        node.tenants.append(tenant)
    return nodes


def fill_percent(node: PlacedNode, memory_mib: int, headroom: float = 0.25) -> float:
    room = capacity.usable_ram_bytes(memory_mib, headroom) - capacity.DEFAULT_MODEL.baseline_bytes
    return 100 * node.ram_bytes / room


def budget(node: PlacedNode) -> tuple[int, int]:
    """The node's VectorBudget (vectors, dim): its tenants' vectors, counted at the widest dimension they use."""
    dim = max(t.dim for t in node.tenants)
    total = sum(t.vectors * capacity.record_ram_bytes(t.dim, metadata_bytes=t.metadata_bytes) for t in node.tenants)
    return -int(-total // capacity.record_ram_bytes(dim)), dim


def smallest_cpu(memory_mib: int) -> int:
    from cdk_app.validation import FARGATE_SIZES

    fitting = [cpu for cpu, memories in sorted(FARGATE_SIZES.items()) if cpu >= 1024 and memory_mib in memories]
    if not fitting:
        raise UsageError(f"--node-memory-mib {memory_mib}: not a Fargate memory size of 1 vCPU or more")
    return fitting[0]


def config_snippet(nodes: list[PlacedNode], memory_mib: int) -> str:
    cpu = smallest_cpu(memory_mib)
    lines = ["nodes=("]
    for node in nodes:
        tenants = ", ".join(repr(t.name) for t in node.tenants)
        vectors, dim = budget(node)
        lines.append(f"    NodeConfig({node.name!r}, tenants=({tenants},), task=TaskConfig(cpu={cpu}, "
                     f"memory_mib={memory_mib}), budget=VectorBudget(vectors={vectors}, dim={dim})),")
    lines.append(")")
    return "\n".join(lines)
