"""Can TensorRT run here? The GPU, the ``tensorrt`` package, its libraries, its version, cuda-python.

Both packages are imported inside functions, so this module imports (and says what is missing) on
machines without them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
from typing import Any

from core.errors import RuntimeUnavailableError
from core.runtime.backends.base import Availability
from core.runtime.backends.gpu import probe_gpu

MIN_TENSORRT = (10, 12)  # strongly typed ONNX with INT8 Q/DQ and the name-based tensor API, as used here


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
