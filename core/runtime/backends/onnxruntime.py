"""ONNX Runtime backends: CPU, CUDA and TensorRT execution providers, one class each."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from core.errors import RuntimeUnavailableError
from core.progress import Progress
from core.runtime.backends.base import (
    Availability,
    Backend,
    BackendOptions,
    NodeProfiler,
    NodeTime,
    median_after_first,
)
from core.runtime.backends.gpu import gpu_then
from core.runtime.head import HeadGraphs, head_from_model
from core.variants import Precision, Runtime, Shape

if TYPE_CHECKING:  # annotations only: both are imported when a model loads
    import onnxruntime as ort


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1


FIXED_SHAPE = (
    "this ONNX file has a fixed input size and no YOLOv5 head metadata (it was not exported by this tool), so "
    "only its own size runs: use the square shape, or give the .pt (or an ONNX exported with dynamic height and "
    "width)"
)


class _OrtBackend(Backend):
    provider: ClassVar[str]
    # Providers after ``provider``, in ONNX Runtime's documented order: the nodes it does not take go to
    # the next one. Where they actually ran is read after loading (:attr:`placement`).
    then: ClassVar[tuple[str, ...]] = ()
    # Stop the graph at the Detect head's convs and decode the candidate cells in numpy (core.runtime.head).
    # Worth ~3 ms an image on a CPU; GPU providers decode in microseconds and keep the whole graph.
    split_head: ClassVar[bool] = False

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._session: ort.InferenceSession | None = None
        self._input = ""
        self._output = ""
        self._graphs: HeadGraphs | None = None  # the model cut at its head, for sessions of other input shapes
        self._session_options: ort.SessionOptions | None = None
        self._providers: list[Any] = []  # provider names or (name, options) pairs, as ORT takes them
        # (batch, h, w) -> session at the file's own size; (batch, "other") -> one session with dynamic sides
        self._shaped: dict[tuple[int | str, ...], ort.InferenceSession] = {}
        self._own_shape: tuple[int, ...] = ()  # the first session's input (batch, h, w)
        self._shaped_lock = threading.Lock()
        self.placement: dict[str, int] = {}  # provider -> nodes it ran in the first inference
        self.conv_precisions: dict[str, int] = {}  # precision -> convolutions computed in it (first inference)
        self._precision = Precision.FP32
        self._model_source: str | bytes = b""  # what the session was made from (the cut model, or the path)

    @classmethod
    def _provider_present(cls) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(False, f"onnxruntime is not installed ({exc})")
        present = ort.get_available_providers()
        if cls.provider not in present:
            return Availability(
                False,
                f"this onnxruntime build has no {cls.provider} (it has {', '.join(present)}); "
                "install onnxruntime-gpu instead of onnxruntime (see README, GPU machines)",
            )
        return Availability(True)

    @classmethod
    def available(cls) -> Availability:
        return cls._provider_present()

    def _provider_options(self, precision: Precision) -> dict[str, Any]:
        return {}

    def providers(self, precision: Precision) -> list[Any]:
        """What the session is created with: (provider, options) first, then :attr:`then`, then the CPU."""
        listed: list[Any] = [(self.provider, self._provider_options(precision))]
        for name in self.then:
            listed.append((name, {"device_id": self.options.device_id}) if name == "CUDAExecutionProvider" else name)
        if self.provider != "CPUExecutionProvider":
            listed.append("CPUExecutionProvider")  # the few nodes no GPU provider takes: counted in placement
        return listed

    def session_options(self) -> ort.SessionOptions:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.options.threads or physical_cores()
        so.inter_op_num_threads = 1
        so.log_severity_level = 4  # fatal only: errors reach the caller as exceptions, not as red log lines
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.options.ort.spin else "0")
        return so

    def _open(self, model: str | bytes, so: ort.SessionOptions) -> ort.InferenceSession:
        """A session that never changes provider behind our back.

        By default ONNX Runtime's Python session catches a provider's failure, at creation and in
        ``run``, prints a message and carries on with the CPU provider: every later timing labelled
        CUDA or TensorRT would be CPU time. ``enable_fallback=0`` and ``disable_fallback()`` turn both off.
        """
        import onnxruntime as ort

        # A model ONNX Runtime cannot load raises, and the caller says so in one line. ONNX Runtime would
        # also log its own red line to stderr first (the default logger, e.g. "Could not write a profile
        # because no model was loaded" when the half-made session is freed): only fatal ones are logged.
        ort.set_default_logger_severity(4)
        session = ort.InferenceSession(model, so, providers=self._providers, enable_fallback=0)
        session.disable_fallback()
        return session

    def _run(self, session: ort.InferenceSession, outputs: list[str] | None, feeds: dict[str, np.ndarray]) -> list:
        """``session.run``; a GPU provider's failure becomes an error naming it, with ONNX Runtime's own text."""
        try:
            out: list = session.run(outputs, feeds)
        except Exception as exc:
            if self.provider == "CPUExecutionProvider":
                raise
            active = ", ".join(session.get_providers())
            raise RuntimeUnavailableError(
                f"{self.runtime.label}: {self.provider} failed while running (active providers: {active}): {exc}"
            ) from exc
        return out

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        import onnxruntime as ort

        if self.provider != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
            # CUDA and cuDNN from pip's nvidia-* wheels (or torch's) are not on the loader's path;
            # onnxruntime-gpu's own helper loads them, else the provider silently fails to start.
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        so = self.session_options()
        providers = self.providers(precision)
        model: str | bytes = str(model_path)
        self.head = None
        if self.split_head or self.options.shape is Shape.RECT:  # a GPU provider runs other sizes cut, too
            model = self._cut(model_path)
        self._session_options, self._providers, self._model_source = so, providers, model
        with tempfile.TemporaryDirectory(prefix="yololab-placement-") as profile_dir:
            # the first inference is profiled: its trace says which provider ran each node
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(profile_dir) / "placement")
            try:
                self._session = self._open(model, so)
            except Exception as exc:
                raise RuntimeUnavailableError(f"{self.runtime.label} could not load {model_path.name}: {exc}") from exc
            finally:
                so.enable_profiling = False  # sessions made later (other batch sizes) are not profiled
            active = self._session.get_providers()
            if active[0] != self.provider:  # ORT falls back to CPU silently; we do not
                self._session = None
                raise RuntimeUnavailableError(
                    f"{self.runtime.label}: {self.provider} did not start (active: {', '.join(active)})"
                )
            self._input = self._session.get_inputs()[0].name
            self._output = self._session.get_outputs()[0].name
            dims = self._session.get_inputs()[0].shape
            self._own_shape = (1, *dims[2:]) if self._graphs is not None else tuple(dims[:1] + dims[2:])
            self._run(self._session, None, {self._input: _zeros_for(self._session.get_inputs()[0])})
            self.conv_precisions = {}
            self.placement = read_placement(Path(self._session.end_profiling()), self.conv_precisions)
            self._precision = precision

    def profiler(self) -> NodeProfiler:
        """ONNX Runtime's own session profiler on a session like this one: each node's kernel time, as the
        optimised graph runs it (fused Conv, QLinearConv, NCHWc reorders, casts)."""
        return _OrtProfiler(self)

    def _cut(self, model_path: Path) -> str | bytes:
        """The model cut before its box decode (serialized), or its path when it has no known head."""
        import onnx

        try:
            proto = onnx.load(str(model_path))
        except Exception:  # unreadable here: let ORT report it with its own words
            return str(model_path)
        head = head_from_model(proto)
        if head is None:
            return str(model_path)
        self.head, self._graphs = head, HeadGraphs(proto, head)
        return self._graphs.graph()

    def _session_for(self, shape: tuple[int, ...]) -> ort.InferenceSession:
        """The session for an input of ``shape`` (batch, channels, height, width)."""
        key = (shape[0], *shape[2:])
        if key == self._own_shape or self._graphs is None:  # a whole-graph file runs what its input allows
            assert self._session is not None  # infer() refuses to run before load()
            return self._session
        own_sides = tuple(key[1:]) == self._own_shape[1:]
        slot: tuple[int | str, ...] = key if own_sides else (key[0], "other")
        with self._shaped_lock:
            session = self._shaped.get(slot)
            if session is None:
                # The file's own size: a static batch per session, as always. Any other size (the rect shape):
                # one session per batch size with height and width dynamic, measured 1-6 % faster than one static
                # session per size on ONNX Runtime's CPU provider (bench/shape_sessions.py, README).
                model = self._graphs.graph(key[0], key[1:], dynamic_sides=not own_sides)  # type: ignore[arg-type]
                assert self._session_options is not None
                session = self._open(model, self._session_options)
                self._shaped[slot] = session
        return session

    def any_shape(self) -> Availability:
        if self._graphs is not None:
            return Availability(True)
        dims = self._session.get_inputs()[0].shape if self._session is not None else []
        if len(dims) == 4 and not all(isinstance(d, int) and d > 0 for d in dims[2:]):
            return Availability(True)  # the file's own input is dynamic
        return Availability(False, FIXED_SHAPE)

    def infer_heads(self, batch: np.ndarray) -> list[np.ndarray]:
        """The head convs' raw outputs for a batch of any size (only when :attr:`head` is set)."""
        if self.head is None:
            raise RuntimeUnavailableError(f"{self.runtime.label}: this model was not cut at its head")
        session = self._session_for(batch.shape)
        outs: list[np.ndarray] = self._run(session, list(self.head.outputs), {self._input: batch})
        return outs

    @property
    def max_batch(self) -> int | None:
        """Largest batch one call takes: None (any) for a cut model, else the file's fixed batch of 1."""
        return None if self.head is not None else 1

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.head is not None:  # the same rows the whole graph gives (threshold 0 keeps them all)
            outs = self.infer_heads(batch)
            return np.concatenate([self.head.decode(outs, 0.0, i) for i in range(batch.shape[0])])
        out: np.ndarray = self._run(self._session_for(batch.shape), [self._output], {self._input: batch})[0]
        return out

    def _close(self) -> None:
        self._session = None
        self._shaped.clear()
        self._graphs = None

    @property
    def off_device_nodes(self) -> int:
        """Nodes of a GPU variant that ran on the CPU in the first inference (0 for the CPU variant)."""
        return 0 if self.provider == "CPUExecutionProvider" else self.placement.get("CPUExecutionProvider", 0)

    @property
    def description(self) -> str:
        threads = self.options.threads or physical_cores()
        if self.runtime is not Runtime.ORT:
            where = placement_text(self.placement)
            warn = f"; {self.off_device_nodes} nodes ran on the CPU" if self.off_device_nodes else ""
            return f"{self.runtime.label} ({where}){warn}" if where else self.runtime.label
        decode = ", box decode in numpy" if self.head is not None else ""
        return f"{self.runtime.label}, {threads} threads{decode}{self.convolution_words()}"

    def convolution_words(self) -> str:
        """' (56/60 convolutions int8)', flagged when the requested precision covers less than 90 %."""
        total = sum(self.conv_precisions.values())
        if not total or self.provider != "CPUExecutionProvider":
            return ""
        asked = self._precision.value
        done = self.conv_precisions.get(asked, 0)
        flag = f"; only {done / total:.0%} in {asked}" if done / total < 0.9 else ""
        return f" ({done}/{total} convolutions {asked}{flag})"


