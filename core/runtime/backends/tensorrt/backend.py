"""The TensorRT runner: an engine per model, shared in-process; a context, stream and buffers per instance.

Engines are cached on disk (see :func:`.engine_cache.engine_cache_key`) and, within a process, shared
between backend instances; each instance has its own execution context, CUDA stream and buffers, because
an execution context is not thread-safe (one per Streamlit session / thread).
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.cache import sha256_file
from core.config import cache_dir as default_cache_dir
from core.errors import ConversionError, CoreError, InputError, RuntimeUnavailableError
from core.progress import Progress, scaled
from core.runtime.backends.base import (
    Availability,
    Backend,
    BackendOptions,
    NodeProfiler,
    NodeTime,
    median_after_first,
)
from core.runtime.backends.gpu import probe_gpu
from core.runtime.backends.tensorrt.availability import import_cudart, import_tensorrt, tensorrt_availability
from core.runtime.backends.tensorrt.builder import build_engine_plan, check_precision, logged_errors, trt_classes
from core.runtime.backends.tensorrt.device import Buffer, cuda_check, pinned_view
from core.runtime.backends.tensorrt.engine_cache import (
    EngineLoad,
    dynamic_profile,
    engine_cache_key,
    engine_path,
    load_or_build,
    timing_cache_path,
)
from core.runtime.head import YoloV5Head, cut_at_head, head_from_model, resize_by_scales
from core.runtime.onnx_file import OnnxFile, read_onnx
from core.variants import Precision, Runtime, Shape

if TYPE_CHECKING:  # annotations only: never imported at run time from here
    import tensorrt as trt


# ---------------------------------------------------------------------------------------------
# engines shared in-process


@dataclass
class _SharedEngine:
    runtime: Any  # kept alive as long as the engine
    engine: Any
    load: EngineLoad
    users: int = 0


_SHARED: dict[str, _SharedEngine] = {}
_SHARED_LOCK = threading.Lock()


# ---------------------------------------------------------------------------------------------
# the backend


@dataclass
class _State:
    trt: Any = None
    cudart: Any = None
    context: Any = None
    stream: Any = None
    shared_key: str = ""
    io: OnnxFile | None = None
    input_name: str = ""
    output_name: str = ""
    bound_shape: tuple[int, ...] = ()
    buffers: dict[str, Buffer] = field(default_factory=dict)
    info: str = ""


class TensorrtBackend(Backend):
    runtime = Runtime.TRT

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._s = _State()

    @classmethod
    def available(cls) -> Availability:
        return tensorrt_availability()

    def _cache_dir(self) -> Path:
        return Path(self.options.cache_dir) if self.options.cache_dir is not None else default_cache_dir() / "engines"

    def _engine(
        self, trt: Any, model_path: Path, precision: Precision, io: OnnxFile, progress: Progress
    ) -> tuple[str, bool]:
        """(key of the shared engine for this model, whether another instance had it loaded already)."""
        gpu = probe_gpu(self.options.device_id)
        if not gpu.ok:
            raise RuntimeUnavailableError(gpu.reason)
        progress(0.01, f"hashing {model_path.name}")
        key = engine_cache_key(
            sha256_file(model_path), precision, trt.__version__, gpu.name, gpu.compute_capability, io.input_shape
        )
        shared_key = f"{key}@{self.options.device_id}"
        with _SHARED_LOCK:
            if shared_key in _SHARED:
                _SHARED[shared_key].users += 1
                return shared_key, True
        cache = self._cache_dir()
        target = engine_path(cache, model_path, precision, key)
        timing = timing_cache_path(cache, trt.__version__, gpu.name, gpu.compute_capability)
        runtime = trt.Runtime(trt_classes(trt).logger)

        def build(tmp: Path) -> None:
            build_engine_plan(
                trt, model_path, io, tmp, timing, self.options.tensorrt.workspace_mb, scaled(progress, 0.05, 0.9)
            )

        def deserialize(data: bytes) -> trt.ICudaEngine | None:
            progress(0.92, "loading the TensorRT engine")
            return runtime.deserialize_cuda_engine(data)

        meta = {
            "onnx": str(model_path),
            "onnx_sha256": sha256_file(model_path),
            "precision": precision.value,
            "tensorrt": trt.__version__,
            "gpu": gpu.name,
            "compute_capability": gpu.compute_capability,
            "input_shape": list(io.input_shape),
            "workspace_mb": self.options.tensorrt.workspace_mb,
        }
        engine, load = load_or_build(target, build, deserialize, meta)
        with _SHARED_LOCK:
            entry = _SHARED.setdefault(shared_key, _SharedEngine(runtime, engine, load))
            entry.users += 1  # if another thread won the race, its engine is used and ours dropped
        return shared_key, False

    def _rect_model(self, model_path: Path) -> tuple[Path, YoloV5Head | None]:
        """For the rect shape: the file cut at its Detect head, Resizes scaling and height and width dynamic (one
        engine, one optimisation profile for every input size of a run; the box decode in numpy, as on the CPU),
        written once beside the engines. A file without head metadata comes back as it is (no head)."""
        import onnx

        proto = onnx.load(str(model_path), load_external_data=False)
        head = head_from_model(proto)
        if head is None:
            return model_path, None
        out = self._cache_dir() / "rect" / f"{model_path.stem}-{sha256_file(model_path)[:12]}-rect.onnx"
        if not out.is_file():
            cut = onnx.ModelProto()
            cut.ParseFromString(cut_at_head(resize_by_scales(proto), head))
            dims = cut.graph.input[0].type.tensor_type.shape.dim
            for axis, name in ((2, "height"), (3, "width")):
                dims[axis].Clear()
                dims[axis].dim_param = name
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
            onnx.save(cut, str(tmp))
            os.replace(tmp, out)
        return out, head

    def any_shape(self) -> Availability:
        if self.head is not None or (self._s.io is not None and self._s.io.dynamic):
            return Availability(True)
        from core.runtime.backends.onnxruntime import FIXED_SHAPE

        return Availability(False, FIXED_SHAPE)

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        io = read_onnx(model_path)
        check_precision(io, precision)
        self.head = None
        if self.options.shape is Shape.RECT and not io.dynamic:
            model_path, self.head = self._rect_model(model_path)
            io = read_onnx(model_path)
        cuda_check(cudart, cudart.cudaSetDevice(self.options.device_id), f"select GPU {self.options.device_id}")
        s = _State(trt=trt, cudart=cudart, io=io, output_name=io.output_names[0], input_name=io.input_name)
        s.shared_key, reused = self._engine(trt, model_path, precision, io, progress)
        self._s = s
        try:
            engine: trt.ICudaEngine = _SHARED[s.shared_key].engine
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
            if inputs != [io.input_name] or s.output_name not in names:
                raise ConversionError(
                    f"the TensorRT engine for {model_path.name} has tensors {names}; expected input "
                    f"{io.input_name!r} and output {s.output_name!r}"
                )
            progress(0.95, "creating a TensorRT execution context")
            s.context = engine.create_execution_context()
            if s.context is None:
                raise RuntimeUnavailableError(
                    f"TensorRT could not create an execution context (GPU memory?): {logged_errors(trt)}"
                )
            s.stream = cuda_check(
                cudart, cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "create a stream"
            )
            static = tuple(io.input_shape) if not io.dynamic else dynamic_profile(io.input_shape)[1]
            self._bind(static)
            load = _SHARED[s.shared_key].load
            gpu = probe_gpu(self.options.device_id)
            how = f"built in {load.seconds:.0f} s ({load.reason})" if load.built else "from the engine cache"
            if reused:
                how = "engine shared with another session in this process"
            s.info = f"TensorRT {trt.__version__} on {gpu.name} (compute {gpu.compute_capability}), {how}"
            if self.head is not None:
                s.info += "; any input size (one optimisation profile), box decode in numpy"
        except BaseException:
            self._close()
            raise
        progress(1.0, "TensorRT engine ready")

    def _bind(self, shape: tuple[int, ...]) -> None:
        """(Re)allocate device and pinned host buffers for an input shape and give TensorRT their addresses."""
        s = self._s
        trt, cudart = s.trt, s.cudart
        engine: trt.ICudaEngine = _SHARED[s.shared_key].engine
        context: trt.IExecutionContext = s.context
        if not context.set_input_shape(s.input_name, shape):
            raise InputError(
                f"TensorRT engine input {s.input_name!r} takes {tuple(engine.get_tensor_shape(s.input_name))} "
                f"(-1: any), got {shape}: {logged_errors(trt)}"
            )
        self._free_buffers()
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            tensor_shape = tuple(shape) if name == s.input_name else tuple(context.get_tensor_shape(name))
            if any(d < 0 for d in tensor_shape):
                raise ConversionError(
                    f"TensorRT output {name!r} has a data-dependent shape {tensor_shape}: unsupported"
                )
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            nbytes = int(np.prod(tensor_shape, dtype=np.int64)) * dtype.itemsize
            device = cuda_check(cudart, cudart.cudaMalloc(max(nbytes, 1)), f"allocate {nbytes} bytes on the GPU")
            buf = Buffer(name, tensor_shape, dtype, nbytes, int(device), 0, np.empty(0))
            s.buffers[name] = buf  # registered at once, so a failure below still frees what was allocated
            host_ptr = cuda_check(cudart, cudart.cudaMallocHost(max(nbytes, 1)), f"allocate {nbytes} pinned bytes")
            buf.host_ptr = int(host_ptr)
            buf.host = pinned_view(buf.host_ptr, nbytes, dtype, tensor_shape)
            context.set_tensor_address(name, buf.device)
        s.bound_shape = tuple(shape)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.head is not None:  # the rows the whole graph gives (threshold 0 keeps them all)
            outs = self.infer_heads(batch)
            return np.concatenate([self.head.decode(outs, 0.0, i) for i in range(batch.shape[0])])
        return self._execute(batch, [self._s.output_name])[0]

    def infer_heads(self, batch: np.ndarray) -> list[np.ndarray]:
        """The head convolutions' outputs (the rect shape's engine, :meth:`_rect_model`)."""
        if self.head is None:
            raise RuntimeUnavailableError(f"{self.runtime.label}: this engine was not cut at its head")
        return self._execute(batch, list(self.head.outputs))

    def _execute(self, batch: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        s = self._s
        cudart = s.cudart
        context: trt.IExecutionContext = s.context
        cuda_check(cudart, cudart.cudaSetDevice(self.options.device_id), "select the GPU")  # per-thread state
        if tuple(batch.shape) != s.bound_shape:
            self._bind(tuple(batch.shape))
        inp = s.buffers[s.input_name]
        np.copyto(inp.host, batch, casting="same_kind")
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_check(cudart, cudart.cudaMemcpyAsync(inp.device, inp.host_ptr, inp.nbytes, h2d, s.stream), "copy input")
        if not context.execute_async_v3(int(s.stream)):
            raise CoreError(f"TensorRT inference failed: {logged_errors(s.trt)}")
        for name in outputs:
            out = s.buffers[name]
            cuda_check(cudart, cudart.cudaMemcpyAsync(out.host_ptr, out.device, out.nbytes, d2h, s.stream), "copy out")
        cuda_check(cudart, cudart.cudaStreamSynchronize(s.stream), "finish inference")
        return [s.buffers[name].host.copy() for name in outputs]  # pinned buffers are overwritten by the next call

    def _free_buffers(self) -> None:
        s = self._s
        cudart = s.cudart
        for buf in s.buffers.values():
            buf.host = np.empty(0)
            with contextlib.suppress(Exception):
                cudart.cudaFree(buf.device)
            if buf.host_ptr:
                with contextlib.suppress(Exception):
                    cudart.cudaFreeHost(buf.host_ptr)
        s.buffers.clear()
        s.bound_shape = ()

    def _close(self) -> None:
        s = self._s
        cudart = s.cudart
        if cudart is not None:
            self._free_buffers()
            if s.stream is not None:
                with contextlib.suppress(Exception):
                    cudart.cudaStreamDestroy(s.stream)
        s.context = None  # before the engine can go: a context must not outlive its engine
        if s.shared_key:
            with _SHARED_LOCK:
                entry = _SHARED.get(s.shared_key)
                if entry is not None:
                    entry.users -= 1
                    if entry.users <= 0:
                        del _SHARED[s.shared_key]
        self._s = _State()

    def profiler(self) -> NodeProfiler:
        """TensorRT's ``IProfiler`` (each engine layer's time, reported after the stream syncs) and the engine
        inspector (each layer's type and input precision; GPU only, written to the documented API)."""
        return _TrtProfiler(self)

    @property
    def description(self) -> str:
        return self._s.info or self.runtime.label


_TRT_TYPES = (
    ("Int8", "int8"),
    ("BF16", "bf16"),
    ("Half", "fp16"),
    ("FP16", "fp16"),
    ("Float", "fp32"),
    ("FP32", "fp32"),
)


def _trt_layers(engine: Any, context: Any, trt: Any) -> dict[str, tuple[str, str]]:
    """Layer name -> (type, precision of its first input) from the engine inspector ("" where the engine was built
    without DETAILED profiling verbosity)."""
    import json

    try:
        inspector = engine.create_engine_inspector()
        inspector.execution_context = context
        info = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
    except Exception:
        return {}
    out: dict[str, tuple[str, str]] = {}
    for layer in info.get("Layers", []):
        if not isinstance(layer, dict):  # names only
            continue
        inputs = layer.get("Inputs") or [{}]
        datatype = str(inputs[0].get("Format/Datatype", ""))
        precision = next((p for key, p in _TRT_TYPES if key in datatype), "")
        out[str(layer.get("Name", ""))] = (str(layer.get("LayerType", "")), precision)
    return out


class _TrtProfiler(NodeProfiler):
    def __init__(self, backend: TensorrtBackend) -> None:
        s = backend._s
        trt = s.trt
        self.backend, self.times = backend, {}
        times: dict[str, list[float]] = self.times

        class _Collect(trt.IProfiler):  # type: ignore[misc,name-defined]
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                times.setdefault(layer_name, []).append(ms)

        self.collect = _Collect()
        context: trt.IExecutionContext = s.context
        context.profiler = self.collect
        context.enqueue_emits_profile = False  # reported when asked (after the stream synced), not per enqueue
        self.context = context
        self.layers = _trt_layers(_SHARED[s.shared_key].engine, context, trt)

    def run(self, batch: np.ndarray) -> None:
        self.backend.infer(batch)
        context: trt.IExecutionContext = self.context
        context.report_to_profiler()

    def nodes(self) -> list[NodeTime]:
        out = []
        for name, ts in self.times.items():
            kind_of, precision = self.layers.get(name, ("", ""))
            low = str(name).lower()
            kind = "reorder" if "reformat" in low else "quantize" if "quantize" in low else "compute"
            out.append(NodeTime(name, kind_of or "TensorRT layer", kind, precision, median_after_first(ts)))
        return out

    def close(self) -> None:
        context: trt.IExecutionContext = self.context
        with contextlib.suppress(Exception):
            context.enqueue_emits_profile = True
