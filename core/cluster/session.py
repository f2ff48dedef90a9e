"""The connection to a Ray cluster (one per process): its nodes, their doctors, shipping files and frames to
them, and opening a variant on a node (:class:`Cluster`); :func:`connect`, :func:`current`, :func:`disconnect`."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import socket
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.cluster.remote import RemoteDetector, _DetectorActor, _first_line, _node_report, _Packed
from core.config import ENV_CLUSTER
from core.errors import InputError, RuntimeUnavailableError, Setting
from core.model import register_remote_opener
from core.runtime import Detector, Node

if TYPE_CHECKING:
    from core.model import ModelStore
    from core.runtime import BackendOptions
    from core.variants import Variant

CONNECT_TIMEOUT_S = 5.0
INLINE_BYTES = 2_000_000  # frames up to this size travel inside the actor call (see Cluster.frames)
ROOT = Path(__file__).resolve().parents[2]
_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}
_NOT_NAMES = ("node:", "accelerator_type")  # Ray's own resources, not names a user gave the node


def ray_available() -> str:
    """ "" when Ray can be imported, else why not (with the install command)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return "the cluster needs Ray: pip install -r requirements-cluster.txt"
    return ""


class Cluster:
    """A connection to a running Ray cluster (one per process)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self._shipped: dict[str, Any] = {}  # sha256 -> object ref of the file's bytes
        self._image: tuple[np.ndarray, Any] | None = None  # the last frame put, and its object ref
        self._readers: dict[str, int] = {}  # node id -> remote variants open there

    # -- nodes -----------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        import ray

        out = []
        for n in ray.nodes():
            if not n.get("Alive"):
                continue
            res = n.get("Resources", {})
            names = tuple(sorted(k for k in res if k not in _BUILTIN and not k.startswith(_NOT_NAMES)))
            out.append(
                Node(
                    n["NodeID"],
                    n.get("NodeManagerAddress", ""),
                    names,
                    float(res.get("CPU", 0)),
                    float(res.get("memory", 0)) / 2**30,
                    float(res.get("GPU", 0)),
                    "node:__internal_head__" in res,
                )
            )
        return out

    def node(self, name: str) -> Node:
        """The live node called ``name`` (custom resource, IP, or node id / a unique prefix of it)."""
        nodes = self.nodes()
        hits = [n for n in nodes if name in n.names or name == n.ip or n.node_id.startswith(name)]
        if len(hits) == 1:
            return hits[0]
        known = ", ".join(f"{n.name} ({n.ip})" for n in nodes) or "none"
        if not hits:
            raise InputError(f"no live cluster node is called {name!r}; nodes: {known}")
        raise InputError(f"{name!r} names {len(hits)} nodes ({known}): use a node id")

    def _pin(self, node: Node) -> dict[str, Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node.node_id, soft=False)}

    def doctor(self) -> list[dict[str, Any]]:
        """Each node's runtimes: which can run there and why not (the doctor, run on the node)."""
        import ray

        task = ray.remote(num_cpus=0)(_node_report)
        nodes = self.nodes()
        refs = [task.options(**self._pin(n)).remote() for n in nodes]
        handles = self.handles(nodes)
        here = ray.get_runtime_context().get_node_id()
        out = []
        for n, ref in zip(nodes, refs, strict=True):
            try:
                report = ray.get(ref, timeout=120)
            except Exception as exc:  # a node that cannot run our code: say so, keep the others
                report = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0], "runtimes": []}
            for r in report["runtimes"]:  # the doctor there speaks of "this machine": name it
                r["reason"] = r["reason"].replace("this machine", handles[n.node_id])
            out.append(n.to_dict() | {"handle": handles[n.node_id], "here": n.node_id == here} | report)
        return out

    @staticmethod
    def handles(nodes: Sequence[Node]) -> dict[str, str]:
        """node id -> the name a variant can place itself with (``HANDLE/ort:fp32``): the node's own name
        when no other node shares it and it is a valid variant prefix, else the start of its node id."""
        from core.variants import NODE_NAME

        count: dict[str, int] = {}
        for n in nodes:
            count[n.name] = count.get(n.name, 0) + 1
        return {n.node_id: n.name if count[n.name] == 1 and NODE_NAME.match(n.name) else n.node_id[:16] for n in nodes}

    # -- remote variants -------------------------------------------------------------------

    def released(self, node: Node) -> None:
        """A remote variant on ``node`` was closed: one reader fewer for :meth:`frames`."""
        if self._readers.get(node.node_id, 0) > 0:
            self._readers[node.node_id] -= 1

    def ship(self, path: Path) -> tuple[str, Any]:
        """``path``'s bytes in the object store, once per content: (sha256, object ref)."""
        import ray

        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha not in self._shipped:
            self._shipped[sha] = ray.put(data)
        return sha, self._shipped[sha]

    def frames(self, images: Sequence[np.ndarray], node: Node) -> Any:
        """What a call to an actor on ``node`` carries for ``images``.

        Measured with no-op calls on one machine with two nodes: a frame the other node fetches from the
        object store costs ~6.6 ms + 1.8 ms/MB; one inside the call as bytes 0.8 ms (tiny) to 1.2-2.0 ms
        (0.8-0.9 MB), but ~10 ms at 2.6 MB. So a frame of up to :data:`INLINE_BYTES` read by the only
        variant open on its node goes inline; a
        bigger one, or one that two or more variants on that node read, is put into the object store once
        and every actor there reads that one copy."""
        import ray

        size = sum(im.nbytes for im in images)
        if size <= INLINE_BYTES and self._readers.get(node.node_id, 0) <= 1:
            # as raw bytes: Ray serialises those with one copy less than an array (~0.4 ms per MB here)
            return [_Packed(im.tobytes(), im.shape, im.dtype.str) for im in images]
        if len(images) > 1:
            return ray.put(list(images))
        image = images[0]
        if self._image is None or self._image[0] is not image:  # the array itself is held: no stale id
            self._image = (image, ray.put(image))
        return self._image[1]

    def open_detector(
        self, store: ModelStore, variant: Variant, options: BackendOptions | None = None
    ) -> RemoteDetector:
        import ray

        from core.runtime import BackendOptions

        node = self.node(variant.node)
        local = variant.here
        path = store.variant_artefact(local)
        sha, data = self.ship(path)
        actor_cls = ray.remote(num_cpus=0)(_DetectorActor)
        actor = actor_cls.options(**self._pin(node)).remote()
        opts = replace(options or BackendOptions(), shape=store.shape)
        try:
            where = ray.get(actor.load.remote(str(local), path.name, sha, data, store.info(), store.input_hw, opts),
                            timeout=600)  # fmt: skip
        except Exception as exc:
            ray.kill(actor)
            raise RuntimeUnavailableError(
                f"{variant}: the node {node.name} could not load it: {_first_line(exc)}"
            ) from None
        self._readers[node.node_id] = self._readers.get(node.node_id, 0) + 1
        return RemoteDetector(variant, self, actor, node, where, store.info(), store.input_hw, store.shape)