_PROVIDER_SHORT = {
    "CPUExecutionProvider": "CPU",
    "CUDAExecutionProvider": "CUDA",
    "TensorrtExecutionProvider": "TensorRT",
}
_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


class _OrtProfiler(NodeProfiler):
    def __init__(self, backend: _OrtBackend) -> None:
        self.backend = backend
        self.outputs = list(backend.head.outputs) if backend.head is not None else [backend._output]
        self.folder = tempfile.TemporaryDirectory(prefix="yololab-profile-")
        self.session: ort.InferenceSession | None = None  # made by the first run, for its input shape

    def run(self, batch: np.ndarray) -> None:
        backend = self.backend
        if self.session is None:
            so = backend.session_options()
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(self.folder.name) / "profile")
            own = (batch.shape[0], *batch.shape[2:]) == backend._own_shape or backend._graphs is None
            graphs = backend._graphs
            model = backend._model_source if own or graphs is None else graphs.graph(*_sides(batch), dynamic_sides=True)
            self.session = backend._open(model, so)
        backend._run(self.session, self.outputs, {backend._input: batch})

    def nodes(self) -> list[NodeTime]:
        import json

        if self.session is None:
            return []
        events = json.loads(Path(self.session.end_profiling()).read_text())
        self.session = None
        times: dict[str, list[float]] = {}
        ops: dict[str, str] = {}
        types: dict[str, str] = {}
        for e in sorted(events, key=lambda e: e.get("ts", 0)):
            name, args = e.get("name", ""), e.get("args", {})
            if e.get("cat") == "Node" and name.endswith("_kernel_time"):
                node = name.removesuffix("_kernel_time")
                times.setdefault(node, []).append(e.get("dur", 0) / 1000)
                ops[node] = args.get("op_name", "")
                inputs = args.get("input_type_shape") or [{}]
                types[node] = next(iter(inputs[0]), "")  # the first input's element type: what the kernel computed in
        return [
            NodeTime(
                node, ops[node], _ort_kind(ops[node]), _ort_precision(ops[node], types[node]), median_after_first(ts)
            )
            for node, ts in times.items()
        ]

    def close(self) -> None:
        self.session = None
        self.folder.cleanup()


