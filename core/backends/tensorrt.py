"""Native TensorRT backend: strongly typed engines built from ONNX files that carry their precision.

The ONNX file decides the precision (FP32, FP16 with FP32 edges, or symmetric INT8 Q/DQ), so the
network is built strongly typed and no precision flag or calibrator is involved: that is the only
way that works on both TensorRT 10.x (where those APIs are deprecated) and 11.x (where they are
gone). Only the name-based tensor API and ``execute_async_v3`` are used.

Engines are cached on disk (see :func:`engine_cache_key`) and, within a process, shared between
backend instances; each instance has its own execution context, CUDA stream and buffers, because
an execution context is not thread-safe (one per Streamlit session / thread).

``tensorrt`` and ``cuda-python`` are imported inside functions: this module imports (and reports
why it cannot run) on machines without them.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import importlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from ..cache import atomic_path, cached_build, file_lock, read_verified, remove_artefact, sha256_file, sha256_text
from ..config import cache_dir as default_cache_dir
from ..errors import ConversionError, CoreError, InputError, RuntimeUnavailableError
from ..progress import Progress, no_progress, scaled
from ..variants import Precision, Runtime
from .base import Availability, Backend, BackendOptions
from .gpu import probe_gpu

if TYPE_CHECKING:  # annotations only: never imported at run time from here
    import tensorrt as trt

log = logging.getLogger(__name__)

MIN_TENSORRT = (10, 12)  # strongly typed ONNX with INT8 Q/DQ and the name-based tensor API, as used here
ENGINE_FORMAT = "1"  # bump when the build settings below change, so engines built the old way are not reused

# A dynamic input (an ONNX exported with dynamic axes) gets one optimization profile: batch 1 and
# this range of sides. Changing these changes the engines: bump ENGINE_FORMAT with them.
DYNAMIC_SIDE_MIN, DYNAMIC_SIDE_OPT, DYNAMIC_SIDE_MAX = 32, 640, 1280

# Every attribute this module uses on the ``tensorrt`` module and on objects it returns (plus the
# callbacks TensorRT calls on our IProgressMonitor / ILogger subclasses). Reviewed against the
# TensorRT 10.16 and 11.4 bindings by tests/test_tensorrt.py, which also checks that this list is
# exactly what the code uses (it is collected from this file's syntax tree).
TRT_API_USED: tuple[str, ...] = (
    "Builder",
    "ERROR",
    "IBuilderConfig",
    "ICudaEngine",
    "IExecutionContext",
    "ILogger",
    "INTERNAL_ERROR",
    "INPUT",
    "IProgressMonitor",
    "ITimingCache",
    "MemoryPoolType",
    "NetworkDefinitionCreationFlag",
    "OnnxParser",
    "Runtime",
    "STRONGLY_TYPED",
    "Severity",
    "TensorIOMode",
    "WARNING",
    "WORKSPACE",
    "__init__",  # trt.ILogger.__init__(self) / trt.IProgressMonitor.__init__(self) in our subclasses
    "__version__",
    "add_optimization_profile",
    "build_serialized_network",
    "create_builder_config",
    "create_execution_context",
    "create_network",
    "create_optimization_profile",
    "create_timing_cache",
    "deserialize_cuda_engine",
    "execute_async_v3",
    "get_error",
    "get_tensor_dtype",
    "get_tensor_mode",
    "get_tensor_name",
    "get_tensor_shape",
    "get_timing_cache",
    "log",
    "nptype",
    "num_errors",
    "num_io_tensors",
    "parse_from_file",
    "phase_finish",
    "phase_start",
    "progress_monitor",
    "serialize",
    "set_input_shape",
    "set_memory_pool_limit",
    "set_shape",
    "set_tensor_address",
    "set_timing_cache",
    "step_complete",
)


# ---------------------------------------------------------------------------------------------
# availability


def _bindings_version() -> str:
    """The installed TensorRT bindings' version, read from package metadata (importing may be impossible)."""
    from importlib import metadata

    for module in ("tensorrt_bindings", "tensorrt"):
        for dist in metadata.packages_distributions().get(module, []):
            with contextlib.suppress(metadata.PackageNotFoundError):
                return f"{dist} {metadata.version(dist)}"
    return "TensorRT bindings"


