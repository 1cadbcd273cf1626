"""Routing by tenant (issue #14): which listener rules send a tenant's requests to the node it is placed on, and
which send a request that names its node (header X-Chroma-Node, as chroma-ops move-tenant does) to that node.

Chroma's API names the tenant in the path (/api/v2/tenants/<tenant>/...), so the load balancer routes by path:
each rule matches at most TENANTS_PER_RULE tenants (two patterns each: the tenant itself and everything under it).
What no rule matches (the primary's tenants, unplaced tenants, requests naming no tenant) goes to the primary node.
The rules are case-sensitive and do not decode %XX; each node's gateway refuses what reaches the wrong node (421).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdk_app.config import PRIMARY_NODE, EnvironmentConfig
from cdk_app.validation import TENANTS_PER_RULE

TENANTS_PATH = "/api/v2/tenants"
# Rule priorities: the node-addressed rules first (1, 2, ...: a node's position in config.nodes), then the tenant
# rules in a block per node, so adding a tenant to one node renumbers none of another node's rules.
PRIORITY_BLOCK = 1000


def tenant_patterns(tenant: str) -> tuple[str, str]:
    return f"{TENANTS_PATH}/{tenant}", f"{TENANTS_PATH}/{tenant}/*"


@dataclass(frozen=True)
class RoutingRule:
    node: str
    index: int  # within the node
    priority: int
    tenants: tuple[str, ...]

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(pattern for tenant in self.tenants for pattern in tenant_patterns(tenant))


@dataclass(frozen=True)
class NodeRule:
    node: str
    priority: int


def node_rules(config: EnvironmentConfig) -> list[NodeRule]:
    """`X-Chroma-Node: <node>` reaches that node (only with several nodes: one node needs no addressing)."""
    if len(config.nodes) == 1:
        return []
    return [NodeRule(node.name, position) for position, node in enumerate(config.nodes, start=1)]


def routing_rules(config: EnvironmentConfig) -> list[RoutingRule]:
    rules = []
    for position, node in enumerate(config.nodes, start=1):
        if node.name == PRIMARY_NODE:
            continue  # the listener's default action
        for index in range(0, len(node.tenants), TENANTS_PER_RULE):
            chunk = node.tenants[index:index + TENANTS_PER_RULE]
            number = index // TENANTS_PER_RULE
            rules.append(RoutingRule(node.name, number, position * PRIORITY_BLOCK + number, chunk))
    return rules
