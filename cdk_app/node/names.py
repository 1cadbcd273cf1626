"""How a node's resources are named. The primary node keeps every name and logical id it had before nodes existed
(so an existing environment deploys with nothing replaced); every other node gets its own, derived from its name."""

from __future__ import annotations

from dataclasses import dataclass

from cdk_app.config import PRIMARY_NODE
from cdk_app.constants import EFS_ACCESS_POINT_ROOT, NODES_ROOT

# The primary node's stateful resources, as first deployed: never change these.
PRIMARY_LOGICAL_IDS = {
    "FileSystem": "ChromaFileSystem",
    "AccessPoint": "ChromaPrimaryNodeAccessPoint",
    "RecoveryPointsAccessPoint": "ChromaRecoveryPointsAccessPoint",
    "RestoreAccessPoint": "ChromaRestoreAccessPoint",
    "Service": "ChromaServiceA3FE004D",
    "Task": "ChromaTask6B15C82C",
}


def pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


@dataclass(frozen=True)
class NodeNames:
    node: str

    @property
    def is_primary(self) -> bool:
        return self.node == PRIMARY_NODE

    def construct_id(self, base: str) -> str:
        return base if self.is_primary else f"{base}{pascal(self.node)}"

    def logical_id(self, kind: str) -> str:
        """The pinned logical id of the node's stateful resource `kind` (a key of PRIMARY_LOGICAL_IDS)."""
        return PRIMARY_LOGICAL_IDS[kind] if self.is_primary else f"Node{pascal(self.node)}{kind}"

    def qualified(self, name: str) -> str:
        """An environment-unique name (alarm id, log group purpose, function service) for the node's `name`."""
        return name if self.is_primary else f"{self.node}-{name}"

    @property
    def of_node(self) -> str:
        """Appended to a description: nothing for the primary (its descriptions are unchanged), else the node."""
        return "" if self.is_primary else f" (node {self.node})"

    @property
    def data_path(self) -> str:
        """The node's directory on its file system."""
        return EFS_ACCESS_POINT_ROOT if self.is_primary else f"{NODES_ROOT}/{self.node}"

    def parameter(self, name: str) -> str:
        """The SSM parameter (under /chroma/<env>/) publishing the node's `name`."""
        return name if self.is_primary else f"nodes/{self.node}/{name}"
