"""Run variants on other machines through a Ray cluster (opt-in: nothing here is imported without ``--cluster``).

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
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.config import ENV_CLUSTER
from core.errors import InputError, RuntimeUnavailableError, Setting
from core.model import register_remote_opener
from core.runtime import DetectionResult, Detector, Node, PostParams, RawOutput

if TYPE_CHECKING:
    from core.model import ModelStore
    from core.runtime import BackendOptions, ModelInfo
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
        opts = options or BackendOptions()
        try:
            where = ray.get(actor.load.remote(str(local), path.name, sha, data, store.info(), store.input_hw, opts),
                            timeout=600)  # fmt: skip
        except Exception as exc:
            ray.kill(actor)
            raise RuntimeUnavailableError(
                f"{variant}: the node {node.name} could not load it: {_first_line(exc)}"
            ) from None
        self._readers[node.node_id] = self._readers.get(node.node_id, 0) + 1
        return RemoteDetector(variant, self, actor, node, where, store.info(), store.input_hw)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__


def _node_report() -> dict[str, Any]:
    """Runs on a node: its process, and what the doctor says of each runtime there."""
    import ray

    from core.runtime import runtime_availability

    return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(), "runtimes": runtime_availability()}


@dataclass(frozen=True)
class _Packed:
    """A frame as bytes and shape, for the trip inside an actor call."""

    data: bytes
    shape: tuple[int, ...]
    dtype: str

    def array(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=self.dtype).reshape(self.shape)


def _frames(images: np.ndarray | list[np.ndarray | _Packed]) -> list[np.ndarray]:
    """What :meth:`Cluster.frames` sent, as arrays again (on the node)."""
    if isinstance(images, np.ndarray):
        return [images]
    return [im.array() if isinstance(im, _Packed) else im for im in images]


class _DetectorActor:
    """Holds one loaded variant on its node."""

    def load(self, variant: str, name: str, sha: str, data: bytes, info: ModelInfo, input_hw: tuple[int, int],
             options: BackendOptions) -> dict[str, Any]:  # fmt: skip
        import ray

        from core import config
        from core.runtime import availability, create_backend
        from core.variants import Variant

        v = Variant.parse(variant)
        status = availability(v.runtime)
        if not status:
            raise RuntimeUnavailableError(f"{v} cannot run on this node: {status.reason}")
        folder = config.cache_dir() / "remote" / sha[:16]
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{name}.{os.getpid()}.part"
            tmp.write_bytes(data)
            os.replace(tmp, path)
        if options.cache_dir is None:
            from dataclasses import replace

            options = replace(options, cache_dir=folder / "engines")
        backend = create_backend(v.runtime, options)
        backend.load(path, v.precision)
        self.det = Detector(v, backend, info, input_hw)
        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "description": backend.description, "max_batch": self.det.max_batch}  # fmt: skip

    def infer_raw(self, images: Any, min_conf: float) -> tuple[list[RawOutput], float]:
        batch = _frames(images)
        t = time.perf_counter()
        raws = [self.det.compact(r, min_conf) for r in self.det.infer_raw_batch(batch, min_conf)]
        return raws, (time.perf_counter() - t) * 1e3

    def detect(self, images: Any, params: PostParams) -> tuple[list[DetectionResult], float]:
        batch = _frames(images)
        t = time.perf_counter()
        out = self.det.detect_batch(batch, params)
        return out, (time.perf_counter() - t) * 1e3

    def warmup(self, n: int, batch: int) -> None:
        self.det.warmup(n, batch)

    def close(self) -> None:
        self.det.close()


class _RemoteBackend:
    """What pages and tables read of a backend (``description``, ``max_batch``) for a variant on a node."""

    thread_safe = True
    head = None

    def __init__(self, description: str, max_batch: int | None) -> None:
        self.description = description
        self.max_batch = max_batch

    def close(self) -> None:
        pass


class RemoteDetector(Detector):
    """A :class:`~core.runtime.detector.Detector` whose variant runs in an actor on a cluster node.

    ``detect`` runs letterbox, inference and post-processing on the node (their timings are the node's);
    ``infer_raw`` runs letterbox and inference there, and post-processing happens here on the small raw
    output, as for a local variant. ``transfer_ms`` holds, per call, the wall time here minus the time the
    node spent: object-store and actor-call overhead, reported apart from the latency."""

    def __init__(self, variant: Variant, cluster: Cluster, actor: Any, node: Node, where: dict[str, Any],
                 info: ModelInfo, input_hw: tuple[int, int]) -> None:  # fmt: skip
        desc = f"on {node.name} ({node.ip}, pid {where['pid']}): {where['description']}"
        super().__init__(variant, _RemoteBackend(desc, where["max_batch"]), info, input_hw)  # type: ignore[arg-type]
        self.cluster, self.actor, self.node = cluster, actor, node
        self.pid: int = where["pid"]
        self.node_id: str = where["node_id"]
        self._closed = False

    def _call(self, method: str, images: Sequence[np.ndarray], arg: object) -> Any:
        import ray

        t = time.perf_counter()  # from here on, all is transfer but what the node says it spent
        data = self.cluster.frames(images, self.node)
        try:
            out, node_ms = ray.get(getattr(self.actor, method).remote(data, arg))
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
            raise RuntimeUnavailableError(
                f"{self.variant}: lost its node {self.node.name}: {_first_line(exc)}"
            ) from None
        self.transfer_ms.append(max((time.perf_counter() - t) * 1e3 - node_ms, 0.0))
        return out

    def infer_raw(self, image: np.ndarray, min_conf: float = 0.0) -> RawOutput:
        return self._call("infer_raw", [image], min_conf)[0]  # type: ignore[no-any-return]

    def infer_raw_batch(self, images: Sequence[np.ndarray], min_conf: float = 0.0) -> list[RawOutput]:
        return list(self._call("infer_raw", images, min_conf))

    def detect(self, image: np.ndarray, params: PostParams | None = None) -> DetectionResult:
        return self._call("detect", [image], params or PostParams())[0]  # type: ignore[no-any-return]

    def detect_batch(self, images: Sequence[np.ndarray], params: PostParams | None = None) -> list[DetectionResult]:
        return list(self._call("detect", images, params or PostParams()))

    def warmup(self, n: int = 1, batch: int = 1) -> None:
        import ray

        ray.get(self.actor.warmup.remote(n, batch))

    def close(self) -> None:
        import ray

        if not self._closed:
            self.cluster.released(self.node)
        self._closed = True
        with contextlib.suppress(Exception):  # a node already gone has nothing left to close
            ray.get(self.actor.close.remote(), timeout=30)
        with contextlib.suppress(Exception):
            ray.kill(self.actor)


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


# ---------------------------------------------------------------------------------------------
# sharded evaluation

CHUNK_IMAGES = 16  # images per task: progress, load balance and retries at this grain
STALL_S = 300.0  # no chunk finished for this long, none running anywhere: an error, not a hang


def _collect_chunk(
    items: list[tuple[str, bytes, np.ndarray]],
    artefacts: list[tuple[str, str, str, Any]],
    info: ModelInfo,
    input_hw: tuple[int, int],
    display: PostParams,
) -> tuple[Any, list[int], list[str]]:
    """Runs on a node: the chunk's images through every variant (``core.measure.evaluation.collect``)."""
    import tempfile

    import ray

    from core.data import LabelledImage
    from core.measure import collect
    from core.runtime import BackendOptions

    actor = _DetectorActor()
    dets = []
    for variant, name, sha, data in artefacts:
        payload = ray.get(data) if isinstance(data, ray.ObjectRef) else data
        actor.load(variant, name, sha, payload, info, input_hw, BackendOptions(threads=1))
        dets.append(actor.det)
    with tempfile.TemporaryDirectory(prefix="yololab-shard-") as tmp:
        labelled = []
        for i, (name, blob, labels) in enumerate(items):
            path = Path(tmp) / f"{i:06d}-{Path(name).name}"
            path.write_bytes(blob)
            labelled.append(LabelledImage(path, labels))
        got, shown, unreadable = collect(dets, labelled, display, True)
        readable = [int(p.name.split("-", 1)[0]) for p in shown]
    for d in dets:
        d.close()
    return got, readable, [n.split("-", 1)[1] for n in unreadable]


def sharded_collect(
    cluster: Cluster,
    store: ModelStore,
    variants: Sequence[Variant],
    items: Sequence[Any],
    shards: int,
    display: PostParams,
    progress: Any = None,
    stall_s: float = STALL_S,
) -> tuple[list[Any], list[Path], list[str]]:
    """:func:`core.measure.evaluation.collect` over the cluster: chunks of :data:`CHUNK_IMAGES` images, at most
    ``shards`` at a time, anywhere there is a free CPU; a chunk whose worker or node dies is retried
    elsewhere (Ray's task retries). The chunks' results are merged in image order, so every statistic
    equals one process's on the same images."""
    import ray

    from core.measure import Collected

    if shards < 1:
        raise InputError(f"a sharded eval needs at least 1 shard, got {shards}")
    artefacts = []
    for v in variants:
        if v.node:
            raise InputError(f"{v}: a sharded evaluation runs every variant on every node; drop the node")
        path = store.variant_artefact(v)
        sha, ref = cluster.ship(path)
        artefacts.append((str(v), path.name, sha, ref))
    chunks = [list(items[i : i + CHUNK_IMAGES]) for i in range(0, len(items), CHUNK_IMAGES)]
    task = ray.remote(num_cpus=1, max_retries=3, retry_exceptions=False, scheduling_strategy="SPREAD")(_collect_chunk)
    info, hw = store.info(), store.input_hw
    pending: dict[Any, int] = {}
    done: dict[int, tuple[Any, list[int], list[str]]] = {}
    queue = list(range(len(chunks)))
    last = time.monotonic()
    while queue or pending:
        while queue and len(pending) < shards:
            k = queue.pop(0)
            payload = [(str(it.image), it.image.read_bytes(), it.labels) for it in chunks[k]]
            pending[task.remote(payload, artefacts, info, hw, display)] = k
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in ready:
            k = pending.pop(ref)
            first, last_img = k * CHUNK_IMAGES + 1, k * CHUNK_IMAGES + len(chunks[k])
            try:
                done[k] = ray.get(ref)
            except Exception as exc:
                for other in pending:
                    ray.cancel(other, force=True)
                why = _first_line(exc)
                raise RuntimeUnavailableError(
                    f"shard {k + 1} of {len(chunks)} (images {first}-{last_img}) failed on every try: {why}"
                ) from None
            last = time.monotonic()
            if progress is not None:
                progress(len(done) / len(chunks), f"shard {k + 1}/{len(chunks)} done ({len(done)} of {len(chunks)})")
        if pending and time.monotonic() - last > stall_s:
            for other in pending:
                ray.cancel(other, force=True)
            alive = ", ".join(n.name for n in cluster.nodes()) or "none"
            raise RuntimeUnavailableError(
                f"no shard finished for {stall_s:.0f} s and {len(pending)} wait for a node (live nodes: {alive}): "
                "stopped"
            )
    per_variant = [Collected.merge([done[k][0][i] for k in range(len(chunks))]) for i in range(len(variants))]
    shown: list[Path] = []
    unreadable: list[str] = []
    for k in range(len(chunks)):
        _, readable, bad = done[k]
        shown += [chunks[k][i].image for i in readable]
        unreadable += bad
    return per_variant, shown, unreadable
