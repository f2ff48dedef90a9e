"""ONNX -> TensorRT engine plan: a strongly typed network that runs the precision its file carries.

Also TensorRT's logger and build-progress monitor (classes subclassing TensorRT's, so they are made
once ``tensorrt`` is imported) and the timing cache shared by builds on one GPU.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...cache import atomic_path, file_lock
from ...errors import ConversionError, InputError
from ...onnx_file import OnnxFile
from ...progress import Progress, no_progress, scaled
from ...variants import Int8Flavour, Precision
from .engine_cache import dynamic_profile

if TYPE_CHECKING:  # annotations only: never imported at run time from here
    import tensorrt as trt

log = logging.getLogger(__name__)


def check_precision(model: OnnxFile, precision: Precision) -> None:
    """A strongly typed network runs what the file carries: refuse a file that does not carry ``precision``."""
    if model.int8_flavour is Int8Flavour.CPU:
        raise InputError(
            f"{model.name} is INT8 quantized for ONNX Runtime's CPU (uint8 activations); TensorRT takes only the "
            "symmetric int8 flavour (python -m core convert --to int8 --flavour trt)"
        )
    if model.precision is not precision:
        raise InputError(
            f"{model.name} carries {model.precision.value} but TensorRT {precision.value} was asked for: a strongly "
            f"typed engine runs the precision its ONNX file carries; give the {precision.value} ONNX file"
        )


@dataclass
class TrtClasses:
    logger: Any  # a process-wide ILogger (TensorRT wants one logger for all builders/runtimes)
    make_monitor: Callable[[Progress], Any] | None  # None: this TensorRT has no IProgressMonitor


@functools.cache
def trt_classes(trt: Any) -> TrtClasses:
    """The logger and monitor classes for this ``tensorrt`` module, made (and the logger created) once."""

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

    return TrtClasses(Logger(), make_monitor)


def logged_errors(trt: Any) -> str:
    """The last errors TensorRT logged, for a message saying why something failed."""
    errors = list(trt_classes(trt).logger.errors)
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
    io: OnnxFile,
    out: Path,
    timing_path: Path,
    workspace_mb: int,
    progress: Progress = no_progress,
) -> None:
    """ONNX -> serialized engine (plan) in ``out``: strongly typed, the file's precision, one profile if dynamic."""
    classes = trt_classes(trt)
    builder = trt.Builder(classes.logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, classes.logger)
    progress(0.02, f"TensorRT: parsing {model_path.name}")
    if not parser.parse_from_file(str(model_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConversionError(f"TensorRT could not parse {model_path.name}: {errors or logged_errors(trt)}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if io.dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(io.input_name, *dynamic_profile(io.input_shape))
        config.add_optimization_profile(profile)
    _read_timing_cache(config, timing_path)
    monitor = classes.make_monitor(scaled(progress, 0.05, 0.98)) if classes.make_monitor else None
    if monitor is not None:
        config.progress_monitor = monitor  # kept referenced by `monitor` until the build returns
    progress(0.05, "TensorRT: building the engine (minutes the first time; cached afterwards)")
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConversionError(
            f"TensorRT could not build an engine from {model_path.name}: {logged_errors(trt)} "
            f"(workspace limit {workspace_mb} MB)"
        )
    out.write_bytes(memoryview(plan))
    _write_timing_cache(config, timing_path)
    progress(1.0, "TensorRT: engine built")