def import_tensorrt() -> Any:
    """The ``tensorrt`` module, or :class:`RuntimeUnavailableError` saying what is missing.

    The ``tensorrt`` package is a thin layer over ``tensorrt_bindings`` (the PyPI bindings wheels
    install only the latter), so both names are tried.
    """
    for name in ("tensorrt", "tensorrt_bindings"):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            text = str(exc)
            if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("tensorrt"):
                raise RuntimeUnavailableError(
                    f"the tensorrt package is installed but incomplete ({text}); reinstall it with "
                    "pip install -r requirements-gpu.txt"
                ) from exc
            if "libnv" in text or "shared object" in text:
                lib = re.search(r"libnv\w*\.so\.(\d+)", text)
                libs = f"libnvinfer.so.{lib.group(1)} and the rest" if lib else "libnvinfer"
                raise RuntimeUnavailableError(
                    f"TensorRT's Python bindings ({_bindings_version()}) are installed but TensorRT's libraries "
                    f"({libs}) are not: {text}; install tensorrt-cu13, which brings the matching "
                    "tensorrt-cu13-libs (pip install -r requirements-gpu.txt), or put TensorRT's lib folder "
                    "on LD_LIBRARY_PATH"
                ) from exc
            raise RuntimeUnavailableError(f"the tensorrt package failed to import: {text}") from exc
        return module
    raise RuntimeUnavailableError(
        "the tensorrt Python package is not installed (install the GPU requirements: "
        "pip install -r requirements-gpu.txt, which brings tensorrt-cu13 10.x)"
    )


def import_cudart() -> Any:
    """cuda-python's runtime module (device buffers and streams), or why it is missing."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError as exc:
        raise RuntimeUnavailableError(
            f"cuda-python is not installed or too old ({exc}); TensorRT's device buffers need "
            "'cuda-python>=13' (from cuda.bindings import runtime), see requirements-gpu.txt"
        ) from exc
    return cudart


def tensorrt_version(trt: Any) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", str(trt.__version__))[:3])


def tensorrt_availability() -> Availability:
    """Checked in order: GPU and driver, tensorrt package, its libraries, its version, cuda-python."""
    gpu = probe_gpu()
    if not gpu.ok:
        return Availability(False, gpu.reason)
    try:
        trt = import_tensorrt()
        version = tensorrt_version(trt)
        if version[:2] < MIN_TENSORRT:
            need = ".".join(map(str, MIN_TENSORRT))
            return Availability(
                False,
                f"TensorRT {trt.__version__} is too old: this backend needs TensorRT {need} or newer "
                "(pip install -r requirements-gpu.txt)",
            )
        import_cudart()
    except RuntimeUnavailableError as exc:
        return Availability(False, str(exc))
    return Availability(True)


# ---------------------------------------------------------------------------------------------
# the ONNX file: what goes in, and what precision it carries


@dataclass(frozen=True)
class OnnxIO:
    input_name: str
    input_shape: tuple[int, ...]  # -1 for a dynamic dimension
    output_names: tuple[str, ...]
    has_qdq: bool
    has_fp16: bool
    unsigned_qdq: bool  # uint8 zero-points: ONNX Runtime's CPU flavour, which TensorRT does not take

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.input_shape)

    def profile(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) shapes for a dynamic input: batch 1, 3 channels, sides in a fixed range."""
        fixed = [1, 3]
        shapes = []
        for side in (DYNAMIC_SIDE_MIN, DYNAMIC_SIDE_OPT, DYNAMIC_SIDE_MAX):
            shapes.append(tuple(d if d >= 0 else (fixed[i] if i < 2 else side) for i, d in enumerate(self.input_shape)))
        return shapes[0], shapes[1], shapes[2]


def read_onnx_io(path: Path) -> OnnxIO:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise InputError(f"{path.name}: not a readable ONNX model ({type(exc).__name__}: {exc})") from exc
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"{path.name}: TensorRT backend expects one image input, found {len(inputs)}")
    dims = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in inputs[0].type.tensor_type.shape.dim
    )
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    zero_points = [inits[n.input[2]] for n in qdq if len(n.input) > 2 and n.input[2] in inits]
    fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer) or any(
        n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16 for a in n.attribute)
        for n in graph.node
    )
    return OnnxIO(
        input_name=inputs[0].name,
        input_shape=dims,
        output_names=tuple(o.name for o in graph.output),
        has_qdq=bool(qdq),
        has_fp16=fp16,
        unsigned_qdq=any(z.data_type == onnx.TensorProto.UINT8 for z in zero_points),
    )


