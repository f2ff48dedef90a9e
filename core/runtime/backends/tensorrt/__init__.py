"""Native TensorRT backend: strongly typed engines built from ONNX files that carry their precision.

The ONNX file decides the precision (FP32, FP16 with FP32 edges, or symmetric INT8 Q/DQ), so the
network is built strongly typed and no precision flag or calibrator is involved: that is the only
way that works on both TensorRT 10.x (where those APIs are deprecated) and 11.x (where they are
gone). Only the name-based tensor API and ``execute_async_v3`` are used.

The package, along its seams:

- :mod:`.availability`: can it run here (GPU, ``tensorrt`` and its libraries, version, cuda-python)
- :mod:`.engine_cache`: what an engine depends on, where it is cached, loading or (re)building it
- :mod:`.builder`: ONNX -> engine plan, TensorRT's logger / progress monitor, the timing cache
- :mod:`.device`: cuda-python error checks and pinned host buffers
- :mod:`.backend`: :class:`TensorrtBackend`, the runner, and the engines shared in-process

``tensorrt`` and ``cuda-python`` are imported inside functions: every module here imports (and
reports why it cannot run) on machines without them.
"""

from __future__ import annotations

from core.runtime.backends.tensorrt.availability import MIN_TENSORRT, tensorrt_availability
from core.runtime.backends.tensorrt.backend import TensorrtBackend
from core.runtime.backends.tensorrt.builder import check_precision
from core.runtime.backends.tensorrt.engine_cache import (
    ENGINE_FORMAT,
    EngineLoad,
    dynamic_profile,
    engine_cache_key,
    engine_path,
    load_or_build,
    timing_cache_path,
)

# Every attribute this package uses on the ``tensorrt`` module and on objects it returns (plus the
# callbacks TensorRT calls on our IProgressMonitor / ILogger subclasses). Reviewed against the
# TensorRT 10.16 and 11.4 bindings by tests/gpu/test_tensorrt.py, which also checks that this list is
# exactly what the code uses (it is collected from the syntax tree of every module of this package).
TRT_API_USED: tuple[str, ...] = (
    "Builder",
    "DETAILED",
    "ERROR",
    "IBuilderConfig",
    "ICudaEngine",
    "IExecutionContext",
    "ILogger",
    "INPUT",
    "INTERNAL_ERROR",
    "IProfiler",
    "IProgressMonitor",
    "ITimingCache",
    "JSON",
    "LayerInformationFormat",
    "MemoryPoolType",
    "NetworkDefinitionCreationFlag",
    "OnnxParser",
    "ProfilingVerbosity",
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
    "create_engine_inspector",
    "create_execution_context",
    "create_network",
    "create_optimization_profile",
    "create_timing_cache",
    "deserialize_cuda_engine",
    "enqueue_emits_profile",
    "execute_async_v3",
    "execution_context",
    "get_engine_information",
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
    "profiler",
    "profiling_verbosity",
    "progress_monitor",
    "report_layer_time",
    "report_to_profiler",
    "serialize",
    "set_input_shape",
    "set_memory_pool_limit",
    "set_shape",
    "set_tensor_address",
    "set_timing_cache",
    "step_complete",
)

__all__ = [
    "ENGINE_FORMAT",
    "MIN_TENSORRT",
    "TRT_API_USED",
    "EngineLoad",
    "TensorrtBackend",
    "check_precision",
    "dynamic_profile",
    "engine_cache_key",
    "engine_path",
    "load_or_build",
    "tensorrt_availability",
    "timing_cache_path",
]
