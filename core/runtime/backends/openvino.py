"""OpenVINO on the CPU: ``ov:fp32``, ``ov:bf16`` (the FP32 file, computed in bfloat16 where the CPU has it
natively) and ``ov:int8`` (the cpu-flavour Q/DQ file ``ort:int8`` runs).

The precision is OpenVINO's inference precision hint (``f32``/``bf16``; the Q/DQ file's float parts stay f32,
as ONNX Runtime runs them). What really ran is read back from the compiled model's runtime graph (each
layer's ``runtimePrecision``): :attr:`OpenvinoBackend.precisions` counts layers per precision, and a variant
whose precision covers less than :data:`COVERAGE_WARN` of its convolutions says so in its description.
As ONNX Runtime's CPU backend, the graph stops before the Detect head's box decode (decoded in numpy, only
the candidate cells); compiled models are cached (OpenVINO's ``CACHE_DIR``) under the model's cache folder.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import Counter
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
from core.runtime.backends.onnxruntime import physical_cores
from core.runtime.cpu import cpu_features
from core.runtime.head import HeadGraphs, head_from_model, input_hw
from core.variants import Precision, Runtime

if TYPE_CHECKING:
    import onnx
    import openvino as ov

COVERAGE_WARN = 0.9  # below this share of convolutions in the requested precision, the description warns
_HINT = {Precision.FP32: "f32", Precision.BF16: "bf16", Precision.INT8: "f32"}  # INT8: Q/DQ layers int8, rest f32
_RAN_AS = {Precision.FP32: {"f32"}, Precision.BF16: {"bf16"}, Precision.INT8: {"u8", "i8"}}
_NOT_LAYERS = {"Input", "Output", "Const", "Parameter", "Result", "Constant"}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return next((line.strip() for line in text if line.strip()), type(exc).__name__)


def runtime_precisions(compiled: ov.CompiledModel) -> tuple[Counter[str], Counter[str]]:
    """Layers per execution precision, and convolutions per execution precision, of a compiled model."""
    layers: Counter[str] = Counter()
    convs: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str) if "layerType" in info else op.get_type_name()
        if kind in _NOT_LAYERS:
            continue
        precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else "?"
        layers[precision] += 1
        if kind == "Convolution":
            convs[precision] += 1
    return layers, convs


def _ov_kind(layer_type: str) -> str:
    if layer_type == "FakeQuantize":
        return "quantize"
    return "reorder" if layer_type in ("Reorder", "Convert", "Transpose") else "compute"


def _ov_precision(exec_type: str) -> str:
    """``brgconv_avx512_1x1_bf16`` -> bf16; ``jit_avx512_I8`` -> int8; ``ref_f32`` -> fp32."""
    tail = exec_type.rsplit("_", 1)[-1].lower()
    return {"bf16": "bf16", "f32": "fp32", "fp32": "fp32", "f16": "fp16", "i8": "int8", "u8": "int8"}.get(tail, "")


class _OvProfiler(NodeProfiler):
    def __init__(self, backend: OpenvinoBackend) -> None:
        assert backend._core is not None and backend._proto is not None
        self.backend = backend
        self.request: ov.InferRequest | None = None  # compiled by the first run, for its input shape
        self.times: dict[str, list[float]] = {}
        self.kinds: dict[str, tuple[str, str]] = {}

    def run(self, batch: np.ndarray) -> None:
        if self.request is None:
            core, data = self.backend._core, self.backend._graph(self.backend._key(batch))
            assert core is not None
            compiled = core.compile_model(core.read_model(data), "CPU", {**self.backend._config, "PERF_COUNT": True})
            self.request = compiled.create_infer_request()
        self.request.infer({0: np.ascontiguousarray(batch, np.float32)})
        for info in self.request.get_profiling_info():
            if str(info.status).rpartition(".")[2] == "EXECUTED":
                self.times.setdefault(info.node_name, []).append(info.real_time.total_seconds() * 1000)
                self.kinds[info.node_name] = (info.node_type, info.exec_type)

    def nodes(self) -> list[NodeTime]:
        return [
            NodeTime(
                name,
                f"{self.kinds[name][0]}:{self.kinds[name][1]}",
                _ov_kind(self.kinds[name][0]),
                _ov_precision(self.kinds[name][1]),
                median_after_first(ts),
            )
            for name, ts in self.times.items()
        ]


class OpenvinoBackend(Backend):
    runtime = Runtime.OV
    thread_safe = True  # one infer request per thread (a compiled model may be used by several at once)
    version: ClassVar[str] = ""

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._core: ov.Core | None = None
        self._proto: onnx.ModelProto | None = None  # the file
        self._graphs: HeadGraphs | None = None  # the file cut at its head, for other batch sizes and input sizes
        self._own: tuple[int, ...] = ()  # the file's own input (batch 1, h, w)
        self._config: dict[str, Any] = {}
        self._compiled: dict[tuple[int, ...], ov.CompiledModel] = {}  # (batch, h, w) -> compiled model
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's infer requests, by (batch, h, w)
        self._output_names: list[str] = []
        self._precision = Precision.FP32
        self.precisions: dict[str, int] = {}  # execution precision -> layers (read after compiling)
        self.conv_precisions: dict[str, int] = {}  # the same for convolutions only
        self.streams: int | None = None  # OpenVINO's throughput streams once :meth:`use_streams` asked for them

    @classmethod
    def available(cls) -> Availability:
        if importlib.util.find_spec("openvino") is None:  # without importing it (the pages ask on every start)
            return Availability(False, "openvino is not installed (pip install -r requirements.txt)")
        return Availability(True)

    @classmethod
    def precision_available(cls, precision: Precision) -> Availability:
        if precision is Precision.BF16 and (why := cpu_features().bf16_reason()):
            return Availability(False, f"{why} (OpenVINO would emulate it)")
        return Availability(True)

    @property
    def max_batch(self) -> int | None:
        return None if self.head is not None else 1

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        import openvino as ov

        OpenvinoBackend.version = ov.get_version().split("-")[0]
        progress(0.1, f"OpenVINO: reading {model_path.name}")
        proto = self._read(model_path)
        self.head = head_from_model(proto)
        self._proto = proto
        self._graphs = HeadGraphs(proto, self.head) if self.head is not None else None
        self._own = (1, *(input_hw(proto) or (0, 0)))
        self._output_names = list(self.head.outputs) if self.head is not None else [proto.graph.output[0].name]
        self._precision = precision
        self._core = ov.Core()
        self._config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": self.options.threads or physical_cores(),
            "INFERENCE_PRECISION_HINT": _HINT[precision],
        }
        if self.options.cache_dir is not None:
            cache = Path(self.options.cache_dir) / "openvino"
            cache.mkdir(parents=True, exist_ok=True)
            self._config["CACHE_DIR"] = str(cache)
        progress(0.3, f"OpenVINO: compiling {model_path.name} ({_HINT[precision]})")
        compiled = self._compile(self._own, model_path.name)
        layers, convs = runtime_precisions(compiled)
        self.precisions, self.conv_precisions = dict(layers), dict(convs)
        self._request(self._own).infer({0: np.zeros(tuple(compiled.input(0).shape), np.float32)})  # first run: warm

    @staticmethod
    def _read(model_path: Path) -> onnx.ModelProto:
        """The ONNX file without following external-data references (an untrusted file may point anywhere)."""
        import onnx

        try:
            proto = onnx.load(str(model_path), load_external_data=False)
        except Exception as exc:
            raise RuntimeUnavailableError(f"OpenVINO could not read {model_path.name}: {_first_line(exc)}") from exc
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
            raise RuntimeUnavailableError(
                f"OpenVINO: {model_path.name} keeps its weights in external files; this tool runs self-contained "
                "ONNX files only"
            )
        return proto

    def _key(self, batch: np.ndarray) -> tuple[int, ...]:
        return (int(batch.shape[0]), *(int(d) for d in batch.shape[2:]))

    def _graph(self, key: tuple[int, ...]) -> bytes:
        """The model for an input of ``key`` (batch, h, w): cut at its head when it has one, else the file."""
        if self._graphs is not None:
            return self._graphs.graph(key[0], key[1:])  # type: ignore[arg-type]
        assert self._proto is not None
        return bytes(self._proto.SerializeToString())

    def any_shape(self) -> Availability:
        if self._graphs is not None or self._own[1:] == (0, 0):  # cut at its head, or a dynamic file
            return Availability(True)
        from core.runtime.backends.onnxruntime import FIXED_SHAPE

        return Availability(False, FIXED_SHAPE)

    def _compile(self, key: tuple[int, ...], name: str = "the model") -> ov.CompiledModel:
        if self._graphs is None:  # the whole file: one compiled model runs what its input allows
            key = self._own
        with self._lock:
            compiled = self._compiled.get(key)
            if compiled is not None:
                return compiled
            assert self._core is not None
            # a static shape per compiled model, as ONNX Runtime's sessions (only a cut model takes other shapes)
            data = self._graph(key)
            try:
                model = self._core.read_model(data)
                compiled = self._core.compile_model(model, "CPU", self._config)
            except Exception as exc:
                raise RuntimeUnavailableError(f"OpenVINO could not compile {name}: {_first_line(exc)}") from exc
            self._compiled[key] = compiled
            return compiled

    def use_streams(self, streams: int) -> int:
        """Serve ``streams`` concurrent callers from this one compiled model: OpenVINO's THROUGHPUT hint with
        ``NUM_STREAMS`` (OpenVINO splits the threads between its streams; each calling thread has its own infer
        request). Recompiles; returns the streams OpenVINO granted, read back (at most one per thread)."""
        if self._core is None:
            raise RuntimeUnavailableError("OpenVINO: load a model before asking for streams")
        if streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        with self._lock:
            self._config = {**self._config, "PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams}
            self._compiled.clear()
            self._local = threading.local()
        compiled = self._compile(self._own)
        self.streams = int(compiled.get_property("NUM_STREAMS"))
        return self.streams

    def _request(self, key: tuple[int, ...]) -> ov.InferRequest:
        requests: dict[tuple[int, ...], ov.InferRequest] = self._local.__dict__.setdefault("requests", {})
        request = requests.get(key)
        if request is None:
            request = requests[key] = self._compile(key).create_infer_request()
        return request

    def _outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        request = self._request(self._key(batch))
        request.infer({0: np.ascontiguousarray(batch, np.float32)})
        return [request.get_tensor(name).data.copy() for name in self._output_names]

    def infer_heads(self, batch: np.ndarray) -> list[np.ndarray]:
        if self.head is None:
            raise RuntimeUnavailableError(f"{self.runtime.label}: this model was not cut at its head")
        return self._outputs(batch)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.head is not None:  # the rows the whole graph gives (threshold 0 keeps them all)
            outs = self._outputs(batch)
            return np.concatenate([self.head.decode(outs, 0.0, i) for i in range(batch.shape[0])])
        return self._outputs(batch)[0]

    def _close(self) -> None:
        self._compiled.clear()
        self._local = threading.local()
        self._core = None
        self._proto = None
        self._graphs = None

    def profiler(self) -> NodeProfiler:
        """OpenVINO's per-layer performance counters (``PERF_COUNT``) on a model compiled like this one: each
        executed layer's time, its kernel (``brgconv_avx512_1x1_bf16``) and the precision that kernel ran in."""
        return _OvProfiler(self)

    @property
    def coverage(self) -> float | None:
        """The share of convolutions that ran in the requested precision (None before loading)."""
        total = sum(self.conv_precisions.values())
        if not total:
            return None
        return sum(n for p, n in self.conv_precisions.items() if p in _RAN_AS[self._precision]) / total

    def precision_text(self) -> str:
        """'228 layers: 85 bf16, 143 f32; 60/60 convolutions bf16', with a warning below :data:`COVERAGE_WARN`."""
        if not self.precisions:
            return ""
        ranked = sorted(self.precisions.items(), key=lambda kv: -kv[1])
        layers = ", ".join(f"{n} {p}" for p, n in ranked)
        total = sum(self.conv_precisions.values())
        wanted = sum(n for p, n in self.conv_precisions.items() if p in _RAN_AS[self._precision])
        asked = "int8" if self._precision is Precision.INT8 else _HINT[self._precision]
        text = f"{sum(self.precisions.values())} layers: {layers}; {wanted}/{total} convolutions {asked}"
        coverage = self.coverage
        if coverage is not None and coverage < COVERAGE_WARN:
            text += f" (only {coverage:.0%} of convolutions ran in {asked})"
        return text

    @property
    def description(self) -> str:
        threads = self.options.threads or physical_cores()
        decode = ", box decode in numpy" if self.head is not None else ""
        ran = f" ({self.precision_text()})" if self.precisions else ""
        streams = "" if self.streams is None else f" in {self.streams} throughput streams"
        return f"OpenVINO {self.version} (CPU), {threads} threads{streams}{decode}{ran}"