_ORT_QUANTIZE = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConcat"}
_ORT_REORDER = {"ReorderInput", "ReorderOutput", "Cast", "Transpose", "MemcpyFromHost", "MemcpyToHost"}


def _ort_kind(op: str) -> str:
    """Quantize (Q/DQ and requantizing concats), reorder (layout and type changes) or compute."""
    return "quantize" if op in _ORT_QUANTIZE else "reorder" if op in _ORT_REORDER else "compute"


_ORT_TYPES = {"float": "fp32", "float16": "fp16", "bfloat16": "bf16", "uint8": "int8", "int8": "int8"}


def _ort_precision(op: str, element_type: str) -> str:
    """What a node computed in: its first input's element type (a Q/DQ op: int8), "" for reorders."""
    if op.startswith("QLinear") or op in ("QGemm", "ConvInteger", "MatMulInteger") or op in _ORT_QUANTIZE:
        return "int8"
    return "" if op in _ORT_REORDER else _ORT_TYPES.get(element_type, "")


def _sides(batch: np.ndarray) -> tuple[int, tuple[int, int]]:
    return int(batch.shape[0]), (int(batch.shape[2]), int(batch.shape[3]))


def _zeros_for(arg: Any) -> np.ndarray:
    """A zero input of a session input's type and shape (symbolic dimensions as 1)."""
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in arg.shape]
    return np.zeros(shape, _ORT_DTYPES.get(arg.type, np.float32))