def check_precision(io: OnnxIO, precision: Precision, name: str) -> None:
    """A strongly typed network runs what the file carries: refuse a file that does not carry ``precision``."""
    carries = Precision.INT8 if io.has_qdq else Precision.FP16 if io.has_fp16 else Precision.FP32
    if io.unsigned_qdq:
        raise InputError(
            f"{name} is INT8 quantized for ONNX Runtime's CPU (uint8 activations); TensorRT takes only the "
            "symmetric int8 flavour (python -m core convert --to int8 --flavour trt)"
        )
    if carries is not precision:
        raise InputError(
            f"{name} carries {carries.value} but TensorRT {precision.value} was asked for: a strongly typed "
            f"engine runs the precision its ONNX file carries; give the {precision.value} ONNX file"
        )


# ---------------------------------------------------------------------------------------------
# the engine cache (pure: testable without TensorRT)


def engine_cache_key(
    onnx_sha256: str,
    precision: Precision | str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    input_shape: Sequence[int],
) -> str:
    """What an engine depends on: an engine is only valid for this exact model, precision,
    TensorRT build, GPU model and input shape (TensorRT refuses or misbehaves otherwise)."""
    return sha256_text(
        "trt-engine",
        ENGINE_FORMAT,
        onnx_sha256,
        Precision(precision).value,
        trt_version,
        gpu_name,
        compute_capability,
        "x".join(str(int(d)) for d in input_shape),
    )[:32]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower() or "gpu"


def engine_path(cache_dir: Path, onnx_path: Path, precision: Precision | str, key: str) -> Path:
    return Path(cache_dir) / "trt" / f"{onnx_path.stem}.{Precision(precision).value}.{key[:16]}.engine"


