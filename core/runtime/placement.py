"""Where a detector runs: in this process (``Detector.node is None``) or on a cluster node.

Declared here, beside the Detector, so every detector carries its placement and nothing needs to probe
attributes or import the cluster to tell a remote variant from a local one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    names: tuple[str, ...]  # its custom resources: what a variant names it by
    cpus: float
    memory_gb: float
    gpus: float
    head: bool

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.ip

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "node_id": self.node_id,
            "ip": self.ip,
            "names": list(self.names),
            "cpus": self.cpus,
            "memory_gb": round(self.memory_gb, 1),
            "gpus": self.gpus,
            "head": self.head,
        }