_CLUSTER: Cluster | None = None
_FAILED: dict[str, str] = {}


def probe(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """ "" when ``host:port`` accepts a TCP connection within ``timeout_s``, else why not."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"cluster address {address!r} is not host:port (e.g. 10.0.0.5:6379) or 'auto'"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return ""
    except OSError as exc:
        return f"cluster {address} does not answer ({exc.strerror or exc})"


def public_reason(address: str) -> str:
    """Why the cluster at ``address`` can be reached from outside private networks, or "" when it cannot.

    A Ray cluster runs whatever code a client sends it, with no password: shared on a public interface, it is a
    remote shell for anyone who finds the port. ``auto`` is the cluster started on this machine (its address is in
    Ray's session file); a host name counts by every address it resolves to; one that does not resolve is left to
    :func:`connect` to report."""
    address = address.strip().removeprefix("ray://")
    if address in ("", "auto"):
        try:
            address = (Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster").read_text().strip()
        except OSError:
            return ""
    host = address.rpartition(":")[0].strip("[]") if ":" in address else address
    try:
        ips = sorted({str(info[4][0]) for info in socket.getaddrinfo(host or address, None)})
    except (OSError, UnicodeError):
        return ""
    public = [ip for ip in ips if not (ipaddress.ip_address(ip.split("%")[0]).is_private or ip.startswith("127."))]
    if not public:
        return ""
    return (
        f"the Ray cluster {address} is on a public address ({public[0]}), and Ray runs any code sent to it "
        "without a password: keep it on a private network, or start with --allow-public-cluster if it is "
        "firewalled"
    )


def connect(address: str | None = None, timeout_s: float = CONNECT_TIMEOUT_S) -> Cluster:
    """Join the cluster at ``address`` (default ``$YOLOLAB_CLUSTER``; ``auto``: the one running here).

    An address that does not answer fails within ``timeout_s`` with one line (the local variants are
    unaffected); the result is remembered, so a page does not wait again on every rerun."""
    global _CLUSTER
    address = (address or os.environ.get(ENV_CLUSTER, "")).strip()
    if not address:
        raise InputError("no cluster address given (HOST:PORT, or auto)", setting=Setting.CLUSTER)
    if _CLUSTER is not None and _CLUSTER.address == address:
        return _CLUSTER
    if address in _FAILED:
        raise RuntimeUnavailableError(_FAILED[address])
    if why := ray_available():
        raise RuntimeUnavailableError(why)
    if address != "auto" and not address.startswith("ray://") and (why := probe(address, timeout_s)):
        _FAILED[address] = why
        raise RuntimeUnavailableError(why)
    # Ray inlines a call's arguments up to this size (default 100 KB) instead of putting them into the
    # object store; read by this process's Ray worker when it starts, so set before ray.init
    os.environ.setdefault("RAY_max_direct_call_object_size", str(INLINE_BYTES + 2**16))
    import ray

    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, logging_level="error",
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # fmt: skip
    except Exception as exc:
        _FAILED[address] = f"cluster {address}: {_first_line(exc)}"
        raise RuntimeUnavailableError(_FAILED[address]) from None
    _CLUSTER = Cluster(address)
    return _CLUSTER


def current() -> Cluster:
    """The connected cluster, or the one ``$YOLOLAB_CLUSTER`` names."""
    if _CLUSTER is not None:
        return _CLUSTER
    if not os.environ.get(ENV_CLUSTER):
        raise InputError("a variant placed on a node (NODE/runtime:precision) needs a cluster", setting=Setting.CLUSTER)
    return connect()


def _open_remote(store: ModelStore, variant: Variant, options: BackendOptions | None) -> Detector:
    return current().open_detector(store, variant, options)


register_remote_opener(_open_remote)  # the store opens NODE/... variants through the cluster from now on


def disconnect() -> None:
    global _CLUSTER
    if _CLUSTER is not None:
        import ray

        ray.shutdown()
        _CLUSTER = None
