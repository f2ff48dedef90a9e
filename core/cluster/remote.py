"""A variant on a cluster node: an actor pinned to the node runs it (``_DetectorActor``), and here a
:class:`RemoteDetector` stands for it (letterbox, inference and post-processing on the node; the transfer
measured here, apart from the latency). Frames of up to ``INLINE_BYTES`` travel packed inside the call."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.errors import RuntimeUnavailableError
from core.runtime import Availability, DetectionResult, Detector, Node, PostParams, RawOutput
from core.variants import Shape


class Carrier(Protocol):
    """What a remote variant needs of the cluster connection: carrying frames to its node, and saying when it
    no longer reads there (:class:`core.cluster.session.Cluster` is one)."""

    def frames(self, images: Sequence[np.ndarray], node: Node) -> Any: ...

    def released(self, node: Node) -> None: ...


if TYPE_CHECKING:
    from core.runtime import BackendOptions, ModelInfo
    from core.variants import Variant


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
        status = availability(v.runtime, v.precision)
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
        self.det = Detector(v, backend, info, input_hw, options.shape)
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

    def warmup(self, n: int, batch: int, image_hw: tuple[int, int] | None = None) -> None:
        self.det.warmup(n, batch, image_hw)

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

    def any_shape(self) -> Availability:
        return Availability(True)  # the node's own detector checks, and its refusal comes back from load


class RemoteDetector(Detector):
    """A :class:`~core.runtime.detector.Detector` whose variant runs in an actor on a cluster node.

    ``detect`` runs letterbox, inference and post-processing on the node (their timings are the node's);
    ``infer_raw`` runs letterbox and inference there, and post-processing happens here on the small raw
    output, as for a local variant. ``transfer_ms`` holds, per call, the wall time here minus the time the
    node spent: object-store and actor-call overhead, reported apart from the latency."""

    def __init__(self, variant: Variant, cluster: Carrier, actor: Any, node: Node, where: dict[str, Any],
                 info: ModelInfo, input_hw: tuple[int, int], shape: Shape = Shape.SQUARE) -> None:  # fmt: skip
        desc = f"on {node.name} ({node.ip}, pid {where['pid']}): {where['description']}"
        backend = _RemoteBackend(desc, where["max_batch"])
        super().__init__(variant, backend, info, input_hw, shape)  # type: ignore[arg-type]
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

    def warmup(self, n: int = 1, batch: int = 1, image_hw: tuple[int, int] | None = None) -> None:
        import ray

        ray.get(self.actor.warmup.remote(n, batch, image_hw))

    def close(self) -> None:
        import ray

        if not self._closed:
            self.cluster.released(self.node)
        self._closed = True
        with contextlib.suppress(Exception):  # a node already gone has nothing left to close
            ray.get(self.actor.close.remote(), timeout=30)
        with contextlib.suppress(Exception):
            ray.kill(self.actor)
