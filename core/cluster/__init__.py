"""Run variants on other machines through a Ray cluster (opt-in: nothing here is imported without a cluster).

A node is named by a custom resource it was started with (``ray start --address HEAD:6379 --resources
'{"gpu-box": 1}'``), or by its IP address or node id; ``gpu-box/trt:fp16`` runs ``trt:fp16`` there. Each
remote variant is a Ray actor pinned to its node (``NodeAffinitySchedulingStrategy``, not soft: a variant
never quietly runs elsewhere). The file it runs from is built here (ONNX files are device independent) and
shipped once through the object store; engines are built on the node from it and cached there.

Timing: the node measures letterbox, inference and post-processing as a local run does; the time the
image and the result spend travelling (object store, actor call) is measured here as the call's wall time
minus the node's, and kept apart (:attr:`RemoteDetector.transfer_ms`), never added to the latency. A frame
for the only variant on its node travels inside the call; one that several variants on a node read is put
into the object store once, and they all read that copy (:meth:`Cluster.frames`).

- :mod:`.session`: the connection, its nodes and their doctors (:class:`Cluster`); registers with the model
  store how a ``NODE/...`` variant opens
- :mod:`.remote`: a variant on a node (:class:`RemoteDetector` here, an actor there)
- :mod:`.shard`: sharded evaluation over the nodes
"""

from __future__ import annotations

from core.cluster.remote import RemoteDetector
from core.cluster.session import (
    CONNECT_TIMEOUT_S,
    ENV_CLUSTER,
    Cluster,
    Node,
    connect,
    current,
    disconnect,
    probe,
    public_reason,
    ray_available,
)
from core.cluster.shard import sharded_collect

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
    "public_reason",
    "ray_available",
    "sharded_collect",
]
