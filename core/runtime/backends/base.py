"""The backend interface every runtime implements, and the lazy registry over the variant table."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.errors import CoreError, RuntimeUnavailableError
from core.progress import Progress, no_progress
from core.runtime.head import YoloV5Head
from core.variants import VARIANTS, Precision, Runtime, Shape, Variant, runtime_spec


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str = ""  # why not, in words a user can act on

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class NodeTime:
    """One node of a runtime's executed graph, from its own profiler (:meth:`Backend.profile_nodes`)."""

    name: str  # the node's name in the runtime's graph (ONNX node names, OpenVINO layers, YOLOv5 modules)
    op: str  # its kernel or op type as the runtime ran it (QLinearConv, Conv, brgconv_avx512:bf16, C3)
    kind: str  # "compute" | "quantize" (Q/DQ, requantize) | "reorder" (layout reorders and casts)
    precision: str  # what it computed in: "int8", "bf16", "fp16", "fp32", or "" when the profiler does not say
    ms: float  # median over the profiled runs


class NodeProfiler(ABC):
    """``run`` (many times) -> ``nodes``: each executed node's median time over the runs after the first (which
    allocates), in execution order. Use as a context manager to release it."""

    @abstractmethod
    def run(self, batch: np.ndarray) -> None: ...

    @abstractmethod
    def nodes(self) -> list[NodeTime]: ...

    def close(self) -> None:
        return None

    def __enter__(self) -> NodeProfiler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def median_after_first(times: list[float]) -> float:
    return float(np.median(times[1:] or times))


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime only."""

    # CPU worker threads busy-wait for the next call. Fastest for one variant run back to back; when
    # several variants alternate (video, image comparison) the idle sessions' spinning threads steal the
    # cores from the busy one and roughly halve throughput, so callers running variants in turn set False.
    spin: bool = True


@dataclass(frozen=True)
class TensorrtOptions:
    """TensorRT only: the native backend and ONNX Runtime's TensorRT execution provider."""

    workspace_mb: int = 1024  # builder memory pool


@dataclass(frozen=True)
class BackendOptions:
    """What a caller may ask of any backend, with each runtime's own settings in its own field."""

    threads: int | None = None  # CPU threads for inference; None = one per physical core
    device_id: int = 0  # GPU index for GPU runtimes
    cache_dir: Path | None = None  # where GPU runtimes keep engines and timing caches
    shape: Shape = Shape.SQUARE  # RECT: inputs of other sizes than the file's own will come (TensorRT builds for it)
    ort: OrtOptions = OrtOptions()
    tensorrt: TensorrtOptions = TensorrtOptions()

    @classmethod
    def for_turns(cls, in_turn: bool, threads: int | None = None) -> BackendOptions:
        """Options for a variant that alternates call by call with others (``in_turn``) or runs alone."""
        return cls(threads=threads, ort=OrtOptions(spin=not in_turn))


