"""ONNX -> TensorRT engine plan: a strongly typed network that runs the precision its file carries.

Also TensorRT's logger and build-progress monitor (classes subclassing TensorRT's, so they are made
once ``tensorrt`` is imported) and the timing cache shared by builds on one GPU.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.cache import atomic_path, file_lock
from core.errors import ConversionError, InputError, Setting
from core.progress import Progress, no_progress, scaled
from core.runtime.backends.tensorrt.engine_cache import dynamic_profile
from core.runtime.onnx_file import OnnxFile
from core.variants import Int8Flavour, Precision

if TYPE_CHECKING:  # annotations only: never imported at run time from here
    import tensorrt as trt

log = logging.getLogger(__name__)
T = TypeVar("T")


def check_precision(model: OnnxFile, precision: Precision) -> None:
    """A strongly typed network runs what the file carries: refuse a file that does not carry ``precision``."""
    if model.int8_flavour is Int8Flavour.CPU:
        raise InputError(
            f"{model.name} is INT8 quantized for ONNX Runtime's CPU (uint8 activations); TensorRT takes only the "
            "symmetric int8 flavour (the trt flavour)",
            setting=Setting.INT8_FLAVOUR,
        )
    if model.precision is not precision:
        raise InputError(
            f"{model.name} carries {model.precision.value} but TensorRT {precision.value} was asked for: a strongly "
            f"typed engine runs the precision its ONNX file carries; give the {precision.value} ONNX file"
        )


class BuildPhases:
    """TensorRT's nested build phases as one 0..1 fraction, safe to update from any thread.

    TensorRT calls its progress monitor from its own threads. Nothing here calls out (no Streamlit,
    no tqdm from those threads): updates are recorded under a lock and :func:`run_reporting` hands the
    newest one to the caller's ``progress`` on the caller's thread. Exceptions never propagate: they
    would surface inside TensorRT's C++ builder.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._phases: dict[str, list[Any]] = {}  # name -> [parent, steps, done]
        self._fraction = 0.0
        self._latest: tuple[float, str] | None = None  # not yet handed over

    def start(self, name: str, parent: str | None, steps: int) -> None:
        with contextlib.suppress(Exception), self._lock:
            self._phases[name] = [parent, max(int(steps), 1), 0]
            self._note(name)

    def step(self, name: str, step: int) -> None:
        with contextlib.suppress(Exception), self._lock:
            if name in self._phases:
                self._phases[name][2] = int(step) + 1
            self._note(name)

    def finish(self, name: str) -> None:
        with contextlib.suppress(Exception), self._lock:
            self._phases.pop(name, None)

    def _note(self, name: str) -> None:  # with the lock held
        chain = [name]
        while (parent := self._phases.get(chain[-1], [None])[0]) in self._phases and parent not in chain:
            chain.append(parent)
        fraction = 0.0
        for phase in chain:  # innermost first: each level refines its parent's current step
            if phase in self._phases:
                _, steps, done = self._phases[phase]
                fraction = min((done + fraction) / steps, 1.0)
        self._fraction = max(self._fraction, fraction)
        self._latest = (self._fraction, f"TensorRT: {name}")

    def take(self) -> tuple[float, str] | None:
        """The newest update since the last call, or None."""
        with self._lock:
            latest, self._latest = self._latest, None
        return latest


def run_reporting(work: Callable[[], T], phases: BuildPhases, progress: Progress, every: float = 0.2) -> T:
    """``work()`` on a worker thread while this thread passes ``phases``' updates to ``progress``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="tensorrt-build", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(every)
        if (update := phases.take()) is not None:
            progress(*update)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


@dataclass
class TrtClasses:
    logger: Any  # a process-wide ILogger (TensorRT wants one logger for all builders/runtimes)
    make_monitor: Callable[[BuildPhases], Any] | None  # None: this TensorRT has no IProgressMonitor


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
            """TensorRT's build phases into :class:`BuildPhases`; called from TensorRT's own threads."""

            def __init__(self, phases: BuildPhases) -> None:
                trt.IProgressMonitor.__init__(self)
                self._phases = phases

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                self._phases.start(phase_name, parent_phase, num_steps)

            def step_complete(self, phase_name: str, step: int) -> bool:
                self._phases.step(phase_name, step)
                return True  # False would cancel the build

            def phase_finish(self, phase_name: str) -> None:
                self._phases.finish(phase_name)

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
    # per-layer precisions and tactics kept in the engine, for the engine inspector (the profile's "what ran")
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    if io.dynamic:
        profile = builder.create_optimization_profile()
        profile.set_shape(io.input_name, *dynamic_profile(io.input_shape))
        config.add_optimization_profile(profile)
    _read_timing_cache(config, timing_path)
    phases = BuildPhases()
    monitor = classes.make_monitor(phases) if classes.make_monitor else None
    if monitor is not None:
        config.progress_monitor = monitor  # kept referenced by `monitor` until the build returns
    progress(0.05, "TensorRT: building the engine (minutes the first time; cached afterwards)")
    plan = run_reporting(
        lambda: builder.build_serialized_network(network, config), phases, scaled(progress, 0.05, 0.98)
    )
    if plan is None:
        raise ConversionError(
            f"TensorRT could not build an engine from {model_path.name}: {logged_errors(trt)} "
            f"(workspace limit {workspace_mb} MB)"
        )
    out.write_bytes(memoryview(plan))
    _write_timing_cache(config, timing_path)
    progress(1.0, "TensorRT: engine built")
