"""ONNX Runtime backends: CPU, CUDA and TensorRT execution providers, one class each."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import RuntimeUnavailableError
from ..progress import Progress
from ..variants import Precision, Runtime
from .base import Availability, Backend, BackendOptions
from .gpu import probe_gpu


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1


class _OrtBackend(Backend):
    provider: ClassVar[str]

    def __init__(self, options: BackendOptions | None = None) -> None:
        super().__init__(options)
        self._session: Any = None
        self._input = ""
        self._output = ""

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

    def _load(self, model_path: Path, precision: Precision, progress: Progress) -> None:
        import onnxruntime as ort

        if self.provider != "CPUExecutionProvider" and hasattr(ort, "preload_dlls"):
            # CUDA and cuDNN from pip's nvidia-* wheels (or torch's) are not on the loader's path;
            # onnxruntime-gpu's own helper loads them, else the provider silently fails to start.
            with contextlib.suppress(Exception):
                ort.preload_dlls()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = self.options.threads or physical_cores()
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.options.spin else "0")
        providers: list[Any] = [(self.provider, self._provider_options(precision))]
        if self.provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")  # for the few nodes the GPU provider does not take
        try:
            self._session = ort.InferenceSession(str(model_path), so, providers=providers)
        except Exception as exc:
            raise RuntimeUnavailableError(f"{self.runtime.label} could not load {model_path.name}: {exc}") from exc
        active = self._session.get_providers()
        if active[0] != self.provider:  # ORT falls back to CPU silently; we do not
            self._session = None
            raise RuntimeUnavailableError(
                f"{self.runtime.label}: {self.provider} did not start (active: {', '.join(active)})"
            )
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        out: np.ndarray = self._session.run([self._output], {self._input: batch})[0]
        return out

    def _close(self) -> None:
        self._session = None

    @property
    def description(self) -> str:
        threads = self.options.threads or physical_cores()
        return f"{self.runtime.label}, {threads} threads" if self.runtime is Runtime.ORT else self.runtime.label


class OrtCpuBackend(_OrtBackend):
    runtime = Runtime.ORT
    thread_safe = True  # InferenceSession.run may be called concurrently
    provider = "CPUExecutionProvider"


class OrtCudaBackend(_OrtBackend):
    runtime = Runtime.ORT_CUDA
    provider = "CUDAExecutionProvider"

    @classmethod
    def available(cls) -> Availability:
        gpu = probe_gpu()
        if not gpu.ok:
            return Availability(False, gpu.reason)
        return cls._provider_present()

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
    NVINFER_MAJOR = 10  # onnxruntime-gpu 1.31/1.32 link TensorRT 10 (libnvinfer.so.10)

    @classmethod
    def available(cls) -> Availability:
        gpu = probe_gpu()
        if not gpu.ok:
            return Availability(False, gpu.reason)
        present = cls._provider_present()
        if not present:
            return present
        reason = ort_tensorrt_reason(cls.NVINFER_MAJOR)
        return Availability(not reason, reason)

    def _provider_options(self, precision: Precision) -> dict[str, Any]:
        opts: dict[str, Any] = {
            "device_id": self.options.device_id,
            "trt_max_workspace_size": self.options.workspace_mb << 20,
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