def read_placement(profile: Path, convolutions: dict[str, int] | None = None) -> dict[str, int]:
    """Nodes per provider in an ONNX Runtime profile (``enable_profiling``); the file is removed.

    Each node run leaves a ``<node>_kernel_time`` event whose ``args.provider`` names who ran it;
    TensorRT's engine shows as one fused node. ``convolutions``, when given, is filled with the precision each
    convolution computed in (its op and first input's type) -> how many.
    """
    import json

    try:
        events = json.loads(profile.read_text())
    finally:
        profile.unlink(missing_ok=True)
    nodes: dict[str, str] = {}
    convs: dict[str, str] = {}
    for e in events:
        name, args = e.get("name", ""), e.get("args", {})
        provider = args.get("provider")
        if e.get("cat") == "Node" and name.endswith("_kernel_time") and provider:
            node, op = name.removesuffix("_kernel_time"), args.get("op_name", "")
            nodes[node] = provider
            if "Conv" in op:
                convs[node] = _ort_precision(op, next(iter((args.get("input_type_shape") or [{}])[0]), ""))
    if convolutions is not None:
        for precision in convs.values():
            convolutions[precision] = convolutions.get(precision, 0) + 1
    counts: dict[str, int] = {}
    for provider in nodes.values():
        counts[provider] = counts.get(provider, 0) + 1
    return counts