def timing_cache_path(cache_dir: Path, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """One timing cache per TensorRT version and GPU model, shared by all engines built there."""
    return Path(cache_dir) / "trt" / f"timing-trt{trt_version}-{_slug(gpu_name)}-sm{compute_capability}.cache"


T = TypeVar("T")


@dataclass(frozen=True)
class EngineLoad:
    path: Path
    built: bool  # False: taken from the cache as it was
    reason: str  # why it was (re)built: "not cached", "damaged ...", "stale ..."
    seconds: float


def load_or_build(
    target: Path,
    build: Callable[[Path], None],
    deserialize: Callable[[bytes], T | None],
    meta: dict[str, Any],
) -> tuple[T, EngineLoad]:
    """Deserialize the cached engine at ``target``; build it when missing, damaged or stale.

    Damaged = its bytes no longer match the sidecar hash (truncated, edited); stale = intact but
    TensorRT will not deserialize it (another TensorRT build, driver, or a corrupt build with a
    matching hash). Either way it is rebuilt once; a fresh build that cannot be loaded is an error.
    """
    started = time.perf_counter()
    reason = ""
    last_error = ""
    for _attempt in range(2):
        if read_verified(target) is None:
            reason = reason or ("not cached" if not target.exists() else "damaged (hash mismatch)")
        cached_build(target, build, meta)
        try:
            obj = deserialize(target.read_bytes())
        except Exception as exc:  # TensorRT raises on some corrupt plans and returns None on others
            obj, last_error = None, f"{type(exc).__name__}: {exc}"
        if obj is not None:
            return obj, EngineLoad(target, bool(reason), reason, time.perf_counter() - started)
        reason = f"stale (TensorRT could not deserialize it{': ' + last_error if last_error else ''})"
        remove_artefact(target)
    raise ConversionError(
        f"TensorRT built {target.name} but cannot deserialize it ({last_error or 'deserialize returned None'}); "
        "check the TensorRT and driver installation (python -m core doctor)"
    )


# ---------------------------------------------------------------------------------------------
# TensorRT helpers (the classes subclass TensorRT's, so they are made once tensorrt is imported)


@dataclass
class _TrtClasses:
    logger: Any  # a process-wide ILogger (TensorRT wants one logger for all builders/runtimes)
    make_monitor: Callable[[Progress], Any] | None  # None: this TensorRT has no IProgressMonitor


@functools.cache
def _trt_classes(trt: Any) -> _TrtClasses:
    class Logger(trt.ILogger):
        """Keeps the last errors so a failed parse/build can say why; forwards the rest to logging."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: collections.deque[str] = collections.deque(maxlen=20)

        def log(self, severity: Any, msg: str) -> None:
            if severity in (trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR):
                self.errors.append(msg)
                log.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.Severity.WARNING:
                log.warning("TensorRT: %s", msg)

    make_monitor = None
    if hasattr(trt, "IProgressMonitor"):

        class Monitor(trt.IProgressMonitor):
            """Turns TensorRT's nested build phases into one 0..1 fraction.

            Exceptions never propagate: they would surface inside TensorRT's C++ builder.
            """

            def __init__(self, progress: Progress) -> None:
                trt.IProgressMonitor.__init__(self)
                self._progress = progress
                self._phases: dict[str, list[Any]] = {}  # name -> [parent, steps, done]
                self._last = 0.0

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                with contextlib.suppress(Exception):
                    self._phases[phase_name] = [parent_phase, max(int(num_steps), 1), 0]
                    self._report(phase_name)

            def step_complete(self, phase_name: str, step: int) -> bool:
                with contextlib.suppress(Exception):
                    if phase_name in self._phases:
                        self._phases[phase_name][2] = int(step) + 1
                    self._report(phase_name)
                return True  # False would cancel the build

            def phase_finish(self, phase_name: str) -> None:
                with contextlib.suppress(Exception):
                    self._phases.pop(phase_name, None)

            def _report(self, phase_name: str) -> None:
                chain = [phase_name]
                while (parent := self._phases.get(chain[-1], [None])[0]) in self._phases and parent not in chain:
                    chain.append(parent)
                fraction = 0.0
                for name in chain:  # innermost first: each level refines its parent's current step
                    _, steps, done = self._phases[name]
                    fraction = min((done + fraction) / steps, 1.0)
                self._last = max(self._last, fraction)
                self._progress(self._last, f"TensorRT: {phase_name}")

        make_monitor = Monitor

    return _TrtClasses(Logger(), make_monitor)


def _logged_errors(trt: Any) -> str:
    errors = list(_trt_classes(trt).logger.errors)
    return "; ".join(errors[-3:]) if errors else "no error was logged"


def _read_timing_cache(config: trt.IBuilderConfig, path: Path) -> trt.ITimingCache:
    """Reuse the timing cache from earlier builds on this GPU; a damaged one is ignored, not fatal."""
    data = b""
    with contextlib.suppress(OSError):
        data = path.read_bytes()
    cache = None
    with contextlib.suppress(Exception):
        cache = config.create_timing_cache(data)
    if cache is None or not config.set_timing_cache(cache, False):
        log.warning("TensorRT timing cache %s unusable; starting a new one", path)
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def _write_timing_cache(config: trt.IBuilderConfig, path: Path) -> None:
    cache = config.get_timing_cache()
    if cache is None:
        return
    with file_lock(path), atomic_path(path) as tmp:
        tmp.write_bytes(memoryview(cache.serialize()))


def build_engine_plan(
    trt: Any,
    model_path: Path,
    io: OnnxIO,
    out: Path,
    timing_path: Path,
    workspace_mb: int,
    progress: Progress = no_progress,
) -> None:
    """ONNX -> serialized engine (plan) in ``out``: strongly typed, the file's precision, one profile if dynamic."""
    classes = _trt_classes(trt)
    builder = trt.Builder(classes.logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, classes.logger)
    progress(0.02, f"TensorRT: parsing {model_path.name}")
    if not parser.parse_from_file(str(model_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConversionError(f"TensorRT could not parse {model_path.name}: {errors or _logged_errors(trt)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if io.dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(io.input_name, *io.profile())
        config.add_optimization_profile(profile)
    _read_timing_cache(config, timing_path)
    monitor = classes.make_monitor(scaled(progress, 0.05, 0.98)) if classes.make_monitor else None
    if monitor is not None:
        config.progress_monitor = monitor  # kept referenced by `monitor` until the build returns
    progress(0.05, "TensorRT: building the engine (minutes the first time; cached afterwards)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConversionError(
            f"TensorRT could not build an engine from {model_path.name}: {_logged_errors(trt)} "
            f"(workspace limit {workspace_mb} MB)"
        )
    out.write_bytes(memoryview(plan))
    _write_timing_cache(config, timing_path)
    progress(1.0, "TensorRT: engine built")


# ---------------------------------------------------------------------------------------------
# CUDA helpers (cuda-python's runtime API returns (error, value...) tuples)


def cuda_check(cudart: Any, result: Any, what: str) -> Any:
    """The value of a cuda-python call, or a :class:`RuntimeUnavailableError` naming the CUDA error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        _, err_name = cudart.cudaGetErrorName(err)
        _, err_text = cudart.cudaGetErrorString(err)
        raise RuntimeUnavailableError(f"CUDA could not {what}: {err_name.decode()} ({err_text.decode()})")
    return values[0] if len(values) == 1 else tuple(values)


@dataclass
class _Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int
    device: int  # device pointer
    host_ptr: int  # pinned host memory: needed for truly asynchronous copies
    host: np.ndarray  # a view over host_ptr


def _pinned_view(ptr: int, nbytes: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(ptr)
    return np.ctypeslib.as_array(raw)[:nbytes].view(dtype).reshape(shape)


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
    io: OnnxIO | None = None
    input_name: str = ""
    output_name: str = ""
    bound_shape: tuple[int, ...] = ()
    buffers: dict[str, _Buffer] = field(default_factory=dict)
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
        self, trt: Any, model_path: Path, precision: Precision, io: OnnxIO, progress: Progress
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
        runtime = trt.Runtime(_trt_classes(trt).logger)

        def build(tmp: Path) -> None:
            build_engine_plan(trt, model_path, io, tmp, timing, self.options.workspace_mb, scaled(progress, 0.05, 0.9))

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
            "workspace_mb": self.options.workspace_mb,
        }
        engine, load = load_or_build(target, build, deserialize, meta)
        with _SHARED_LOCK:
            entry = _SHARED.setdefault(shared_key, _SharedEngine(runtime, engine, load))
            entry.users += 1  # if another thread won the race, its engine is used and ours dropped
        return shared_key, False

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        trt = import_tensorrt()
        cudart = import_cudart()
        io = read_onnx_io(model_path)
        check_precision(io, precision, model_path.name)
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
                    f"TensorRT could not create an execution context (GPU memory?): {_logged_errors(trt)}"
                )
            s.stream = cuda_check(
                cudart, cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking), "create a stream"
            )
            static = tuple(io.input_shape) if not io.dynamic else io.profile()[1]
            self._bind(static)
            load = _SHARED[s.shared_key].load
            gpu = probe_gpu(self.options.device_id)
            how = f"built in {load.seconds:.0f} s ({load.reason})" if load.built else "from the engine cache"
            if reused:
                how = "engine shared with another session in this process"
            s.info = f"TensorRT {trt.__version__} on {gpu.name} (compute {gpu.compute_capability}), {how}"
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
                f"(-1: any), got {shape}: {_logged_errors(trt)}"
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
            buf = _Buffer(name, tensor_shape, dtype, nbytes, int(device), 0, np.empty(0))
            s.buffers[name] = buf  # registered at once, so a failure below still frees what was allocated
            host_ptr = cuda_check(cudart, cudart.cudaMallocHost(max(nbytes, 1)), f"allocate {nbytes} pinned bytes")
            buf.host_ptr = int(host_ptr)
            buf.host = _pinned_view(buf.host_ptr, nbytes, dtype, tensor_shape)
            context.set_tensor_address(name, buf.device)
        s.bound_shape = tuple(shape)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        s = self._s
        cudart = s.cudart
        context: trt.IExecutionContext = s.context
        cuda_check(cudart, cudart.cudaSetDevice(self.options.device_id), "select the GPU")  # per-thread state
        if tuple(batch.shape) != s.bound_shape:
            self._bind(tuple(batch.shape))
        inp, out = s.buffers[s.input_name], s.buffers[s.output_name]
        np.copyto(inp.host, batch, casting="same_kind")
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_check(cudart, cudart.cudaMemcpyAsync(inp.device, inp.host_ptr, inp.nbytes, h2d, s.stream), "copy input")
        if not context.execute_async_v3(int(s.stream)):
            raise CoreError(f"TensorRT inference failed: {_logged_errors(s.trt)}")
        cuda_check(cudart, cudart.cudaMemcpyAsync(out.host_ptr, out.device, out.nbytes, d2h, s.stream), "copy output")
        cuda_check(cudart, cudart.cudaStreamSynchronize(s.stream), "finish inference")
        return out.host.copy()  # the pinned buffer is overwritten by the next call

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

    @property
    def description(self) -> str:
        return self._s.info or self.runtime.label