class Backend(ABC):
    """Loads one model file and runs it: ``load`` -> ``infer`` (many times) -> ``close``.

    ``infer`` takes the preprocessed float32 NCHW batch and returns the raw output; timing is
    measured by the caller around ``infer`` only. Use as a context manager to close reliably.
    """

    runtime: ClassVar[Runtime]
    thread_safe: ClassVar[bool] = False  # may infer() be called from several threads at once?

    def __init__(self, options: BackendOptions | None = None) -> None:
        self.options = options or BackendOptions()
        self._loaded = False
        # Set by a backend that stops the graph before the Detect head's box decode (core.runtime.head): the
        # detector then calls :meth:`infer_heads` and decodes only the candidate cells in numpy.
        self.head: YoloV5Head | None = None

    @property
    def max_batch(self) -> int | None:
        """Largest batch one :meth:`infer_heads` call takes: None for any size; 1 (the default) for a
        backend bound to the model file's fixed batch, which then runs a batch image by image."""
        return 1

    def any_shape(self) -> Availability:
        """Whether this loaded model runs inputs of any height and width (multiples of the stride), not only the
        file's own: what the rect shape policy needs. A backend that can says so; the default cannot."""
        return Availability(False, f"{self.runtime.label} runs only the model file's own input size")

    def infer_heads(self, batch: np.ndarray) -> list[np.ndarray]:
        """The head convolutions' raw outputs for ``batch``; only for a backend that set :attr:`head`."""
        raise CoreError(f"{self.runtime.label}: this backend runs the whole graph (it has no head outputs)")

    @classmethod
    @abstractmethod
    def available(cls) -> Availability:
        """Whether this runtime can run on this machine, and if not, why."""

    def profiler(self) -> NodeProfiler:
        """The runtime's own per-node profiler on a model like this one (the graph :meth:`infer_heads` runs when
        :attr:`head` is set, else the whole model); its calls can be interleaved with plain ones."""
        raise CoreError(f"{self.runtime.label}: no per-node profiler for this runtime")

    @classmethod
    def precision_available(cls, precision: Precision) -> Availability:
        """Whether this runtime computes ``precision`` natively on this machine (BF16 needs the CPU's support)."""
        return Availability(True)

    @abstractmethod
    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        """Load ``model_path`` (an ONNX file carrying ``precision``); long work reports ``progress``."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _close(self) -> None:
        return None

    @property
    def description(self) -> str:
        """What actually runs (providers, threads, engine), for reports."""
        return self.runtime.label

    def load(self, model_path: Path, precision: Precision, progress: Progress = no_progress) -> None:
        status = self.available()
        if not status:
            raise RuntimeUnavailableError(f"{self.runtime.label} cannot run here: {status.reason}")
        status = self.precision_available(precision)
        if not status:
            raise RuntimeUnavailableError(f"{self.runtime.value}:{precision.value} cannot run here: {status.reason}")
        self._load(model_path, precision, progress)
        self._loaded = True

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if not self._loaded:
            raise CoreError(f"{self.runtime.label}: infer() called before load() or after close()")
        return self._infer(batch)

    def close(self) -> None:
        if self._loaded:
            self._close()
            self._loaded = False

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backend_class(runtime: Runtime) -> type[Backend]:
    """The Backend class the variant table names for ``runtime``, imported now."""
    module, _, name = runtime_spec(runtime).backend.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), name)
    return cls


def availability(runtime: Runtime, precision: Precision | None = None) -> Availability:
    """Whether ``runtime`` (and, given, its ``precision``) can run on this machine, and if not, why."""
    try:
        cls = backend_class(runtime)
        status = cls.available()
        return status if not status or precision is None else cls.precision_available(precision)
    except ImportError as exc:  # the backend module itself needs something missing
        return Availability(False, f"cannot import its backend: {exc}")


def runnable_cpu_variants() -> list[Variant]:
    """The CPU rows of the table this machine can run (a BF16 row needs native BF16): what a command runs when
    it is not told which variants."""
    from core.variants import CPU_VARIANTS

    return [v for v in CPU_VARIANTS if availability(v.runtime, v.precision)]


def runtime_availability() -> list[dict[str, Any]]:
    """Every runtime, whether it can run on this machine and why not, with its precisions (the doctor's table)."""
    rows = []
    for runtime in Runtime:
        status = availability(runtime)
        precisions = [v.precision for v in VARIANTS if v.runtime is runtime]
        not_here = {p.value: why.reason for p in precisions if status and not (why := availability(runtime, p))}
        rows.append(
            {
                "runtime": runtime.value,
                "label": runtime.label,
                "available": status.ok,
                "reason": status.reason,
                "precisions": [p.value for p in precisions],
                "unavailable_precisions": not_here,  # precision -> why not, for a runtime that runs here
            }
        )
    return rows


def create_backend(runtime: Runtime, options: BackendOptions | None = None) -> Backend:
    return backend_class(runtime)(options)
