"""The opt-in Ray cluster: connect, variants pinned to nodes (a RemoteDetector per variant), sharded eval."""

from __future__ import annotations

from core.cluster.nodes import (
    CONNECT_TIMEOUT_S,
    ENV_CLUSTER,
    Cluster,
    Node,
    RemoteDetector,
    connect,
    current,
    disconnect,
    probe,
    ray_available,
    sharded_collect,
)

__all__ = [
    "CONNECT_TIMEOUT_S",
    "ENV_CLUSTER",
    "Cluster",
    "Node",
    "RemoteDetector",
    "connect",
    "current",
    "disconnect",
    "probe",
    "ray_available",
    "sharded_collect",
]