def placement_text(placement: dict[str, int]) -> str:
    """'all 142 nodes on CPU', or '3 nodes on TensorRT, 2 on CPU' (most first)."""
    if not placement:
        return ""
    ranked = sorted(placement.items(), key=lambda kv: -kv[1])
    if len(ranked) == 1:
        return f"all {ranked[0][1]} nodes on {_PROVIDER_SHORT.get(ranked[0][0], ranked[0][0])}"
    parts = [f"{n} on {_PROVIDER_SHORT.get(p, p)}" for p, n in ranked]
    return f"{parts[0].replace(' on', ' nodes on', 1)}, " + ", ".join(parts[1:])


class OrtCpuBackend(_OrtBackend):
    runtime = Runtime.ORT
    thread_safe = True  # InferenceSession.run may be called concurrently
    provider = "CPUExecutionProvider"
    split_head = True


class OrtCudaBackend(_OrtBackend):
    runtime = Runtime.ORT_CUDA
    provider = "CUDAExecutionProvider"

    @classmethod
    def available(cls) -> Availability:
        return gpu_then(cls._provider_present)

    def _provider_options(self, precision: Precision) -> dict[str, Any]:
        return {"device_id": self.options.device_id, "cudnn_conv_algo_search": "HEURISTIC"}


def nvinfer_loadable(major: int) -> bool:
    """Whether TensorRT's ``libnvinfer.so.<major>`` can be loaded in this process."""
    # pip's tensorrt-cu13-libs keeps the libraries in site-packages (not on the loader's path) and
    # loads them when imported; after that, dlopen by soname finds them.
    with contextlib.suppress(Exception):
        importlib.import_module("tensorrt_libs")
    try:
        ctypes.CDLL(f"libnvinfer.so.{major}")
    except OSError:
        return False
    return True


def ort_tensorrt_reason(needed_major: int, loadable: Callable[[int], bool] = nvinfer_loadable) -> str:
    """Why ONNX Runtime's TensorRT provider cannot start, or "" if the TensorRT it links is there."""
    if loadable(needed_major):
        return ""
    others = [m for m in (needed_major - 1, needed_major + 1) if loadable(m)]
    install = f"install tensorrt-cu13>=10.13,<{needed_major + 1} (requirements-gpu.txt)"
    if others:
        return (
            f"only TensorRT {others[0]} (libnvinfer.so.{others[0]}) is installed, but this onnxruntime-gpu's "
            f"TensorRT provider is linked against TensorRT {needed_major} (libnvinfer.so.{needed_major}): "
            f"{install}; the native trt:* variants work with TensorRT 10 and 11"
        )
    return (
        f"ONNX Runtime's TensorRT provider needs TensorRT {needed_major} "
        f"(libnvinfer.so.{needed_major} not found): {install}"
    )


class OrtTensorrtBackend(_OrtBackend):
    runtime = Runtime.ORT_TRT
    provider = "TensorrtExecutionProvider"
    then = ("CUDAExecutionProvider",)  # what TensorRT rejects runs on CUDA, not on the CPU
    NVINFER_MAJOR = 10  # onnxruntime-gpu 1.31/1.32 link TensorRT 10 (libnvinfer.so.10)

    @classmethod
    def available(cls) -> Availability:
        def provider_and_library() -> Availability:
            present = cls._provider_present()
            if not present:
                return present
            reason = ort_tensorrt_reason(cls.NVINFER_MAJOR)
            return Availability(not reason, reason)

        return gpu_then(provider_and_library)

    def _provider_options(self, precision: Precision) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "device_id": self.options.device_id,
            "trt_max_workspace_size": self.options.tensorrt.workspace_mb << 20,
            "trt_fp16_enable": precision is Precision.FP16,
            "trt_int8_enable": precision is Precision.INT8,  # explicit Q/DQ: no calibration table
        }
        if self.options.cache_dir is not None:
            cache = Path(self.options.cache_dir) / "ort-trt"
            cache.mkdir(parents=True, exist_ok=True)
            opts.update(
                trt_engine_cache_enable=True,
                trt_engine_cache_path=str(cache),
                trt_timing_cache_enable=True,
                trt_timing_cache_path=str(cache),
            )
        return opts
